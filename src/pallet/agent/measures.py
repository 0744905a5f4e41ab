"""What a running task uses, for the executor: CPU and memory from its cgroups (or its
process tree without them), its sandbox's bytes on disk, and the kill of a task over
its disk quota; does I/O."""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path

import psutil

from pallet.agent.containers import Containers
from pallet.agent.diskwatch import DiskUse, held_to_quotas
from pallet.agent.exits import sandbox_bytes
from pallet.agent.isolation import Isolator, Sample, Usage
from pallet.agent.pods import PodStager
from pallet.agent.reaping import Proc, signal_all
from pallet.agent.staging import Stager
from pallet.model import check_task_id

__all__ = ["DISK_WATCH_INTERVAL", "TaskMeasures"]

log = logging.getLogger("pallet.agent.executor")  # where these warnings always were

DISK_WATCH_INTERVAL = 15.0
"""Seconds between two walks of a task's sandbox for its disk use."""


class TaskMeasures:
    """The executor's readings of its running tasks (a base of ``Executor``, which sets
    the attributes below)."""

    sandbox_root: Path
    isolator: Isolator
    stager: Stager
    pods: PodStager
    _lock: threading.Lock
    _procs: dict[str, Proc]
    _disk: dict[str, tuple[int, float]]
    """task id -> (sandbox bytes, when measured)."""
    _containers: Containers | None

    def sandbox(self, task_id: str) -> Path:
        """The task's working directory, holding its ``stdout`` and ``stderr``."""
        return self.sandbox_root / check_task_id(task_id)

    def pid(self, task_id: str) -> int | None:
        with self._lock:
            proc = self._procs.get(task_id)
            return None if proc is None else proc.pid

    def usage(self, task_id: str) -> Usage | None:
        """CPU seconds and memory of a running task (None if it is not running)."""
        pid = self.pid(task_id)
        if pid is None:
            return None
        measured = self.isolator.usage(task_id)
        if measured is not None:
            return measured
        try:  # no cgroups: add up the process tree
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
            cpu = sum(sum(p.cpu_times()[:2]) for p in procs)
            rss = sum(p.memory_info().rss for p in procs)
        except psutil.Error:
            return None
        return Usage(cpu_seconds=cpu, mem_bytes=rss, mem_rss_bytes=rss, processes=len(procs))

    def sample(self, task_id: str) -> Sample | None:
        """What a heartbeat reports of a running task (None if it is not running): as
        ``usage``, from the two cgroup files that say it."""
        if self.pid(task_id) is None:
            return None
        measured = self.isolator.sample(task_id)
        if measured is not None:
            return measured
        usage = self.usage(task_id)
        return None if usage is None else Sample(usage.cpu_seconds, usage.mem_rss_bytes)

    def _measure_disk(self, task_id: str) -> DiskUse:
        """The sandbox with, for a container, what it wrote to its root filesystem, held
        to the task's ``disk``; and each persistent volume, held to its own size (as
        Mesos' disk/du isolator does: a full volume is not the sandbox's business)."""
        used = sandbox_bytes(self.sandbox(task_id))
        if self._containers is not None:
            used += sandbox_bytes(self._containers.upper_dir(task_id))
        with self._lock:
            proc = self._procs.get(task_id)
        if proc is not None and self._containers is not None:
            used += self.pods.disk_bytes(proc.spec)
        volumes = proc.spec.persistent_volumes if proc is not None else ()
        found = held_to_quotas(
            proc.spec.disk_mib if proc is not None else 0,
            used,
            [(v, sandbox_bytes(self.stager.volumes.path(v))) for v in volumes],
        )
        self._disk[task_id] = (found.bytes, time.monotonic())
        return found

    def _disk_exceeded(self, task_id: str, message: str) -> None:
        """Kill a task over its disk quota (Mesos: REASON_CONTAINER_LIMITATION_DISK)."""
        with self._lock:
            proc = self._procs.get(task_id)
            if proc is None or proc.limitation is not None:
                return
            log.warning("task %s: %s; killing it", task_id, message)
            proc.limitation = ("disk", message)
            signal_all(proc, signal.SIGKILL, self.isolator)

    def disk_usage(self, task_id: str, now: float) -> int:
        """Bytes the task's sandbox takes on disk (``du``: allocated blocks), measured at
        most every ``DISK_WATCH_INTERVAL`` seconds per task (Mesos' disk/du isolator
        walks the sandbox every 15 s); 0 before the first measurement can be made."""
        cached = self._disk.get(task_id)
        if cached is not None and now - cached[1] < DISK_WATCH_INTERVAL:
            return cached[0]
        used = sandbox_bytes(self.sandbox(task_id))
        self._disk[task_id] = (used, now)
        return used
