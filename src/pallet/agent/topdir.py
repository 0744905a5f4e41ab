"""Marking a directory as the top of a directory hierarchy for the filesystem's inode
allocator (``chattr +T``); does I/O.

ext4 puts a new file's inode in its directory's block group and a new directory near its
parent, so every sandbox of an agent, and the ``stdout`` and ``stderr`` in each, would
share the group the sandbox root sits in. Where that group's inodes are crowded (a busy
``/tmp``), each allocation searched for a free one: on the machine the benchmarks ran
on, the three inodes of a task's sandbox cost 1-3 ms of the agent's CPU, more than the
rest of its launch. Under a directory flagged ``FS_TOPDIR_FL`` ext4 spreads the
subdirectories over groups with room (the Orlov allocator it uses for top-level
directories), and a sandbox's three inodes cost about 0.1 ms. The flag is only a hint:
on a filesystem without it (tmpfs, xfs, overlay) nothing changes, and nothing fails.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import logging
import os
from pathlib import Path

__all__ = ["FS_TOPDIR_FL", "mark_top_directory"]

log = logging.getLogger(__name__)

FS_TOPDIR_FL = 0x00020000
"""``<linux/fs.h>``: top of a directory hierarchy (ext2/3/4)."""
_FS_IOC_GETFLAGS = 0x80086601  # _IOR('f', 1, long); the kernel reads and writes an int
_FS_IOC_SETFLAGS = 0x40086602  # _IOW('f', 2, long)


def mark_top_directory(directory: str | Path) -> bool:
    """Set ``FS_TOPDIR_FL`` on ``directory``; True if it is set now. Any failure (a
    filesystem without inode flags, no permission) leaves the directory as it was."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        log.debug("cannot open %s to mark it a top directory: %s", directory, e)
        return False
    try:
        flags = array.array("i", [0])
        with contextlib.suppress(OSError):
            fcntl.ioctl(fd, _FS_IOC_GETFLAGS, flags, True)
            if flags[0] & FS_TOPDIR_FL:
                return True
            flags[0] |= FS_TOPDIR_FL
            fcntl.ioctl(fd, _FS_IOC_SETFLAGS, flags, False)
            return True
        return False
    finally:
        os.close(fd)
