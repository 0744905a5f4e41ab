"""Runs tasks as real processes: sandbox, session, cgroup, kill, reap; does I/O.

Each task is forked into a new session (``setsid``) whose leader blocks on a pipe
until the agent has written its pid into the task's cgroups, then runs the command
(a ``cmd`` in that shell, ``args`` exec'd; ``spawning``) -- so every process of the task starts
inside its limits, no Python runs between fork and exec (safe with threads), and the
agent stays the parent that learns the exit status. When the main process ends, the
rest of the task (its process group and everything in its cgroups) is killed and the
cgroups removed, as Mesos destroys a container when its command exits.

A task with an image runs as ``runc run`` instead (``containers``): runc puts the
container into the same cgroups. Tasks that must wait for something first (URIs to
fetch, an image to pull) are staged (``staging``) on worker threads (``preparing``).

After an agent restart, ``adopt`` takes back a task whose process outlived the old
agent. It is not this process's child: its end is seen through a pidfd (or ``/proc``)
and its exit status is lost, but it is killed, measured and reaped like any other.
How an ended task is reaped, cleaned up and described is ``reaping``.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from pallet.agent.cgroup_isolator import detect_isolator, write_device_rules
from pallet.agent.containers import Containers
from pallet.agent.diskwatch import DiskWatch
from pallet.agent.environment import PASSTHROUGH, task_environment
from pallet.agent.exits import TaskExit
from pallet.agent.exitwatch import ExitWatch
from pallet.agent.fetcher import FetchCache, Fetcher
from pallet.agent.gpus import Gpu, device_rules, gpu_environment
from pallet.agent.images import ImageStore
from pallet.agent.isolation import IsolationError, Isolator
from pallet.agent.logs import LogStream
from pallet.agent.measures import DISK_WATCH_INTERVAL, TaskMeasures
from pallet.agent.ocispec import CONTAINER_SANDBOX
from pallet.agent.pods import PodStager, has_images
from pallet.agent.preparing import Outcome, Preparations
from pallet.agent.procfs import read_start_time
from pallet.agent.reaping import (
    Proc,
    ProcessIdentity,
    Teardown,
    ended,
    finish,
    finish_adopted,
    quota,
    signal_all,
    vanish,
)
from pallet.agent.spawning import gated, pidfd_of, spawn_gated, spawn_runc, switch_user
from pallet.agent.staging import LaunchError, Staged, Stager
from pallet.agent.topdir import mark_top_directory
from pallet.agent.users import TaskUser
from pallet.model import TaskSpec
from pallet.model.limits import pids_max_of
from pallet.model.pods import check_container_name, container_log

__all__ = [
    "Executor",
    "LaunchError",
    "ProcessIdentity",
    "TaskExit",
    "gated",
    "switch_user",
]

log = logging.getLogger(__name__)

# The session leader waits for "go" on stdin (sent once it is in its cgroups), gives the
# task /dev/null as stdin and execs it. Exit 125 means the agent never said go.
_OOM_POLL_SECONDS = 0.5  # how often live tasks are checked for an OOM kill of a child


class Executor(TaskMeasures):
    """Launches, kills and reaps task processes. Thread-safe; ``wait`` may block in one
    thread while others launch, kill or read usage."""

    def __init__(
        self,
        sandbox_root: str | Path,
        *,
        agent_id: str,
        node_id: str | None = None,
        host: str | None = None,
        isolator: Isolator | None = None,
        base_env: Mapping[str, str] | None = None,
        sweep: bool = True,
        gpus: Sequence[Gpu] = (),
        task_user: str | None = None,
        fetcher: Fetcher | None = None,
        containers: Containers | None = None,
        disk_watch_interval: float = DISK_WATCH_INTERVAL,
    ) -> None:
        """``sweep=False`` leaves the cgroups of an earlier run alone: the caller recovers
        the tasks it checkpointed and then calls ``sweep_orphans``. ``task_user`` runs the
        tasks whose spec names no user (None: the agent's own user). ``fetcher`` fetches
        tasks' URIs and ``containers`` runs tasks with images (default: theirs beside
        ``sandbox_root``)."""
        self.sandbox_root = Path(sandbox_root)
        self.sandbox_root.mkdir(parents=True, exist_ok=True)
        # Sandboxes spread over the filesystem's inode groups (see ``topdir``).
        mark_top_directory(self.sandbox_root)
        self.agent_id = agent_id
        self.node_id = node_id or agent_id
        self.host = host or socket.gethostname()
        self.gpus = tuple(gpus)
        """The GPUs the agent detected: named in their tasks' environment, and the only
        ones those tasks may open (cgroup v1 devices)."""
        self.isolator = (
            isolator if isolator is not None else detect_isolator(agent_id, devices=bool(self.gpus))
        )
        if self.isolator.warning:
            log.warning("agent %s: %s", agent_id, self.isolator.warning)
        if self.gpus and "devices" not in self.isolator.paths("probe"):
            log.warning(
                "agent %s: GPUs are not isolated (no cgroup v1 devices hierarchy): a task "
                "is told its GPUs but could open the others",
                agent_id,
            )
        self._base_env = dict(
            base_env
            if base_env is not None
            else {k: v for k, v in os.environ.items() if k in PASSTHROUGH}
        )
        self._procs: dict[str, Proc] = {}
        self._disk: dict[str, tuple[int, float]] = {}
        """task id -> (sandbox bytes, when measured)."""
        self._next_oom_check = 0.0
        self._launching: set[str] = set()
        self._lock = threading.Lock()
        self._tearing = 0
        """Ended tasks another thread is tearing down (out of ``_procs``, cgroups not yet
        removed): ``close`` waits for them, or the agent's own cgroup would not be empty."""
        self._torn_down = threading.Condition(self._lock)
        self._exits = ExitWatch()
        self._fetcher = fetcher
        self._containers = containers
        self.stager = Stager(
            self.sandbox_root,
            task_user=task_user,
            fetcher=lambda: self.fetcher,
            containers=lambda: self.containers,
            environment=self.environment,
        )
        self.pods = PodStager(
            self.stager,
            containers=lambda: self.containers,
            fetcher=lambda: self.fetcher,
            container_environment=self.container_environment,
        )
        self._prep = Preparations(self.wakeup)
        self._disk_watch = DiskWatch(
            self._measure_disk, self._disk_exceeded, interval=disk_watch_interval
        )
        self._teardown = Teardown(self.isolator, self._cleanup_containers, self.destroy_cgroups)
        if sweep:
            self.sweep_orphans()

    def sweep_orphans(self, keep: frozenset[str] = frozenset()) -> list[str]:
        """Kill and remove the task cgroups an earlier run left, but those in ``keep``
        (tasks recovered from their checkpoints); return the task ids killed."""
        if self._containers is not None or (self.sandbox_root.parent / "containers").is_dir():
            self.pods.sweep(keep)
        try:
            orphans = self.isolator.sweep(keep)
        except IsolationError as e:
            log.warning("agent %s: cannot clean up an earlier run: %s", self.agent_id, e)
            return []
        if self._containers is not None or (self.sandbox_root.parent / "containers").is_dir():
            self.containers.sweep(keep)
        if orphans:
            log.warning(
                "agent %s: killed tasks an earlier run left without a checkpoint: %s",
                self.agent_id,
                orphans,
            )
        return orphans

    # ------------------------------------------------------------ paths

    def environment(self, spec: TaskSpec) -> dict[str, str]:
        """The environment ``spec``'s process runs with (its health commands get it too);
        in a container, without the agent's own variables, over the image's."""
        if spec.container is not None and spec.container.image is not None:
            return self.container_environment(spec)
        sandbox = str(self.sandbox(spec.task_id))
        env = task_environment(
            spec, node_id=self.node_id, host=self.host, sandbox=sandbox, base=self._base_env
        )
        env.update(gpu_environment(spec.gpu_devices, self.gpus))  # not the app's to set
        return env

    def container_environment(self, spec: TaskSpec) -> dict[str, str]:
        """The task's variables as a process in a container sees them: without the
        agent's own, its sandbox where the container has it."""
        return task_environment(
            spec, node_id=self.node_id, host=self.host, sandbox=CONTAINER_SANDBOX, base={}
        )

    def user_of(self, spec: TaskSpec) -> TaskUser:
        """Who a command task runs as (see ``Stager.user_of``)."""
        return self.stager.user_of(spec)

    def make_sandbox(self, task_id: str, user: TaskUser) -> Path:
        return self.stager.make_sandbox(task_id, user)

    def log_path(self, task_id: str, stream: LogStream | str, container: str | None = None) -> Path:
        """The task's ``stream``, or that of its pod container named ``container``."""
        name = LogStream(stream).value
        if container is not None:
            return self.sandbox(task_id) / container_log(check_container_name(container), name)
        return self.sandbox(task_id) / name

    # ------------------------------------------------------------ launch / kill

    @property
    def fetcher(self) -> Fetcher:
        with self._lock:
            if self._fetcher is None:
                self._fetcher = Fetcher(FetchCache(self.sandbox_root.parent / "fetcher-cache"))
            return self._fetcher

    @property
    def containers(self) -> Containers:
        with self._lock:
            if self._containers is None:
                base = self.sandbox_root.parent
                self._containers = Containers(
                    base / "containers",
                    ImageStore(base / "images"),
                    agent_id=self.agent_id,
                    isolator=self.isolator,
                    hostname=self.host,
                )
            return self._containers

    def needs_preparation(self, spec: TaskSpec) -> bool:
        """True when ``spec`` waits for something before it can start (URIs to fetch, an
        image): ``launch_later`` it, so the agent is not held up meanwhile."""
        return (
            bool(spec.fetch)
            or bool(spec.secrets)
            or (spec.container is not None and spec.container.image is not None)
            or has_images(spec)
        )

    def launch(self, spec: TaskSpec) -> int:
        """Prepare and start ``spec`` now; return its pid. Raises LaunchError saying what
        failed."""
        tid = spec.task_id
        self._claim(tid)
        try:
            pid = self._prepare_and_start(spec, lambda: False)
        finally:
            with self._lock:
                self._launching.discard(tid)
                wake = self._wake_on_launch(tid)
        if wake:
            self.wakeup()
        return pid

    def _wake_on_launch(self, tid: str) -> bool:
        """Whether a blocked ``wait`` must look again now that ``tid`` started (under
        the lock). Not for a task with a pidfd among others: ``_start`` added the pidfd
        to the epoll ``wait`` sleeps on, which then sees its end by itself. Waking it
        for every launch cost a pipe write and read and a pass of the waiting thread over
        every task, per launch. Only a task without a pidfd (it is polled: ``wait``
        shortens its sleep) or the first one (the OOM counters are read from then on)
        needs it."""
        proc = self._procs.get(tid)
        return proc is not None and (not self._exits.watches(proc.pidfd) or len(self._procs) == 1)

    def launch_later(self, spec: TaskSpec) -> None:
        """Prepare and start ``spec`` on a worker thread; ``take_launches`` gives the
        outcome. A ``kill`` meanwhile cancels it."""
        tid = spec.task_id
        self._claim(tid)

        def work(cancelled: Callable[[], bool]) -> int:
            try:
                return self._prepare_and_start(spec, cancelled)
            finally:
                with self._lock:
                    self._launching.discard(tid)

        self._prep.submit(tid, work)

    def take_launches(self) -> list[Outcome]:
        """How the launches handed to ``launch_later`` went, since the last call."""
        return self._prep.take()

    def _claim(self, tid: str) -> None:
        with self._lock:
            if tid in self._procs or tid in self._launching:
                raise LaunchError(f"task {tid} is already running")
            self._launching.add(tid)

    def _prepare_and_start(self, spec: TaskSpec, cancelled: Callable[[], bool]) -> int:
        if has_images(spec):  # a pod instance with images: the pods' own staging
            staged, argv = self.pods.stage(spec, cancelled)
            try:
                return self._start(spec, staged, cancelled, argv)
            except BaseException:
                self.pods.cleanup(spec)
                raise
        staged = self.stager.stage(spec, cancelled)
        if spec.containers:
            self.pods.prepare_sandbox(spec, staged.sandbox, staged.user)
        try:
            return self._start(spec, staged, cancelled)
        except BaseException:
            if staged.runc is not None:
                self.containers.cleanup(spec.task_id)
            raise

    def _start(
        self,
        spec: TaskSpec,
        staged: Staged,
        cancelled: Callable[[], bool],
        argv: Sequence[str] | None = None,
    ) -> int:
        """Start a staged task (``argv``: what to run instead of its own command)."""
        tid, sandbox = spec.task_id, staged.sandbox
        try:
            self.isolator.prepare(tid, spec.cpu_milli, spec.mem_mib, pids_max_of(spec.labels))
            deny = device_rules(spec.gpu_devices, self.gpus)
            devices = self.isolator.paths(tid).get("devices") if deny else None
            if deny and devices is not None:
                write_device_rules(devices, deny)
        except IsolationError as e:
            self.destroy_cgroups(tid)
            raise LaunchError(f"task {tid}: {e}") from e
        try:
            if staged.runc is not None:  # runc puts the container in the cgroups itself
                popen = spawn_runc(staged.runc, sandbox, self.containers.bundle(tid))
                start_time = read_start_time(popen.pid) or 0
            else:
                env = staged.env if staged.env is not None else self.environment(spec)
                start_time, popen = spawn_gated(
                    tid, argv or spec.argv, sandbox, env, staged.user, self.isolator
                )
        except (OSError, IsolationError) as e:
            self.destroy_cgroups(tid)
            raise LaunchError(f"task {tid}: cannot start: {e}") from e
        pidfd = pidfd_of(popen.pid)
        with self._lock:
            proc = self._procs[tid] = Proc(spec, popen.pid, start_time, popen, pidfd, sandbox)
            self._exits.add(tid, pidfd)
            proc.container = staged.runc is not None
            if cancelled():  # killed while it was being started: it is killed now
                proc.signals.append(signal.SIGTERM)
                self._signal_all(proc, signal.SIGTERM)
        self._disk_watch.watch(tid, quota(spec))
        return popen.pid

    def adopt(self, spec: TaskSpec, identity: ProcessIdentity) -> bool:
        """Manage a task whose process an earlier agent run launched and that still runs;
        False (and nothing changes) if that process is gone or its pid was reused."""
        tid = spec.task_id
        pidfd = pidfd_of(identity.pid)
        # Checked after the pidfd is open: the pidfd then refers to the very process.
        if read_start_time(identity.pid) != identity.start_time:
            if pidfd is not None:
                os.close(pidfd)
            return False
        with self._lock:
            if tid in self._procs or tid in self._launching:
                if pidfd is not None:
                    os.close(pidfd)
                raise LaunchError(f"task {tid} is already running")
            proc = self._procs[tid] = Proc(
                spec, identity.pid, identity.start_time, None, pidfd, self.sandbox(tid)
            )
            self._exits.add(tid, pidfd)
            proc.container = spec.container is not None and spec.container.image is not None
        if proc.container:
            self.containers.adopt(spec)
        self.pods.adopt(spec)
        self._disk_watch.watch(tid, quota(spec))
        self.wakeup()
        return True

    def identity(self, task_id: str) -> ProcessIdentity | None:
        """The main process of a running task, to checkpoint."""
        with self._lock:
            proc = self._procs.get(task_id)
            return None if proc is None else ProcessIdentity(proc.pid, proc.start_time)

    def kill(self, task_id: str) -> bool:
        """SIGTERM to every process of the task (or cancel its preparation); False if it
        is not running."""
        return self._signal(task_id, signal.SIGTERM) or self._prep.cancel(task_id)

    def force_kill(self, task_id: str) -> bool:
        """SIGKILL to every process of the task; False if it is not running."""
        return self._signal(task_id, signal.SIGKILL) or self._prep.cancel(task_id)

    def _signal(self, task_id: str, sig: int) -> bool:
        with self._lock:
            proc = self._procs.get(task_id)
            if proc is None:
                return False
            proc.signals.append(sig)
            self._signal_all(proc, sig)
        return True

    def _signal_all(self, proc: Proc, sig: int) -> None:
        signal_all(proc, sig, self.isolator)

    # ------------------------------------------------------------ wait / reap

    def wakeup(self) -> None:
        """Make a blocked ``wait`` look again (a task was launched, or a launch has an
        outcome)."""
        self._exits.wakeup()

    def running(self) -> set[str]:
        """Tasks with a live process, being prepared, or whose launch outcome is not
        taken yet."""
        pending = self._prep.pending()
        with self._lock:
            return set(self._procs) | pending

    def prune_volumes(self, reserved: Iterable[str], desired: Iterable[TaskSpec]) -> list[str]:
        """Delete the persistent volumes neither reserved by the master nor used by a
        task this agent runs or is asked to run."""
        with self._lock:
            specs = [p.spec for p in self._procs.values()]
        in_use = {v.id for spec in (*specs, *desired) for v in spec.persistent_volumes}
        return self.stager.volumes.prune(reserved, in_use)

    def has_ended(self, task_id: str) -> bool:
        """True once the task's main process has exited (reaped by ``wait`` or not)."""
        with self._lock:
            proc = self._procs.get(task_id)
            if proc is None:
                return task_id not in self._launching and task_id not in self._prep.pending()
            return ended(proc)

    def wait(self, timeout: float | None = None) -> list[TaskExit]:
        """Block until at least one task has ended, a launch handed to ``launch_later``
        has an outcome, or ``timeout`` seconds pass; reap and clean up the ended tasks
        and say how each ended."""
        deadline = None if timeout is None else time.monotonic() + timeout
        ready: set[str] | None = None  # None: look at every task
        while True:
            exits = self._collect(ready)
            remaining = None if deadline is None else deadline - time.monotonic()
            if exits or self._prep.has_outcomes() or (remaining is not None and remaining <= 0):
                return exits
            with self._lock:
                polling = len(self._exits) < len(self._procs)  # some have no pidfd
                limited = bool(self._procs) and self.isolator.kind != "none"
            slice_ = remaining
            if polling or limited:
                step = 0.05 if polling else _OOM_POLL_SECONDS
                slice_ = step if slice_ is None else min(slice_, step)
            ready = self._exits.wait(slice_)

    def poll(self) -> list[TaskExit]:
        """The tasks that have ended since the last call, without blocking."""
        return self.wait(0)

    def _collect(self, ready: set[str] | None = None) -> list[TaskExit]:
        """Reap the tasks that ended: those in ``ready`` (their pidfd said so) and those
        without a pidfd, or every task when ``ready`` is None; read every task's OOM
        counter when it is due."""
        exits = []
        now = time.monotonic()
        # The cgroups' OOM counters are read every _OOM_POLL_SECONDS, not at every wakeup:
        # a launch wakes ``wait``, and reading every task's counter then made a burst of
        # launches quadratic. A task whose main process ends is checked when it is reaped.
        check_oom = now >= self._next_oom_check
        if check_oom:
            self._next_oom_check = now + _OOM_POLL_SECONDS
        ended_: list[tuple[Callable[[Proc, Teardown], TaskExit], Proc]] = []
        with self._lock:
            if check_oom:
                oom_kills = self.isolator.oom_kills
                for tid, proc in self._procs.items():
                    if not proc.oom and oom_kills(tid) > 0:
                        proc.oom = True  # Mesos' rule: a memory limitation ends the whole task
                        self._signal_all(proc, signal.SIGKILL)
            # Whether a task ended: its pidfd says so (``ready``); only a task without one
            # is asked with ``waitid`` each time (the OOM look used to ask every task).
            if ready is None:
                candidates = list(self._procs.values())
            else:
                watches = self._exits.watches
                candidates = [
                    proc
                    for tid, proc in self._procs.items()
                    if tid in ready or not watches(proc.pidfd)
                ]
            for proc in candidates:
                if proc.popen is None:
                    if ended(proc):
                        ended_.append((finish_adopted, proc))
                    continue
                try:
                    info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
                except ChildProcessError:  # someone else reaped it: the exit status is lost
                    ended_.append((vanish, proc))
                    continue
                if info is not None:
                    ended_.append((finish, proc))
            for _, proc in ended_:
                del self._procs[proc.spec.task_id]
                self._exits.remove(proc.pidfd)
            self._tearing += len(ended_)
        # Cleaning up (runc delete, unmounts, rmdir of cgroups) is slow: not under the lock.
        try:
            exits += [end(proc, self._teardown) for end, proc in ended_]
        finally:
            with self._lock:
                self._tearing -= len(ended_)
                self._torn_down.notify_all()
        return exits

    def _cleanup_containers(self, proc: Proc) -> None:
        if proc.container:
            self.containers.cleanup(proc.spec.task_id)
        self.pods.cleanup(proc.spec)

    def destroy_cgroups(self, task_id: str) -> None:
        """Kill whatever is in a task's cgroups and remove them (errors are logged)."""
        self._disk.pop(task_id, None)
        self._disk_watch.forget(task_id)
        try:
            self.isolator.destroy(task_id)
        except IsolationError as e:
            log.warning("task %s: %s", task_id, e)

    # ------------------------------------------------------------ shutdown

    def close(self, timeout: float = 10.0) -> list[TaskExit]:
        """SIGKILL every task, reap them, remove the agent's cgroups; say how each ended."""
        self._prep.close()
        self._disk_watch.close()
        with self._lock:
            live = set(self._procs)
        for tid in live:
            self.force_kill(tid)
        exits: list[TaskExit] = []
        deadline = time.monotonic() + timeout
        while self._procs and time.monotonic() < deadline:
            exits += self.wait(max(0.0, deadline - time.monotonic()))
        with self._lock:  # the agent's step thread may be tearing down a task it reaped
            self._torn_down.wait_for(
                lambda: self._tearing == 0, max(0.0, deadline - time.monotonic())
            )
        try:  # a task cgroup without a process (a launch cut short) is not kept either
            self.isolator.sweep()
        except IsolationError as e:
            log.warning("%s", e)
        self.isolator.close()
        if self._containers is not None:
            self._containers.close()
        if self._fetcher is not None:
            self._fetcher.close()
        self._exits.close()
        return exits
