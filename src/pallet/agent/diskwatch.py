"""Disk quotas, as Mesos' ``disk/du`` isolator enforces them: each task's sandbox (and a
container's writable root) is measured on a schedule, and a task with ``disk`` > 0 that
uses more is reported to be killed; does I/O (a thread that calls ``measure``).

A task with a quota is measured 1 s after it starts, then after 2, 4, 8 s ... up to the
watch interval (15 s, Mesos' ``--container_disk_watch_interval``): a task that fills its
disk at once is stopped within seconds, a long-running one costs a walk every 15 s.
Tasks without a quota (``disk: 0``) are measured every interval, for the heartbeat.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pallet.model import PersistentVolume

__all__ = [
    "FIRST_CHECK",
    "DiskUse",
    "DiskWatch",
    "held_to_quotas",
    "over_quota_message",
    "volume_over_message",
]

log = logging.getLogger(__name__)

FIRST_CHECK = 1.0
"""Seconds after a task starts until its disk is first measured when it has a quota."""


def over_quota_message(used: int, quota_mib: int) -> str:
    return (
        f"Disk usage {used / (1 << 20):.1f} MiB exceeds the quota of {quota_mib} MiB "
        "(the app's disk)"
    )


def volume_over_message(used: int, container_path: str, size_mib: int) -> str:
    return (
        f"Disk usage {used / (1 << 20):.1f} MiB of persistent volume {container_path} "
        f"exceeds the quota of {size_mib} MiB (its size)"
    )


@dataclass(frozen=True, slots=True)
class DiskUse:
    """What ``measure`` found: the bytes in all, and why the task is over one of its own
    quotas (its sandbox's, or one persistent volume's), if it is. A measure that
    returns a plain number is held to the one quota given to ``watch``."""

    bytes: int
    over: str | None = None


def held_to_quotas(
    disk_mib: int, sandbox: int, volumes: Sequence[tuple[PersistentVolume, int]]
) -> DiskUse:
    """A task's use held to its quotas: ``sandbox`` bytes (its sandbox, a container's
    writes) to ``disk_mib`` (0: none), and each persistent volume's bytes to its own
    size, as Mesos' disk/du isolator holds them: a full volume is not the sandbox's
    business, nor the other way round. A ``mount`` volume has its disk whole: its
    filesystem holds it, not a quota."""
    over = None
    if disk_mib > 0 and sandbox > disk_mib << 20:
        over = over_quota_message(sandbox, disk_mib)
    for volume, used in volumes:
        if over is None and volume.type != "mount" and used > volume.size << 20:
            over = volume_over_message(used, volume.container_path, volume.size)
    return DiskUse(sandbox + sum(used for _, used in volumes), over)


@dataclass(slots=True)
class _Watched:
    quota_mib: int
    due: float
    step: float


class DiskWatch:
    """One thread per agent; ``measure(task_id)`` returns bytes used (and may cache it),
    ``exceeded(task_id, message)`` is called once for a task over its quota."""

    def __init__(
        self,
        measure: Callable[[str], int | DiskUse],
        exceeded: Callable[[str, str], None],
        interval: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._measure = measure
        self._exceeded = exceeded
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._tasks: dict[str, _Watched] = {}
        self._next_look = float("-inf")
        """When the thread looks next (by ``clock``): a task watched later than that
        does not wake it. Each launch woke it, and every wakeup went over every task, so
        a batch of launches was quadratic."""
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="disk-watch", daemon=True)
        self._thread.start()

    def watch(self, task_id: str, quota_mib: int) -> None:
        """Measure ``task_id`` from now on; ``quota_mib`` 0 means no quota."""
        step = FIRST_CHECK if quota_mib > 0 else self.interval
        with self._lock:
            due = self._clock() + step
            self._tasks[task_id] = _Watched(quota_mib, due, step)
            sooner = due < self._next_look
        if sooner:
            self._wake.set()

    def forget(self, task_id: str) -> None:
        with self._lock:
            self._tasks.pop(task_id, None)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5.0)

    def check_due(self) -> float:
        """Measure the tasks that are due; return seconds until the next one is."""
        now = self._clock()
        with self._lock:
            due = [(tid, w) for tid, w in self._tasks.items() if w.due <= now]
        for tid, watched in due:
            try:
                found = self._measure(tid)
            except Exception:  # a task ending while it is measured is not an agent failure
                log.debug("cannot measure the disk of %s", tid, exc_info=True)
                continue
            with self._lock:
                if self._tasks.get(tid) is not watched:
                    continue  # ended meanwhile
                watched.step = min(self.interval, watched.step * 2)
                watched.due = self._clock() + watched.step
                if isinstance(found, DiskUse):
                    over = found.over
                elif watched.quota_mib > 0 and found > watched.quota_mib << 20:
                    over = over_quota_message(found, watched.quota_mib)
                else:
                    over = None
                if over is not None:
                    del self._tasks[tid]
            if over is not None:
                self._exceeded(tid, over)
        with self._lock:
            upcoming = min((w.due for w in self._tasks.values()), default=None)
            now = self._clock()
            wait = self.interval if upcoming is None else max(0.0, upcoming - now)
            self._next_look = now + wait
        return wait

    def _run(self) -> None:
        while not self._stop.is_set():
            wait = self.check_due()
            self._wake.wait(wait)
            self._wake.clear()
