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
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["FIRST_CHECK", "DiskWatch", "over_quota_message"]

log = logging.getLogger(__name__)

FIRST_CHECK = 1.0
"""Seconds after a task starts until its disk is first measured when it has a quota."""


def over_quota_message(used: int, quota_mib: int) -> str:
    return (
        f"Disk usage {used / (1 << 20):.1f} MiB exceeds the quota of {quota_mib} MiB "
        "(the app's disk)"
    )


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
        measure: Callable[[str], int],
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
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="disk-watch", daemon=True)
        self._thread.start()

    def watch(self, task_id: str, quota_mib: int) -> None:
        """Measure ``task_id`` from now on; ``quota_mib`` 0 means no quota."""
        step = FIRST_CHECK if quota_mib > 0 else self.interval
        with self._lock:
            self._tasks[task_id] = _Watched(quota_mib, self._clock() + step, step)
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
                used = self._measure(tid)
            except Exception:  # a task ending while it is measured is not an agent failure
                log.debug("cannot measure the disk of %s", tid, exc_info=True)
                continue
            with self._lock:
                if self._tasks.get(tid) is not watched:
                    continue  # ended meanwhile
                watched.step = min(self.interval, watched.step * 2)
                watched.due = self._clock() + watched.step
                over = watched.quota_mib > 0 and used > watched.quota_mib << 20
                if over:
                    del self._tasks[tid]
            if over:
                self._exceeded(tid, over_quota_message(used, watched.quota_mib))
        with self._lock:
            upcoming = min((w.due for w in self._tasks.values()), default=None)
        return self.interval if upcoming is None else max(0.0, upcoming - self._clock())

    def _run(self) -> None:
        while not self._stop.is_set():
            wait = self.check_due()
            self._wake.wait(wait)
            self._wake.clear()
