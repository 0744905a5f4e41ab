"""Opening a file below a directory without following any link on the way; does I/O.

A task owns its sandbox and may replace ``stdout`` with a symlink to ``/etc/shadow``, a
hard link to it, a FIFO that blocks the reader, or turn its sandbox into a link to a
sibling's. The agent reads logs for anyone allowed to read them, so every component
below the trusted root is opened relative to the one before with ``O_NOFOLLOW``
(``openat2``'s ``RESOLVE_NO_SYMLINKS`` done by hand, which works on every kernel), and
the file must be a regular file with one link.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path, PurePath

__all__ = ["UnsafePath", "open_beneath"]


class UnsafePath(OSError):
    """The path leaves its root, passes a link, or ends at something not a plain file."""


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY


def open_beneath(root: str | Path, path: str | PurePath) -> int:
    """A read-only descriptor of ``path`` (relative to ``root``, or absolute below it).

    Raises ``FileNotFoundError`` when a component is missing and ``UnsafePath`` when one
    is a link, ``..``, or the end is not a regular file with exactly one link."""
    root = Path(root)
    rel = PurePath(path)
    if rel.is_absolute():
        try:
            rel = rel.relative_to(root)
        except ValueError:
            raise UnsafePath(f"{path} is not below {root}") from None
    parts = rel.parts
    if not parts or any(p in ("..", ".", "") or "/" in p for p in parts):
        raise UnsafePath(f"{path} does not name a file below {root}")
    fd = os.open(root, _DIR_FLAGS)  # the root is the agent's own: trusted as given
    try:
        for i, name in enumerate(parts):
            child = _step(fd, name, _FILE_FLAGS if i == len(parts) - 1 else _DIR_FLAGS)
            os.close(fd)
            fd = child
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafePath(f"{path} below {root} is not a regular file")
        if info.st_nlink != 1:
            # A hard link to a file elsewhere (/etc/shadow) reads as a plain file.
            raise UnsafePath(f"{path} below {root} has {info.st_nlink} links")
        os.set_blocking(fd, True)
        return fd
    except BaseException:
        os.close(fd)
        raise


def _step(parent: int, name: str, flags: int) -> int:
    """Open ``name`` in the directory ``parent`` without following it."""
    try:
        return os.open(name, flags, dir_fd=parent)
    except OSError as e:
        # O_NOFOLLOW on a symlink: ELOOP; O_DIRECTORY on a non-directory: ENOTDIR.
        if e.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
            raise UnsafePath(f"{name} is a link or not a directory") from None
        raise
