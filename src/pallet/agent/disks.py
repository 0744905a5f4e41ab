"""The operator's disks of an agent (``--disk-path``, ``--disk-mount``): Mesos' disk
resources with a ``PATH`` or ``MOUNT`` source, for persistent volumes of those types;
does I/O (the size of a filesystem).

``--disk-path /mnt/ssd1`` offers the free space of ``/mnt/ssd1``'s filesystem, shared
by the volumes placed there; ``--disk-mount /mnt/ssd2`` offers its whole filesystem to
one volume (Mesos' ``MOUNT``: a mount point, used whole). ``DIR:MiB`` gives the size.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from pallet.model import NodeDisk, PalletError

__all__ = ["DiskError", "parse_disk"]


class DiskError(PalletError):
    """A ``--disk-path`` or ``--disk-mount`` that cannot be offered; says why."""


def parse_disk(kind: str, text: str) -> NodeDisk:
    """``/mnt/ssd1`` or ``/mnt/ssd1:10240`` (MiB) as a disk of ``kind`` (path, mount)."""
    root, sep, size_text = text.rpartition(":") if ":" in text else (text, "", "")
    if not root.startswith("/"):
        raise DiskError(f"{text!r}: the disk's directory must be an absolute path")
    path = Path(root)
    if not path.is_dir():
        raise DiskError(f"{root} is not a directory")
    if kind == "mount" and not path.is_mount():
        raise DiskError(f"{root} is not a mount point (a mount disk is a filesystem of its own)")
    if sep:
        try:
            size = int(size_text)
        except ValueError:
            raise DiskError(f"{text!r}: the size must be whole MiB") from None
    else:
        usage = shutil.disk_usage(root)
        size = (usage.total if kind == "mount" else usage.free) >> 20
    if size < 1:
        raise DiskError(f"{root}: no space to offer")
    return NodeDisk(kind, str(path), size)
