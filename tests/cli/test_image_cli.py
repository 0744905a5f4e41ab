"""`pallet image load` and `pallet image registry`: an archive (docker save or OCI) goes
into a registry the agents pull from; bad archives are one-line errors."""

from __future__ import annotations

import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from oci import Registry, build_image, busybox_layer, free_port
from pallet.agent.images import ImageStore
from pallet.cli.image import archive_format
from pallet.model import ValidationError
from pallet.model.images import parse_image


def pallet(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pallet.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def archives(tmp_path: Path) -> tuple[Path, Path]:
    layout = tmp_path / "layout"
    build_image(layout, [busybox_layer()], {"Cmd": ["/bin/echo", "loaded"]}, tag="app")
    oci = tmp_path / "app-oci.tar"
    with tarfile.open(oci, "w") as tar:
        for item in sorted(layout.iterdir()):
            tar.add(item, arcname=item.name)
    docker = tmp_path / "app-docker.tar"
    subprocess.run(
        ["skopeo", "copy", "--quiet", f"oci:{layout}:app", f"docker-archive:{docker}:team/web:2"],
        check=True,
    )
    return oci, docker


@pytest.mark.root  # pulling into a store unpacks layers as root (whiteouts are devices)
def test_load_puts_docker_and_oci_archives_where_agents_pull_them(
    archives: tuple[Path, Path], registry: Registry, tmp_path: Path
) -> None:
    oci, docker = archives
    loaded = pallet("image", "load", str(docker), "--registry", registry.host)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == f"loaded {registry.host}/team/web:2"  # the archive's tag
    loaded = pallet("image", "load", str(oci), "--registry", registry.host)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == f"loaded {registry.host}/app:latest"
    store = ImageStore(tmp_path / "store")
    for ref in (f"{registry.host}/team/web:2", f"{registry.host}/app:latest"):
        assert store.ensure(parse_image(ref)).config.cmd == ("/bin/echo", "loaded")


def test_bad_archives_are_one_line_errors(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_text("not a tar")
    with pytest.raises(ValidationError, match="is not a readable tar archive"):
        archive_format(junk)
    empty = tmp_path / "empty.tar"
    with tarfile.open(empty, "w") as tar:
        tar.addfile(tarfile.TarInfo("hello.txt"))
    with pytest.raises(ValidationError, match="neither a `docker save` image nor an OCI"):
        archive_format(empty)
    failed = pallet("image", "load", str(junk))  # the CLI says it in one line
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert "is not a readable tar archive" in failed.stderr


def test_the_registry_command_runs_docker_registry(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pallet.cli.image",
            "registry",
            "--port",
            str(port),
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.05)
        assert (tmp_path / "config.yml").exists()
    finally:
        proc.terminate()
        proc.wait(10)
