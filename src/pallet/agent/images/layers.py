"""Unpacking one image layer into a snapshot directory for overlayfs; does I/O (gzip/zstd
and GNU tar as child processes).

The compressed blob is decompressed by ``gzip -dc`` (or ``zstd -dc``) and piped through
this process, which hashes the tar stream (it must match the layer's diff id, so a
corrupt or forged blob is never used), into ``tar -x`` run as root with numeric owners,
permissions and extended attributes kept. GNU tar refuses ``..`` members and never
writes through a symlink a member made, so a layer cannot write outside its snapshot.

OCI whiteouts become overlayfs ones: ``.wh.<name>`` a 0/0 character device ``<name>``
(it hides ``name`` of the layers below), ``.wh..wh..opq`` the ``trusted.overlay.opaque``
attribute on its directory (it hides everything below that directory). The snapshot is
built under a temporary name and renamed into place, so it exists whole or not at all.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pallet.agent.exits import sandbox_bytes
from pallet.agent.images.config import ImageError, Layer

__all__ = ["Unpacked", "compression_of", "convert_whiteouts", "unpack_blob", "unpack_layer"]

_CHUNK = 1 << 20
_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"
_DECOMPRESS = {"gzip": ["gzip", "-dc"], "zstd": ["zstd", "-dcq"]}
_TAR = [
    "tar",
    "-x",
    "--numeric-owner",
    "--same-owner",
    "--same-permissions",
    "--xattrs",
    "--xattrs-include=*",
    "-f",
    "-",
]


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
            head = f.read(512)
    except OSError:
        return None
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
    work = parent / f".{blob.name[:16]}.{uuid.uuid4().hex[:8]}.tmp"
    work.mkdir(parents=True)
    try:
        diff = _extract(blob, compression, work, cancelled, name or blob.name)
        convert_whiteouts(work)
        work.chmod(0o755)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return Unpacked(work, f"sha256:{diff}")


def _extract(
    blob: Path, compression: str, work: Path, cancelled: Callable[[], bool], name: str
) -> str:
    """Decompress and untar ``blob`` into ``work``; the sha256 of the tar stream."""
    hasher = hashlib.sha256()
    decompress = None
    with open(blob, "rb") as raw:
        if compression:
            decompress = subprocess.Popen(
                _DECOMPRESS[compression],
                stdin=raw,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            assert decompress.stdout is not None
            source = decompress.stdout
        else:
            source = raw
        tar = subprocess.Popen(
            _TAR, cwd=work, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        assert tar.stdin is not None
        try:
            try:
                while chunk := source.read(_CHUNK):
                    if cancelled():
                        raise ImageError(f"layer {name}: unpacking cancelled")
                    hasher.update(chunk)
                    tar.stdin.write(chunk)
            except BrokenPipeError:
                pass  # tar stopped early: its status says why
            finally:
                with contextlib.suppress(BrokenPipeError):
                    tar.stdin.close()
            tar_err = tar.stderr.read().decode(errors="replace") if tar.stderr else ""
            tar_code = tar.wait()
            unzip_err, unzip_code = "", 0
            if decompress is not None:
                unzip_err = (
                    decompress.stderr.read().decode(errors="replace") if decompress.stderr else ""
                )
                unzip_code = decompress.wait()
        finally:
            for proc in (tar, decompress):
                if proc is not None and proc.poll() is None:
                    proc.kill()
                    proc.wait()
    if unzip_code != 0:
        raise ImageError(f"layer {name}: cannot decompress: {_last_line(unzip_err)}")
    if tar_code != 0:
        raise ImageError(f"layer {name}: cannot unpack: {_last_line(tar_err)}")
    return hasher.hexdigest()


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
