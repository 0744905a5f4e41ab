"""How a task's main process ended, in the words its TASK_FAILED status carries, and
how much disk its sandbox takes; the message builders are pure, ``log_tail`` and
``sandbox_bytes`` read files."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TaskExit", "describe_exit", "log_tail", "oom_message", "sandbox_bytes"]

_STDERR_TAIL_BYTES = 4096


@dataclass(frozen=True, slots=True)
class TaskExit:
    """How a task's main process ended. ``exit_code`` is None when a signal killed it;
    both are None when the exit status was lost (the task vanished)."""

    task_id: str
    exit_code: int | None
    signal: int | None
    oom: bool
    message: str
    limitation: str | None = None
    """What limit the agent killed it for, besides memory: ``"disk"``."""


def oom_message(mem: int) -> str:
    return f"Memory limit exceeded: the kernel OOM-killed the task (limit {mem} MiB)"


def log_tail(path: Path) -> str:
    """The last non-empty line of a log file, shortened for a status message."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - _STDERR_TAIL_BYTES))
            data = f.read()
    except OSError:
        return ""
    lines = [ln.strip() for ln in data.decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


def describe_exit(task_id: str, returncode: int, oom: bool, mem: int, tail: str) -> TaskExit:
    code = returncode if returncode >= 0 else None
    sig = -returncode if returncode < 0 else None
    if oom:
        message = oom_message(mem)
    elif sig is not None:
        try:
            message = f"Command terminated by signal {signal.Signals(sig).name}"
        except ValueError:
            message = f"Command terminated by signal {sig}"
    else:
        message = f"Command exited with status {code}"
        if code and tail:
            message += f": {tail}"
    return TaskExit(task_id, code, sig, oom, message)


def sandbox_bytes(root: Path) -> int:
    """Bytes allocated on disk below ``root`` (``du``'s count of 512-byte blocks; a hard
    link counted once; symlinks not followed). Files that vanish meanwhile are skipped."""
    total = 0
    seen: set[tuple[int, int]] = set()
    stack = [str(root)]
    while stack:
        try:
            entries = os.scandir(stack.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                if st.st_nlink > 1:
                    if (st.st_dev, st.st_ino) in seen:
                        continue
                    seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total
