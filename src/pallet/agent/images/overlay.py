"""A task's root filesystem: an overlayfs of its image's layer snapshots (read-only, shared
by every task of the image) under a writable upper directory of its own; does I/O
(mount(2) and umount2(2) through libc).

Nothing of the image is copied per task: starting one more task of an image costs a
mount and two empty directories. What the task writes goes to its upper directory,
which is counted against its disk quota and removed with it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import subprocess
from pathlib import Path

from pallet.agent.images.config import ImageError

__all__ = ["RootFs", "is_mounted", "mount_overlay", "unmount"]

_MNT_DETACH = 2
_MAX_OPTIONS = 4000  # the kernel takes one page of mount options
_libc = ctypes.CDLL(None, use_errno=True)


class RootFs:
    """Where a task's root filesystem lives: ``<dir>/rootfs`` (the mount), ``upper`` and
    ``work`` (overlayfs' writable layer and its scratch directory)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.mountpoint = directory / "rootfs"
        self.upper = directory / "upper"
        self.work = directory / "work"


def mount_overlay(lower: list[Path], rootfs: RootFs) -> None:
    """Mount ``lower`` (top first) under ``rootfs``'s upper directory at its mountpoint."""
    for d in (rootfs.mountpoint, rootfs.upper, rootfs.work):
        d.mkdir(parents=True, exist_ok=True)
    if is_mounted(rootfs.mountpoint):
        return
    paths = [*map(str, lower), str(rootfs.upper), str(rootfs.work)]
    if any(c in p for p in paths for c in ",:"):
        raise ImageError(f"cannot mount {rootfs.mountpoint}: a path holds ',' or ':'")
    options = f"lowerdir={':'.join(paths[:-2])},upperdir={paths[-2]},workdir={paths[-1]}"
    if len(options) < _MAX_OPTIONS:
        if (
            _libc.mount(b"overlay", os.fsencode(rootfs.mountpoint), b"overlay", 0, options.encode())
            != 0
        ):
            err = ctypes.get_errno()
            raise ImageError(f"cannot mount the root filesystem: {os.strerror(err)}")
        return
    # Too many layers for one page of absolute paths: mount(8) in a child that works in
    # the layers' directory (the agent's own working directory is shared by its threads).
    base = lower[0].parent
    relative = ":".join(os.path.relpath(p, base) for p in lower)
    short = f"lowerdir={relative},upperdir={rootfs.upper},workdir={rootfs.work}"
    done = subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o", short, str(rootfs.mountpoint)],
        cwd=base,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise ImageError(f"cannot mount the root filesystem: {done.stderr.strip()}")


def unmount(path: Path) -> None:
    """Unmount ``path`` if something is mounted there (lazily if it is busy)."""
    if not is_mounted(path):
        return
    target = os.fsencode(path)
    if _libc.umount2(target, 0) == 0:
        return
    err = ctypes.get_errno()
    if err == errno.EBUSY:
        _libc.umount2(target, _MNT_DETACH)
    elif err not in (errno.EINVAL, errno.ENOENT):
        raise ImageError(f"cannot unmount {path}: {os.strerror(err)}")


def is_mounted(path: Path) -> bool:
    with contextlib.suppress(OSError):
        return os.path.ismount(path)
    return False
