"""A running task's main process as the executor tracks it, and how a task that ended is
reaped, cleaned up and described; does I/O.

Three ends: the agent's own child exited (``finish``: its exit status is known), someone
else reaped it (``vanish``), or a task adopted after an agent restart ended (``finish_adopted``:
its status went to init, but its cgroups still count an OOM kill). Each kills what the
main process left in the task's cgroups, removes a container's bundle and the cgroups,
and says how the task ended as a ``TaskExit``.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pallet.agent.containers import runc_message
from pallet.agent.exits import TaskExit, describe_exit, log_tail, oom_message
from pallet.agent.isolation import Isolator
from pallet.agent.procfs import read_start_time
from pallet.model import TaskSpec

__all__ = [
    "Proc",
    "ProcessIdentity",
    "Teardown",
    "ended",
    "finish",
    "finish_adopted",
    "quota",
    "signal_all",
    "vanish",
]


@dataclass(frozen=True, slots=True)
class ProcessIdentity:
    """Who a task's main process is: a pid with its start time (clock ticks after boot,
    ``/proc/<pid>/stat`` field 22), so that a reused pid is never taken for it."""

    pid: int
    start_time: int


@dataclass(slots=True)
class Proc:
    spec: TaskSpec
    pid: int
    start_time: int
    popen: subprocess.Popen[bytes] | None  # None: adopted from an earlier agent run
    pidfd: int | None
    sandbox: Path
    oom: bool = False
    signals: list[int] = field(default_factory=list)
    limitation: tuple[str, str] | None = None
    """(what, message) when the agent killed it for exceeding a limit (disk)."""
    container: bool = False
    """Its process is ``runc run``: the exit status is the container's."""


@dataclass(frozen=True, slots=True)
class Teardown:
    """What a task's end must undo: its processes and cgroups (``isolator``), its
    containers (``cleanup_containers``) and the cgroups with their bookkeeping
    (``destroy_cgroups``)."""

    isolator: Isolator
    cleanup_containers: Callable[[Proc], None]
    destroy_cgroups: Callable[[str], None]


def quota(spec: TaskSpec) -> int:
    """MiB the task may take on disk (0: measured only for the heartbeat): its sandbox's
    ``disk`` and the sizes of its persistent volumes (the executor holds each part to
    its own share; the sum picks the quick measuring schedule)."""
    return spec.disk_mib + sum(v.size for v in spec.persistent_volumes)


def ended(proc: Proc) -> bool:
    """True once the task's main process has exited (reaped or not). Never blocks."""
    if proc.popen is None:
        if proc.pidfd is not None:
            # A pidfd polls readable when its process exits, child or not.
            with selectors.DefaultSelector() as sel:
                sel.register(proc.pidfd, selectors.EVENT_READ)
                return bool(sel.select(0))
        return read_start_time(proc.pid) != proc.start_time
    try:
        info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None


def signal_all(proc: Proc, sig: int, isolator: Isolator) -> None:
    """``sig`` to the task's process group and everything in its cgroups."""
    # Only while the leader is unreaped (alive or a zombie) is its pid, which is the
    # process group id, sure to be ours; finish reaps it after the last signal.
    # An adopted leader is not ours to keep unreaped: signal its group only while its
    # pidfd (or /proc) says it still is the process we adopted.
    leader_is_ours = proc.popen is not None or not ended(proc)
    for s in (sig, signal.SIGCONT) if sig == signal.SIGTERM else (sig,):
        if leader_is_ours:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, s)
    isolator.kill_all(proc.spec.task_id, sig)


def finish(proc: Proc, down: Teardown) -> TaskExit:
    """The agent's own child ended: reap it, clean up, say how it ended."""
    tid = proc.spec.task_id
    signal_all(proc, signal.SIGKILL, down.isolator)  # what the main process left behind
    oom = proc.oom or down.isolator.oom_kills(tid) > 0
    assert proc.popen is not None
    returncode = proc.popen.wait()
    if proc.pidfd is not None:
        os.close(proc.pidfd)
    tail = log_tail(proc.sandbox / "stderr")
    if proc.container:
        if returncode > 128:  # runc's (and Docker's) 128 + n: the container died of signal n
            returncode = 128 - returncode
        tail = runc_message(tail)
    down.cleanup_containers(proc)
    down.destroy_cgroups(tid)
    if proc.limitation is not None and not oom:
        code, sig = (returncode, None) if returncode >= 0 else (None, -returncode)
        return TaskExit(tid, code, sig, False, proc.limitation[1], proc.limitation[0])
    return describe_exit(tid, returncode, oom, proc.spec.mem_mib, tail)


def vanish(proc: Proc, down: Teardown) -> TaskExit:
    """The agent's child was reaped by someone else: its exit status is lost."""
    tid = proc.spec.task_id
    down.isolator.kill_all(tid, signal.SIGKILL)  # not killpg: the pid may be reused
    if proc.pidfd is not None:
        os.close(proc.pidfd)
    down.cleanup_containers(proc)
    down.destroy_cgroups(tid)
    message = f"pid {proc.pid} was reaped by another part of the agent process"
    return TaskExit(tid, None, None, False, message)


def finish_adopted(proc: Proc, down: Teardown) -> TaskExit:
    """An adopted task's main process ended; whoever reaped it (init) has its exit
    status. What its cgroup counted still tells an OOM kill."""
    tid = proc.spec.task_id
    down.isolator.kill_all(tid, signal.SIGKILL)  # not killpg: the pid may be reused
    oom = proc.oom or down.isolator.oom_kills(tid) > 0
    if proc.pidfd is not None:
        os.close(proc.pidfd)
    down.cleanup_containers(proc)
    down.destroy_cgroups(tid)
    if proc.limitation is not None and not oom:
        return TaskExit(tid, None, signal.SIGKILL, False, *proc.limitation[::-1])
    if oom:
        message = oom_message(proc.spec.mem_mib)
    elif signal.SIGKILL in proc.signals or signal.SIGTERM in proc.signals:
        message = "Command terminated after a kill (adopted after an agent restart)"
    else:
        message = (
            f"pid {proc.pid} ended; its exit status was lost across the agent restart "
            "(it was not this agent's child)"
        )
    return TaskExit(tid, None, None, oom, message)
