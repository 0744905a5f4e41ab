"""The image store against a real registry: pulls (Docker and OCI manifests, a manifest
list, token auth), each layer kept once, concurrent pulls shared, whiteouts, a corrupt
layer refused, collection under a size limit, and the registry's answers as errors."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest

from oci import PushedImages, Registry, add_blob, build_image, busybox_layer, run_registry
from pallet.agent.images import ImageError, ImageStore
from pallet.agent.images.overlay import RootFs, mount_overlay, unmount
from pallet.agent.images.pull import Puller
from pallet.model.images import parse_image

pytestmark = pytest.mark.root


def store_at(path: Path, **kwargs: object) -> ImageStore:
    return ImageStore(path, **kwargs)  # type: ignore[arg-type]


def test_docker_and_oci_manifests_pull_to_one_copy_of_each_layer(
    images: PushedImages, tmp_path: Path
) -> None:
    store = store_at(tmp_path / "store")
    docker = store.ensure(parse_image(images.busybox))
    oci = store.ensure(parse_image(images.busybox_oci))
    assert docker.config.entrypoint == ("/bin/echo",)
    assert docker.config.env == ("PATH=/bin", "IMAGE=busybox")
    assert docker.layers[0].diff_id == oci.layers[0].diff_id
    assert len(os.listdir(tmp_path / "store" / "layers")) == 2  # one snapshot (+ its .size)
    snapshot = store.layer_dirs(docker)[0]
    assert os.access(snapshot / "bin" / "busybox", os.X_OK)
    # the same reference again: from the store, not the registry
    assert store.ensure(parse_image(images.busybox)) == docker
    assert [p["reference"] for p in store.pulls()] == [images.busybox, images.busybox_oci]


def test_concurrent_launches_pull_once(images: PushedImages, tmp_path: Path) -> None:
    store = store_at(tmp_path / "store")
    got, errors = [], []

    def pull() -> None:
        try:
            got.append(store.ensure(parse_image(images.shell)))
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=pull) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(got) == 6 and len(set(got)) == 1
    assert len(store.pulls()) == 1


def test_whiteouts_hide_what_lower_layers_had(images: PushedImages, tmp_path: Path) -> None:
    store = store_at(tmp_path / "store")
    image = store.ensure(parse_image(images.shell))
    top = store.layer_dirs(image)[0]
    assert stat.S_ISCHR(os.lstat(top / "opt" / "gone").st_mode)  # overlayfs' whiteout
    assert os.getxattr(top / "var" / "old", "trusted.overlay.opaque") == b"y"
    rootfs = RootFs(tmp_path / "task")
    mount_overlay(store.layer_dirs(image), rootfs)
    try:
        root = rootfs.mountpoint
        assert (root / "opt" / "keep").read_text() == "kept\n"
        assert not (root / "opt" / "gone").exists()
        assert sorted(os.listdir(root / "var" / "old")) == ["b"]
        (root / "written").write_text("x")  # lands in the task's own upper dir
        assert (rootfs.upper / "written").exists()
        assert not any((d / "written").exists() for d in store.layer_dirs(image))
    finally:
        unmount(root)


def test_a_manifest_list_resolves_to_this_nodes_platform(
    images: PushedImages, tmp_path: Path
) -> None:
    image = store_at(tmp_path / "store").ensure(parse_image(images.multi))
    assert image.config.entrypoint == ("/bin/echo", "amd64")


def test_a_missing_image_and_a_registry_that_is_down_answer_clearly(
    images: PushedImages, registry: Registry, tmp_path: Path
) -> None:
    store = store_at(tmp_path / "store")
    ref = registry.ref("nonexistent:1")
    with pytest.raises(ImageError) as info:
        store.ensure(parse_image(ref))
    assert str(info.value).startswith(f"pull {ref}: reading manifest 1 in ")
    assert "manifest unknown" in str(info.value)
    with pytest.raises(ImageError, match=r"pull 127.0.0.1:9/x:1: .*connection refused"):
        store.ensure(parse_image("127.0.0.1:9/x:1"))


def test_token_auth(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    build_image(layout, [busybox_layer()], {"Cmd": ["sh"]}, tag="t")
    with run_registry(tmp_path / "reg", token_auth=True) as reg:
        reg.push(layout, "t", "private:1")
        anonymous = store_at(tmp_path / "anon")
        with pytest.raises(ImageError, match=r"401|unauthorized|authentication required"):
            anonymous.ensure(parse_image(reg.ref("private:1")))
        puller = Puller(
            tmp_path / "s" / "blobs", tmp_path / "s" / "scratch", auth_file=reg.auth_file
        )
        image = store_at(tmp_path / "s", puller=puller).ensure(parse_image(reg.ref("private:1")))
        assert image.config.cmd == ("sh",)
        assert "repository:private:pull" in reg.token_hits


def test_a_layer_whose_content_is_not_its_diff_id_is_refused(
    registry: Registry, tmp_path: Path
) -> None:
    layout = tmp_path / "layout"
    build_image(layout, [busybox_layer()], tag="ok")
    index = json.loads((layout / "index.json").read_text())
    manifest_path = layout / "blobs" / index["manifests"][0]["digest"].replace(":", "/")
    manifest = json.loads(manifest_path.read_text())
    config_path = layout / "blobs" / manifest["config"]["digest"].replace(":", "/")
    config = json.loads(config_path.read_text())
    config["rootfs"]["diff_ids"] = ["sha256:" + "0" * 64]  # a lie about the layer
    new_config = add_blob(
        layout, json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json"
    )
    manifest["config"] = new_config
    new_manifest = add_blob(layout, json.dumps(manifest).encode(), manifest["mediaType"])
    new_manifest["annotations"] = {"org.opencontainers.image.ref.name": "forged"}
    index["manifests"].append(new_manifest)
    (layout / "index.json").write_text(json.dumps(index))
    registry.push(layout, "forged", "forged:1")
    store = store_at(tmp_path / "store")
    with pytest.raises(ImageError, match="not the image's diff id"):
        store.ensure(parse_image(registry.ref("forged:1")))
    assert not [p for p in (tmp_path / "store" / "layers").iterdir() if p.is_dir()]


def test_collection_keeps_images_in_use_and_drops_the_least_recently_used(
    images: PushedImages, tmp_path: Path
) -> None:
    clock = iter(range(1000, 2000))
    store = ImageStore(tmp_path / "store", limit=1, clock=lambda: float(next(clock)))
    shell = store.ensure(parse_image(images.shell))
    store.use("task-1", shell.reference)
    busybox = store.ensure(parse_image(images.busybox))
    # over the limit: busybox was just pulled and shell is in use, so both stay
    assert store.image(shell.reference) and store.image(busybox.reference)
    store.release("task-1")
    store.ensure(parse_image(images.multi))
    # the least recently used images no task uses are gone, with their layers and blobs
    assert store.image(shell.reference) is None and store.image(busybox.reference) is None
    left = {p.name for p in (tmp_path / "store" / "layers").iterdir() if p.is_dir()}
    assert len(left) == 1
