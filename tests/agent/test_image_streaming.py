"""Unpacking layers while they download: gzip decoded in the agent, a blob followed as
skopeo writes it, and what a pull leaves when the registry lies or dies mid-blob
(nothing: no snapshot, no blob, no image record)."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from oci import File, Registry, build_image, layer_tar, run_registry
from pallet.agent.images import ImageError, ImageStore
from pallet.agent.images.layers import follow, unpack_stream
from pallet.model.images import parse_image

pytestmark = pytest.mark.root  # GNU tar keeps owners, which needs root

LAYER = {"a": File(b"alpha\n"), "b": File(os.urandom(300_000), 0o755)}


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def snapshots_and_leftovers(layers: Path) -> list[str]:
    return sorted(os.listdir(layers)) if layers.is_dir() else []


@pytest.mark.parametrize("size", [97, 4096, 1 << 20])
def test_gzip_members_and_trailing_zeros_unpack_at_any_chunk_size(
    tmp_path: Path, size: int
) -> None:
    tar = layer_tar(LAYER)
    half = len(tar) // 2
    blob = gzip.compress(tar[:half], 1) + gzip.compress(tar[half:], 9) + bytes(700)
    done = unpack_stream(chunked(blob, size), "gzip", tmp_path, name="sha256:x")
    assert done.diff_id == "sha256:" + hashlib.sha256(tar).hexdigest()
    assert (done.path / "a").read_text() == "alpha\n"
    assert os.stat(done.path / "b").st_mode & 0o777 == 0o755


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (lambda t: gzip.compress(t)[:-100], "the gzip data ends early"),
        (lambda t: gzip.compress(t) + b"\0\0junk", "trailing garbage"),
        (lambda t: b"", "no gzip data"),
        (lambda t: gzip.compress(t)[:-8] + b"\0" * 8, "incorrect data check"),
    ],
)
def test_broken_gzip_is_an_error_and_leaves_nothing(
    tmp_path: Path, blob: object, message: str
) -> None:
    data = blob(layer_tar(LAYER))  # type: ignore[operator]
    with pytest.raises(ImageError, match=message):
        unpack_stream(chunked(data, 65536), "gzip", tmp_path, name="sha256:x")
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(shutil.which("zstd") is None, reason="needs zstd (CI installs it)")
def test_zstd_streams_through_zstd(tmp_path: Path) -> None:
    tar = layer_tar(LAYER)
    blob = subprocess.run(["zstd", "-q", "-c"], input=tar, capture_output=True, check=True).stdout
    done = unpack_stream(chunked(blob, 1000), "zstd", tmp_path, name="sha256:z")
    assert done.diff_id == "sha256:" + hashlib.sha256(tar).hexdigest()
    assert (done.path / "a").read_text() == "alpha\n"
    with pytest.raises(ImageError, match="cannot decompress"):
        unpack_stream(chunked(blob[:-50], 1000), "zstd", tmp_path / "z", name="sha256:z")


def test_follow_reads_a_file_while_it_is_written_and_stops_once_it_is_renamed(
    tmp_path: Path,
) -> None:
    path, final = tmp_path / "partial", tmp_path / "whole"
    data = os.urandom(3 << 20)
    path.write_bytes(b"")
    got: list[bytes] = []
    with open(path, "rb", buffering=0) as f:

        def written() -> bool:
            return not path.exists()

        reader = threading.Thread(target=lambda: got.extend(follow(f, written)))
        reader.start()
        with open(path, "ab") as out:
            for piece in chunked(data, 100_000):
                out.write(piece)
                out.flush()
                time.sleep(0.001)
        path.rename(final)
        reader.join(30)
    assert not reader.is_alive()
    assert b"".join(got) == data


def test_follow_stops_with_the_writers_error(tmp_path: Path) -> None:
    path = tmp_path / "partial"
    path.write_bytes(b"x" * 10)

    def dropped() -> bool:
        raise ImageError("partial: the download was abandoned")

    with open(path, "rb", buffering=0) as f, pytest.raises(ImageError, match="abandoned"):
        list(follow(f, dropped))


# ------------------------------------------------------------------ through a registry


class SlowProxy:
    """A TCP proxy to a registry that sends its answers at ``rate`` bytes a second and,
    with ``die_after``, dies (closes every connection and stops listening) once one
    connection carried that many bytes: a registry that fails in the middle of a blob."""

    def __init__(self, upstream: str, rate: int, die_after: int | None = None) -> None:
        self.upstream = upstream
        self.rate = rate
        self.die_after = die_after
        self.died = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.host = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def ref(self, name: str) -> str:
        return f"{self.host}/{name}"

    def close(self) -> None:
        for s in self.sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            host, port = self.upstream.rsplit(":", 1)
            server = socket.create_connection((host, int(port)))
            self.sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, slow: bool) -> None:
        sent = 0
        try:
            while data := src.recv(16384):
                dst.sendall(data)
                sent += len(data)
                if slow:
                    time.sleep(len(data) / self.rate)
                    if self.die_after is not None and sent > self.die_after:
                        self.died.set()
                        self.close()
                        return
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def big(tmp_path: Path) -> Iterator[tuple[Registry, Path, str]]:
    """A registry with ``big:1``: one gzip layer of 6 MiB of random bytes."""
    layout = tmp_path / "layout"
    build_image(layout, [{"data": File(os.urandom(6 << 20))}], {"Cmd": ["sh"]}, tag="big")
    with run_registry(tmp_path / "registry") as reg:
        reg.push(layout, "big", "big:1")
        yield reg, tmp_path / "registry", "big:1"


def pull_in_thread(store: ImageStore, ref: str) -> tuple[threading.Thread, list[object]]:
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(store.ensure(parse_image(ref)))
        except Exception as e:
            outcome.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def unpacking_while_downloading(root: Path) -> bool:
    """skopeo's partial blob is there and a layer is being unpacked, with bytes already."""
    partial = list((root / "scratch").glob("pull-*/oci-put-blob*"))
    started = [p for p in (root / "layers").glob(".*.tmp/data") if p.stat().st_size > 0]
    return bool(partial and started)


def nothing_stored(root: Path) -> None:
    assert [p.name for p in (root / "layers").iterdir()] == []  # no snapshot, no .tmp
    assert list((root / "images").iterdir()) == []
    blobs = root / "blobs" / "sha256"
    layers = [p for p in blobs.iterdir() if p.stat().st_size > 1 << 20] if blobs.is_dir() else []
    assert layers == []
    assert list((root / "scratch").iterdir()) == []


def test_a_layer_is_unpacked_while_its_blob_downloads(
    big: tuple[Registry, Path, str], tmp_path: Path
) -> None:
    reg, _, name = big
    proxy = SlowProxy(reg.host, rate=4 << 20)
    try:
        root = tmp_path / "store"
        store = ImageStore(root)
        seen = threading.Event()
        thread, outcome = pull_in_thread(store, proxy.ref(name))

        def watch() -> None:
            while thread.is_alive() and not seen.is_set():
                if unpacking_while_downloading(root):
                    seen.set()
                time.sleep(0.005)

        watcher = threading.Thread(target=watch)
        watcher.start()
        thread.join(120)
        watcher.join()
        (image,) = outcome
        assert not isinstance(image, Exception), image
        assert seen.is_set(), "the layer was not unpacked while its blob downloaded"
        (snapshot,) = store.layer_dirs(image)  # type: ignore[arg-type]
        assert (snapshot / "data").stat().st_size == 6 << 20
        assert [p.name for p in (root / "layers").iterdir() if p.name.startswith(".")] == []
    finally:
        proxy.close()


def test_a_registry_that_dies_mid_blob_leaves_nothing_stored(
    big: tuple[Registry, Path, str], tmp_path: Path
) -> None:
    reg, _, name = big
    proxy = SlowProxy(reg.host, rate=4 << 20, die_after=2 << 20)
    try:
        root = tmp_path / "store"
        store = ImageStore(root)
        with pytest.raises(ImageError) as info:
            store.ensure(parse_image(proxy.ref(name)))
        assert proxy.died.is_set()
        assert str(info.value).startswith(f"pull {proxy.ref(name)}: ")
        assert "blob" in str(info.value) or "EOF" in str(info.value), info.value
        nothing_stored(root)
    finally:
        proxy.close()


def test_a_blob_whose_digest_is_wrong_never_becomes_a_snapshot(
    big: tuple[Registry, Path, str], tmp_path: Path
) -> None:
    """The registry serves different bytes under the layer's digest: still valid gzip of
    the very same tar (only the gzip header's OS byte differs), so its content has the
    right diff id and unpacks cleanly while it streams in; the digest check must still
    keep it out of the store."""
    reg, directory, name = big
    data_files = [
        p for p in (directory / "data").rglob("blobs/sha256/*/*/data") if p.stat().st_size > 1 << 20
    ]
    (layer_blob,) = data_files
    tampered = bytearray(layer_blob.read_bytes())
    tampered[9] ^= 0xFF  # the OS byte: gzip ignores it
    gzip.decompress(bytes(tampered))  # still valid gzip
    layer_blob.write_bytes(bytes(tampered))
    proxy = SlowProxy(reg.host, rate=8 << 20)
    try:
        root = tmp_path / "store"
        store = ImageStore(root)
        with pytest.raises(ImageError, match=r"(?i)digest"):
            store.ensure(parse_image(proxy.ref(name)))
        nothing_stored(root)
    finally:
        proxy.close()
