"""Unpacking one image layer into a snapshot directory for overlayfs; does I/O (GNU tar,
and zstd, as child processes).

A layer's bytes come as a stream of chunks: a blob read from the store, or one another
process is still writing (``follow``). gzip is decompressed in this process (zlib,
which releases the GIL: ten times faster than piping through ``gzip -dc``, and it runs
beside tar on another core), zstd by ``zstd -dc``; the tar stream is hashed (it must
match the layer's diff id, so a corrupt or forged blob is never used) and piped into
``tar -x`` run as root with numeric owners, permissions and extended attributes kept.
GNU tar refuses ``..`` members and never writes through a symlink a member made, so a
layer cannot write outside its snapshot.

OCI whiteouts become overlayfs ones: ``.wh.<name>`` a 0/0 character device ``<name>``
(it hides ``name`` of the layers below), ``.wh..wh..opq`` the ``trusted.overlay.opaque``
attribute on its directory (it hides everything below that directory). The snapshot is
built under a temporary name and renamed into place, so it exists whole or not at all.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import stat
import subprocess
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pallet.agent.exits import sandbox_bytes
from pallet.agent.images.config import ImageError, Layer

__all__ = [
    "Unpacked",
    "compression_of",
    "compression_of_head",
    "convert_whiteouts",
    "file_chunks",
    "follow",
    "unpack_blob",
    "unpack_layer",
    "unpack_stream",
]

_CHUNK = 1 << 20
_OUT = 4 << 20
"""Most bytes one step of gzip decompression produces (a small blob may inflate a lot)."""
_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"
_TAR = [
    "tar",
    "-x",
    "--blocking-factor=2048",  # 1 MiB reads from the pipe, not 10 KiB
    "--read-full-records",
    "--numeric-owner",
    "--same-owner",
    "--same-permissions",
    "--xattrs",
    "--xattrs-include=*",
    "-f",
    "-",
]
HEAD = 512
"""Bytes of a blob that tell how it is compressed (a tar header is 512)."""


def unpack_layer(
    blob: Path, layer: Layer, dest: Path, cancelled: Callable[[], bool] = lambda: False
) -> int:
    """Unpack ``layer`` (its blob at ``blob``) into the new directory ``dest``; return the
    bytes the snapshot takes on disk. ``ImageError`` if the content is not the layer's."""
    if not layer.diff_id.startswith("sha256:"):
        raise ImageError(f"layer {layer.diff_id}: only sha256 diff ids are supported")
    work = unpack_blob(blob, layer.compression, dest.parent, cancelled, name=layer.digest)
    try:
        if work.diff_id != layer.diff_id:
            raise ImageError(
                f"layer {layer.digest}: its content's digest is {work.diff_id}, "
                f"not the image's diff id {layer.diff_id}"
            )
        work.path.replace(dest)
    except BaseException:
        shutil.rmtree(work.path, ignore_errors=True)
        raise
    return sandbox_bytes(dest)


@dataclass(frozen=True, slots=True)
class Unpacked:
    """A layer unpacked under a temporary name, and the digest of its tar (its diff id)."""

    path: Path
    diff_id: str


def compression_of(blob: Path) -> str | None:
    """How a blob is compressed, by its first bytes (``""`` a plain tar); None if it is
    not a layer at all (a manifest or a config)."""
    try:
        with open(blob, "rb") as f:
            return compression_of_head(f.read(HEAD))
    except OSError:
        return None


def compression_of_head(head: bytes) -> str | None:
    """``compression_of`` for a blob's first ``HEAD`` bytes (fewer if it is shorter)."""
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return "zstd"
    if head[257:262] == b"ustar":
        return ""
    return None


def unpack_blob(
    blob: Path,
    compression: str,
    parent: Path,
    cancelled: Callable[[], bool] = lambda: False,
    *,
    name: str = "",
) -> Unpacked:
    """Unpack a layer blob into a new temporary directory under ``parent``, whiteouts
    converted; the caller renames it into place once its diff id is the one expected."""
    with open(blob, "rb", buffering=0) as raw:
        return unpack_stream(
            file_chunks(raw), compression, parent, cancelled, name=name or blob.name
        )


def unpack_stream(
    chunks: Iterable[bytes],
    compression: str,
    parent: Path,
    cancelled: Callable[[], bool] = lambda: False,
    *,
    name: str,
) -> Unpacked:
    """``unpack_blob`` for a blob given as its bytes, in order (``name`` says which in
    errors): each chunk is decompressed, hashed and unpacked as it comes."""
    work = parent / f".{name.rpartition(':')[2][:16]}.{uuid.uuid4().hex[:8]}.tmp"
    work.mkdir(parents=True)
    try:
        diff = _extract(chunks, compression, work, cancelled, name)
        convert_whiteouts(work)
        work.chmod(0o755)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return Unpacked(work, f"sha256:{diff}")


def file_chunks(f: IO[bytes]) -> Iterator[bytes]:
    """The rest of a file, a chunk at a time."""
    while chunk := f.read(_CHUNK):
        yield chunk


def follow(
    f: IO[bytes],
    written: Callable[[], bool],
    cancelled: Callable[[], bool] = lambda: False,
    *,
    poll: float = 0.005,
) -> Iterator[bytes]:
    """The bytes of a file another process is still writing (``f`` opened unbuffered), as
    they arrive (in pieces of at least 256 KiB until the end: fewer, larger steps
    downstream), to its end once ``written()`` says the writer is done with it.
    ``written`` raises ``ImageError`` when the writer abandoned the file."""
    done = False
    pending = bytearray()
    while True:
        chunk = f.read(_CHUNK)
        if chunk:
            pending += chunk
            if len(pending) >= _CHUNK // 4:
                yield bytes(pending)
                pending.clear()
            continue
        if done:
            if pending:
                yield bytes(pending)
            return
        if cancelled():
            raise ImageError("unpacking cancelled")
        if written():
            done = True  # whatever came before the writer said so is read next
        else:
            time.sleep(poll)


def _extract(
    chunks: Iterable[bytes],
    compression: str,
    work: Path,
    cancelled: Callable[[], bool],
    name: str,
) -> str:
    """Decompress and untar ``chunks`` into ``work``; the sha256 of the tar stream."""
    hasher = hashlib.sha256()
    with (
        tempfile.TemporaryFile() as tar_err,
        contextlib.closing(_decompressed(chunks, compression, name)) as stream,
    ):
        tar = subprocess.Popen(
            _TAR, cwd=work, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=tar_err
        )
        assert tar.stdin is not None
        _widen(tar.stdin)
        sink: IO[bytes] | None = tar.stdin
        try:
            for piece in stream:
                if cancelled():
                    raise ImageError(f"layer {name}: unpacking cancelled")
                hasher.update(piece)
                if sink is not None:
                    try:
                        sink.write(piece)
                    except BrokenPipeError:
                        sink = None  # tar stopped: its status says why; the hash goes on
            with contextlib.suppress(BrokenPipeError):
                tar.stdin.close()
            tar_code = tar.wait()
        finally:
            if tar.poll() is None:
                tar.kill()
                tar.wait()
            with contextlib.suppress(OSError):
                tar.stdin.close()
        if tar_code != 0:
            tar_err.seek(0)
            message = _last_line(tar_err.read().decode(errors="replace"))
            raise ImageError(f"layer {name}: cannot unpack: {message}")
    return hasher.hexdigest()


def _widen(pipe: IO[bytes]) -> None:
    """Give a pipe a 1 MiB buffer (Linux' default most): a layer then crosses it in a
    few hundred writes and wake-ups instead of tens of thousands."""
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, _CHUNK)


def _decompressed(chunks: Iterable[bytes], compression: str, name: str) -> Generator[bytes]:
    if compression == "gzip":
        return _gunzip(chunks, name)
    if compression == "zstd":
        return _unzstd(chunks, name)
    if compression == "":
        return (chunk for chunk in chunks)
    raise ImageError(f"layer {name}: unsupported compression {compression!r}")


def _gunzip(chunks: Iterable[bytes], name: str) -> Generator[bytes]:
    """gzip's members one after another (as ``gzip -dc``), trailing zero bytes allowed."""
    inflate = zlib.decompressobj(31)
    members, started, trailing = 0, False, False
    try:
        for data in chunks:
            while data:
                if members and not started and data[:1] == b"\0":
                    trailing = True
                if trailing:
                    if data.strip(b"\0"):
                        raise ImageError(f"layer {name}: cannot decompress: trailing garbage")
                    break
                started = True
                out = inflate.decompress(data, _OUT)
                if out:
                    yield out
                if inflate.eof:  # a member ended: another may follow
                    members += 1
                    data = inflate.unused_data
                    inflate, started = zlib.decompressobj(31), False
                else:
                    data = inflate.unconsumed_tail
        if started:
            while out := inflate.decompress(b"", _OUT):
                yield out
            if not inflate.eof:
                raise ImageError(f"layer {name}: cannot decompress: the gzip data ends early")
        elif not members:
            raise ImageError(f"layer {name}: cannot decompress: no gzip data")
    except zlib.error as e:
        raise ImageError(f"layer {name}: cannot decompress: {e}") from e


def _unzstd(chunks: Iterable[bytes], name: str) -> Generator[bytes]:
    """``zstd -dc`` fed from a thread (the chunks may still be arriving)."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            ["zstd", "-dcq"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err
        )
        assert proc.stdin is not None and proc.stdout is not None
        _widen(proc.stdin)
        _widen(proc.stdout)
        failed: list[BaseException] = []

        def feed(sink: IO[bytes]) -> None:
            try:
                for chunk in chunks:
                    sink.write(chunk)
            except BrokenPipeError:
                pass  # zstd stopped: its status says why
            except BaseException as e:
                failed.append(e)
            finally:
                with contextlib.suppress(OSError):
                    sink.close()

        feeder = threading.Thread(target=feed, args=(proc.stdin,), daemon=True)
        feeder.start()
        try:
            while piece := proc.stdout.read(_CHUNK):
                yield piece
            code = proc.wait()
            feeder.join()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
        if failed:
            raise failed[0]
        if code != 0:
            err.seek(0)
            message = _last_line(err.read().decode(errors="replace"))
            raise ImageError(f"layer {name}: cannot decompress: {message}")


def convert_whiteouts(root: Path) -> None:
    """Turn OCI whiteout files below ``root`` into overlayfs whiteouts."""
    for directory, dirs, files in os.walk(root):
        for name in files + [d for d in dirs if d.startswith(_WHITEOUT)]:
            if not name.startswith(_WHITEOUT):
                continue
            path = os.path.join(directory, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
            if name == _OPAQUE:
                os.setxattr(directory, "trusted.overlay.opaque", b"y")
                continue
            hidden = os.path.join(directory, name[len(_WHITEOUT) :])
            if not os.path.lexists(hidden):  # one of this layer's own already hides it
                os.mknod(hidden, stat.S_IFCHR | 0o000, os.makedev(0, 0))


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no message"
