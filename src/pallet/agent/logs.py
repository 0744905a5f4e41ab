"""Reading a task's ``stdout``/``stderr`` by byte range, and following them; does I/O.

Ranges work as Mesos' ``/files/read``: ``offset`` and ``length`` in bytes, the answer
carries the offset it starts at. A negative offset counts from the end (``-4096`` is
the last 4 KiB), which is what ``tail`` wants.
"""

from __future__ import annotations

import asyncio
import enum
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pallet.agent.safeopen import UnsafePath, open_beneath
from pallet.model import PalletError

__all__ = [
    "MAX_READ",
    "LogChunk",
    "LogNotFound",
    "LogStream",
    "afollow_log",
    "follow_log",
    "read_log",
]

MAX_READ = 1 << 20
"""The most bytes one read returns."""


class LogStream(enum.StrEnum):
    STDOUT = "stdout"
    STDERR = "stderr"


class LogNotFound(PalletError):
    """The log file does not exist (unknown task, or its sandbox was removed), or it is
    not one the agent may serve (a link, a FIFO: see ``safeopen``)."""


@dataclass(frozen=True, slots=True)
class LogChunk:
    """``data`` read from byte ``offset``; ``size`` is the file's length at the read."""

    data: bytes
    offset: int
    size: int

    @property
    def next_offset(self) -> int:
        return self.offset + len(self.data)


def read_log(
    path: str | Path, offset: int = 0, length: int | None = None, *, beneath: Path | None = None
) -> LogChunk:
    """Up to ``length`` bytes (at most ``MAX_READ``) of ``path`` from ``offset``. With
    ``beneath`` (a sandbox root) no link is followed below it and only a plain file is
    read: a task cannot make its log serve another file."""
    if length is not None and length < 0:
        raise ValueError(f"length must be >= 0, not {length}")
    want = MAX_READ if length is None else min(length, MAX_READ)
    try:
        fd = open_beneath(beneath, path) if beneath is not None else os.open(path, os.O_RDONLY)
    except FileNotFoundError as e:
        raise LogNotFound(f"no log file at {path}") from e
    except UnsafePath as e:
        raise LogNotFound(f"the log at {path} is not a plain file of the sandbox ({e})") from e
    with open(fd, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        start = max(0, size + offset) if offset < 0 else offset
        f.seek(start)
        data = f.read(min(want, max(0, size - start)))
    return LogChunk(data, start, size)


def follow_log(
    path: str | Path,
    offset: int = 0,
    *,
    done: Callable[[], bool],
    poll_interval: float = 0.25,
    sleep: Callable[[float], None] = time.sleep,
    beneath: Path | None = None,
) -> Iterator[LogChunk]:
    """Yield what is appended to ``path`` from ``offset`` on, until ``done()`` says the
    writer has finished and everything written has been yielded."""
    while True:
        finished = done()  # asked before reading, so nothing written before it is missed
        chunk = read_log(path, offset, beneath=beneath)
        if chunk.data:
            offset = chunk.next_offset
            yield chunk
            continue
        if finished:
            return
        sleep(poll_interval)


async def afollow_log(
    path: str | Path,
    offset: int = 0,
    *,
    done: Callable[[], bool],
    poll_interval: float = 0.25,
    beneath: Path | None = None,
) -> AsyncIterator[LogChunk]:
    """``follow_log`` for an asyncio loop (the HTTP side streams with it)."""
    while True:
        finished = done()
        chunk = await asyncio.to_thread(read_log, path, offset, None, beneath=beneath)
        if chunk.data:
            offset = chunk.next_offset
            yield chunk
            continue
        if finished:
            return
        await asyncio.sleep(poll_interval)
