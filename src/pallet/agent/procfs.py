"""Facts about processes and the running kernel read from ``/proc``; does I/O.

A pid alone does not name a process for long: once it ends, the kernel may give the
number to another. The pid with its start time (and the boot it happened in) does.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["read_boot_id", "read_environ", "read_start_time"]

_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def read_start_time(pid: int, proc: str | Path = "/proc") -> int | None:
    """When ``pid`` started, in clock ticks after boot (``stat`` field 22); None if no
    such process exists or it has exited and is waiting to be reaped (a zombie)."""
    try:  # one read: the line is far shorter than 4 KiB (the name is at most 64 bytes)
        fd = os.open(f"{proc}/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
        try:
            stat = os.read(fd, 4096)
        finally:
            os.close(fd)
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may itself hold spaces or ')'.
    fields = stat[stat.rfind(b")") + 2 :].split()
    try:
        state, start_time = fields[0], int(fields[19])
    except (IndexError, ValueError):
        return None
    if state in (b"Z", b"X"):
        return None
    return start_time


def read_boot_id(path: str | Path = _BOOT_ID) -> str:
    """The kernel's random id of this boot ("" where the kernel does not offer one)."""
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def read_environ(pid: int, proc: str | Path = "/proc") -> dict[str, str] | None:
    """The environment ``pid`` was started with (``/proc/<pid>/environ``); None if it
    cannot be read (gone, or another user's without the right to)."""
    try:
        with open(f"{proc}/{pid}/environ", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    out = {}
    for item in raw.split(b"\0"):
        name, sep, value = item.partition(b"=")
        if sep and name:
            out[name.decode(errors="replace")] = value.decode(errors="replace")
    return out
