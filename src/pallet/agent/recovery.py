"""Task checkpoints and the recovery decision after an agent restart; pure.

A ``Checkpoint`` is what the agent writes to disk for each task it launched: the spec,
who the process is (pid, its start time in clock ticks since boot, the kernel's boot
id -- a pid alone may be reused), its cgroups, and the task's last state and sequence
number with the status updates the master had not acknowledged when it was written.

``plan_recovery`` turns the checkpoints found on start and the facts read from
``/proc`` and the cgroup tree into decisions, as Mesos' agent recovery does::

    checkpoint, process alive with the same start time and boot  -> Adopt
    checkpoint, process gone / pid reused / host rebooted        -> Lost (report the end)
    checkpoint of a task that had already ended                  -> Resend (its last update)
    task cgroup with no checkpoint                               -> KillOrphan
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from pallet.agent.events import SendStatus
from pallet.agent.status import TaskState
from pallet.model import TaskSpec

__all__ = [
    "CHECKPOINT_VERSION",
    "Adopt",
    "Checkpoint",
    "KillOrphan",
    "Lost",
    "ProcessFacts",
    "RecoveryPlan",
    "Resend",
    "decode_checkpoint",
    "encode_checkpoint",
    "plan_recovery",
]

CHECKPOINT_VERSION = 1
_AGENT_STATES = frozenset(
    {
        TaskState.STARTING,
        TaskState.RUNNING,
        TaskState.KILLING,
        TaskState.FINISHED,
        TaskState.FAILED,
        TaskState.GONE,
        TaskState.KILLED,
    }
)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One launched task as the agent left it on disk."""

    spec: TaskSpec
    pid: int
    start_time: int
    """Field 22 of ``/proc/<pid>/stat``: clock ticks after boot when the process started."""
    boot_id: str
    """``/proc/sys/kernel/random/boot_id`` when the task was launched."""
    state: TaskState
    seq: int
    unacked: tuple[SendStatus, ...] = ()
    cgroups: Mapping[str, str] = field(default_factory=dict)
    launched_at: float = 0.0
    """Wall-clock seconds (informational: for people reading the file)."""

    @property
    def task_id(self) -> str:
        return self.spec.task_id


@dataclass(frozen=True, slots=True)
class ProcessFacts:
    """What the shell read on start: the kernel's boot id, the start time of each
    checkpointed pid that exists and is not a zombie, the task cgroups on disk, and
    the OOM kills counted in each task's memory cgroup."""

    boot_id: str
    start_times: Mapping[int, int] = field(default_factory=dict)
    cgroups: Collection[str] = ()
    oom_kills: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Adopt:
    """The process still runs: manage it again as if this agent had launched it."""

    checkpoint: Checkpoint


@dataclass(frozen=True, slots=True)
class Lost:
    """The process ended while the agent was away (or cannot be trusted to be the
    task's): destroy its cgroups and report the end. ``oom`` when its memory cgroup
    saw an OOM kill."""

    checkpoint: Checkpoint
    message: str
    oom: bool = False


@dataclass(frozen=True, slots=True)
class Resend:
    """The task had ended before the restart; its final update still needs an ack."""

    checkpoint: Checkpoint


@dataclass(frozen=True, slots=True)
class KillOrphan:
    """A task cgroup nobody checkpointed: kill what is in it and remove it."""

    task_id: str


@dataclass(frozen=True, slots=True)
class RecoveryPlan:
    adopt: tuple[Adopt, ...] = ()
    lost: tuple[Lost, ...] = ()
    resend: tuple[Resend, ...] = ()
    orphans: tuple[KillOrphan, ...] = ()


def plan_recovery(checkpoints: Collection[Checkpoint], facts: ProcessFacts) -> RecoveryPlan:
    """Decide what becomes of each checkpointed task and each cgroup left on disk. Pure."""
    adopt: list[Adopt] = []
    lost: list[Lost] = []
    resend: list[Resend] = []
    known = set()
    for cp in sorted(checkpoints, key=lambda c: c.task_id):
        known.add(cp.task_id)
        if cp.state.is_terminal:
            resend.append(Resend(cp))
            continue
        why = _why_not_alive(cp, facts)
        if why is None:
            adopt.append(Adopt(cp))
        else:
            oom = facts.boot_id == cp.boot_id and facts.oom_kills.get(cp.task_id, 0) > 0
            lost.append(Lost(cp, why, oom))
    orphans = tuple(KillOrphan(t) for t in sorted(set(facts.cgroups) - known))
    return RecoveryPlan(tuple(adopt), tuple(lost), tuple(resend), orphans)


def _why_not_alive(cp: Checkpoint, facts: ProcessFacts) -> str | None:
    """None if the checkpointed process is the one running now, else why it is not."""
    lost = "its exit status was lost across the agent restart"
    if facts.boot_id != cp.boot_id:
        return f"the host rebooted while the agent was down (pid {cp.pid}); {lost}"
    started = facts.start_times.get(cp.pid)
    if started is None:
        return f"pid {cp.pid} ended while the agent was down; {lost}"
    if started != cp.start_time:
        return f"pid {cp.pid} ended while the agent was down and was reused; {lost}"
    return None


# ---------------------------------------------------------------- encoding


def encode_checkpoint(cp: Checkpoint) -> dict[str, Any]:
    """The JSON document of a checkpoint."""
    return {
        "version": CHECKPOINT_VERSION,
        "task_id": cp.task_id,
        "spec": cp.spec.to_json(),
        "pid": cp.pid,
        "start_time": cp.start_time,
        "boot_id": cp.boot_id,
        "state": cp.state.value,
        "seq": cp.seq,
        "unacked": [s.to_json() for s in cp.unacked],
        "cgroups": dict(cp.cgroups),
        "launched_at": cp.launched_at,
    }


def decode_checkpoint(doc: Any) -> Checkpoint:
    """A checkpoint from its JSON document; ValueError says what is wrong with it."""
    try:
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        if doc.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"unknown version {doc.get('version')!r}")
        spec = TaskSpec.from_json(doc["spec"], "/spec")
        if spec.task_id != doc["task_id"]:
            raise ValueError(f"task id {doc['task_id']!r} differs from the spec's")
        cp = Checkpoint(
            spec=spec,
            pid=_int(doc["pid"], "pid"),
            start_time=_int(doc["start_time"], "start_time"),
            boot_id=str(doc["boot_id"]),
            state=TaskState(doc["state"]),
            seq=_int(doc["seq"], "seq"),
            unacked=tuple(SendStatus.from_json(s) for s in doc.get("unacked", ())),
            cgroups={str(k): str(v) for k, v in dict(doc.get("cgroups", {})).items()},
            launched_at=float(doc.get("launched_at", 0.0)),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"bad checkpoint: {type(e).__name__}: {e}") from e
    if cp.pid <= 0:
        raise ValueError(f"bad checkpoint: pid {cp.pid}")
    if cp.state not in _AGENT_STATES:
        raise ValueError(f"bad checkpoint: the agent never leaves a task in {cp.state}")
    return cp


def _int(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, not {value!r}")
    return value
