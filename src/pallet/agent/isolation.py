"""The executor's one seam to the kernel's isolation: the ``Isolator`` protocol, what it
measures (``Usage``), its error, and ``NullIsolator`` for machines without usable
cgroups (tasks run unlimited and the reason is kept in ``warning``); pure interface.

The cgroup implementations and ``detect_isolator`` live in ``cgroup_isolator``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pallet.model import PalletError

__all__ = [
    "DEFAULT_TASK_PIDS_MAX",
    "IsolationError",
    "Isolator",
    "NullIsolator",
    "Sample",
    "Usage",
]

DEFAULT_TASK_PIDS_MAX = 1024
"""Processes and threads a task may have at once unless its app or the agent says
otherwise (``PALLET_PIDS_MAX``, ``--task-pids-max``): enough for a JVM's threads, far
too few for a fork bomb to starve the node."""


class IsolationError(PalletError):
    """A cgroup could not be created, configured, joined or removed."""


@dataclass(frozen=True, slots=True)
class Usage:
    """What a task has used so far, read on demand."""

    cpu_seconds: float
    mem_bytes: int
    mem_rss_bytes: int
    mem_peak_bytes: int | None = None
    mem_limit_bytes: int | None = None
    processes: int = 0


@dataclass(frozen=True, slots=True)
class Sample:
    """What a heartbeat reports of a task: its CPU seconds and resident memory. Read
    for every running task every few seconds, so from two files where ``Usage`` reads
    six."""

    cpu_seconds: float
    mem_rss_bytes: int


class Isolator(Protocol):
    """Puts each task in its own cgroup; the executor's one seam to the kernel.

    ``prepare`` limits the task to ``pids_max`` processes, or to the isolator's default
    when None."""

    kind: str
    warning: str | None

    def prepare(
        self, task_id: str, cpu_milli: int, mem_mib: int, pids_max: int | None = None
    ) -> None: ...
    def join(self, task_id: str, pid: int) -> None: ...
    def pids(self, task_id: str) -> set[int]: ...
    def usage(self, task_id: str) -> Usage | None: ...
    def sample(self, task_id: str) -> Sample | None: ...
    def oom_kills(self, task_id: str) -> int: ...
    def kill_all(self, task_id: str, sig: int) -> None: ...
    def destroy(self, task_id: str) -> None: ...
    def leftovers(self) -> set[str]: ...
    def sweep(self, keep: Collection[str] = ()) -> list[str]: ...
    def paths(self, task_id: str) -> dict[str, Path]: ...
    def path_names(self, task_id: str) -> dict[str, str]:
        """``paths`` as strings (what a checkpoint keeps), without building Paths."""
        ...

    def close(self) -> None: ...


class NullIsolator:
    """No cgroups: tasks run unlimited; processes are found by their process group."""

    kind = "none"

    def __init__(self, reason: str) -> None:
        self.warning: str | None = (
            f"cgroups unavailable ({reason}): tasks run WITHOUT CPU or memory limits"
        )

    def prepare(
        self, task_id: str, cpu_milli: int, mem_mib: int, pids_max: int | None = None
    ) -> None:
        pass

    def join(self, task_id: str, pid: int) -> None:
        pass

    def pids(self, task_id: str) -> set[int]:
        return set()

    def usage(self, task_id: str) -> Usage | None:
        return None

    def sample(self, task_id: str) -> Sample | None:
        return None

    def oom_kills(self, task_id: str) -> int:
        return 0

    def kill_all(self, task_id: str, sig: int) -> None:
        pass

    def destroy(self, task_id: str) -> None:
        pass

    def leftovers(self) -> set[str]:
        return set()

    def sweep(self, keep: Collection[str] = ()) -> list[str]:
        return []

    def paths(self, task_id: str) -> dict[str, Path]:
        return {}

    def path_names(self, task_id: str) -> dict[str, str]:
        return {}

    def close(self) -> None:
        pass
