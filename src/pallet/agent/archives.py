"""Extracting fetched archives into a sandbox, as the Mesos fetcher does; does I/O.

By file name, as Mesos decides: ``.tar``, ``.tgz``/``.tar.gz``, ``.tbz2``/``.tar.bz2``,
``.txz``/``.tar.xz`` are tar archives, ``.zip`` a zip, and any other ``.gz`` one
gzipped file (written without its ``.gz``). Anything else is not an archive and stays
as it is. Nothing may land outside the destination: absolute names, ``..``, links that
point outside it and device files are refused (tarfile's ``data`` filter where Python
has it, the same checks by hand where it does not).
"""

from __future__ import annotations

import gzip
import os
import shutil
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from pallet.model import PalletError

__all__ = ["ArchiveError", "archive_kind", "extract"]

_TAR = (".tar", ".tgz", ".tar.gz", ".tbz2", ".tar.bz2", ".txz", ".tar.xz")


class ArchiveError(PalletError):
    """An archive could not be read, or would write outside its destination."""


def archive_kind(name: str) -> str | None:
    """``"tar"``, ``"zip"``, ``"gz"`` or None (not an archive), from a file name."""
    lower = name.lower()
    if lower.endswith(_TAR):
        return "tar"
    if lower.endswith(".zip"):
        return "zip"
    if lower.endswith(".gz"):
        return "gz"
    return None


def extract(archive: Path, dest: Path, name: str | None = None) -> bool:
    """Extract ``archive`` (whose kind ``name`` tells, default its own name) into
    ``dest``; False if it is not an archive. Raises ``ArchiveError``."""
    kind = archive_kind(name or archive.name)
    try:
        if kind == "tar":
            _untar(archive, dest)
        elif kind == "zip":
            _unzip(archive, dest)
        elif kind == "gz":
            target = dest / Path(name or archive.name).name[: -len(".gz")]
            with gzip.open(archive, "rb") as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
        else:
            return False
    except (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile) as e:
        raise ArchiveError(f"cannot extract {name or archive.name}: {e}") from e
    return True


def _untar(archive: Path, dest: Path) -> None:
    with tarfile.open(archive, "r:*") as tar:
        if hasattr(tarfile, "data_filter"):
            try:
                tar.extractall(dest, filter="data")
            except tarfile.FilterError as e:
                raise ArchiveError(f"refused: {e}") from e
            return
        members = tar.getmembers()  # Pythons without extraction filters
        for member in members:
            _check_member(member, dest)
        tar.extractall(dest, members=members)


def _check_member(member: tarfile.TarInfo, dest: Path) -> None:
    """What tarfile's ``data`` filter refuses, for Pythons that lack it."""
    if member.isdev() or member.isfifo():
        raise ArchiveError(f"refused: {member.name} is a device or a FIFO")
    _inside(member.name, dest)
    if member.issym():
        _inside(str(PurePosixPath(member.name).parent / member.linkname), dest, member.name)
    if member.islnk():
        _inside(member.linkname, dest, member.name)


def _inside(name: str, dest: Path, what: str | None = None) -> None:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts:
        raise ArchiveError(f"refused: {what or name} would leave the destination")
    real = os.path.realpath(dest / name)
    if os.path.commonpath([real, os.path.realpath(dest)]) != os.path.realpath(dest):
        raise ArchiveError(f"refused: {what or name} would leave the destination")


def _unzip(archive: Path, dest: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            _inside(info.filename, dest)
        zf.extractall(dest)  # zipfile drops absolute and ".." parts itself
        for info in zf.infolist():
            mode = (info.external_attr >> 16) & 0o777
            if mode and not info.is_dir():
                os.chmod(dest / info.filename, mode)
