"""Events the agent's state machine takes and instructions it gives back; pure data.

Events say what happened (the master's desired set, a process started or exited, time
passed, the master acknowledged a status). Instructions say what the shell must do
(launch, kill, send a status). Both are frozen dataclasses, as in dask's
``worker_state_machine``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pallet.agent.health import HealthRecord, record_from_json
from pallet.agent.spec import TaskSpec
from pallet.agent.status import Reason, TaskState
from pallet.model import ValidationError

__all__ = [
    "DesiredTasks",
    "Event",
    "ForceKill",
    "HealthChanged",
    "Instruction",
    "Kill",
    "KillTimeout",
    "Launch",
    "SendStatus",
    "StatusAcked",
    "TaskExited",
    "TaskLaunchFailed",
    "TaskRecovered",
    "TaskStarted",
    "TaskVanished",
    "Tick",
]


# ---------------------------------------------------------------- events


@dataclass(frozen=True, slots=True, init=False)
class DesiredTasks:
    """The complete set of tasks the master wants on this node now (level-triggered)."""

    tasks: frozenset[TaskSpec]

    def __init__(self, tasks: Iterable[TaskSpec]) -> None:
        specs = tuple(tasks)
        seen: dict[str, TaskSpec] = {}
        for spec in specs:
            other = seen.setdefault(spec.task_id, spec)
            if other != spec:
                raise ValidationError(
                    "/tasks", f"task {spec.task_id} appears twice with different specs"
                )
        object.__setattr__(self, "tasks", frozenset(seen.values()))


@dataclass(frozen=True, slots=True)
class TaskStarted:
    """The task's process exists (forked, in its cgroup, exec under way)."""

    task_id: str
    pid: int = 0


@dataclass(frozen=True, slots=True)
class TaskLaunchFailed:
    """The shell could not start the task at all (sandbox, cgroup or fork failed)."""

    task_id: str
    message: str


@dataclass(frozen=True, slots=True)
class TaskExited:
    """The task's main process ended: with ``exit_code``, or killed by ``signal``.
    ``oom`` is true when the kernel OOM-killed a process in the task's cgroup."""

    task_id: str
    exit_code: int | None = None
    signal: int | None = None
    oom: bool = False
    message: str = ""


@dataclass(frozen=True, slots=True)
class TaskVanished:
    """The shell lost the task's process without learning how it ended."""

    task_id: str
    message: str = ""


@dataclass(frozen=True, slots=True)
class TaskRecovered:
    """A task found in a checkpoint after an agent restart: it was in ``state`` with
    sequence number ``seq``, and ``unacked`` were never acknowledged. Its process, if
    alive, has been adopted; if not, a TaskVanished or TaskExited follows."""

    spec: TaskSpec
    state: TaskState
    seq: int
    unacked: tuple[SendStatus, ...] = ()


@dataclass(frozen=True, slots=True)
class KillTimeout:
    """The grace period of a kill ran out (for shells that time kills themselves)."""

    task_id: str


@dataclass(frozen=True, slots=True)
class HealthChanged:
    """A running task's health checks reached new verdicts (one record per check, in the
    spec's order); ``healthy`` is Mesos' ``TaskStatus.healthy`` over all of them."""

    task_id: str
    healthy: bool | None
    health: tuple[HealthRecord, ...]


@dataclass(frozen=True, slots=True)
class StatusAcked:
    """The master stored every status of ``task_id`` up to and including ``seq``."""

    task_id: str
    seq: int


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passed; ``now`` is monotonic seconds from the shell's clock."""

    now: float


Event = (
    DesiredTasks
    | TaskStarted
    | TaskLaunchFailed
    | TaskExited
    | TaskVanished
    | TaskRecovered
    | KillTimeout
    | HealthChanged
    | StatusAcked
    | Tick
)


# ---------------------------------------------------------------- instructions


@dataclass(frozen=True, slots=True)
class Launch:
    """Start ``spec`` in its sandbox and cgroup; answer with TaskStarted or TaskLaunchFailed."""

    spec: TaskSpec


@dataclass(frozen=True, slots=True)
class Kill:
    """Send SIGTERM to every process of the task; SIGKILL follows after ``grace`` seconds."""

    task_id: str
    grace: float


@dataclass(frozen=True, slots=True)
class ForceKill:
    """Send SIGKILL to every process of the task now."""

    task_id: str


@dataclass(frozen=True, slots=True)
class SendStatus:
    """Tell the master that ``task_id`` reached ``state``. ``seq`` increases with every
    state change of the task; the master stores by (task_id, seq) and acknowledges, and
    the update is sent again until it does. A health report is a RUNNING status with
    ``healthy`` and ``health`` set (a seq of its own, as Mesos sends a new TaskStatus)."""

    task_id: str
    state: TaskState
    seq: int
    reason: Reason | None = None
    message: str = ""
    exit_code: int | None = None
    signal: int | None = None
    healthy: bool | None = None
    health: tuple[HealthRecord, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The agent protocol's shape of the update (also how checkpoints keep it)."""
        return {
            "task_id": self.task_id,
            "state": self.state.value,
            "seq": self.seq,
            "reason": self.reason.value if self.reason is not None else None,
            "message": self.message,
            "exit_code": self.exit_code,
            "signal": self.signal,
            "healthy": self.healthy,
            "health": [h.to_json() for h in self.health] if self.health else None,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> SendStatus:
        """The update ``to_json`` wrote; KeyError, TypeError or ValueError when malformed."""
        reason = doc.get("reason")
        seq = doc["seq"]
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise ValueError(f"seq must be an integer, not {seq!r}")
        return cls(
            task_id=str(doc["task_id"]),
            state=TaskState(doc["state"]),
            seq=seq,
            reason=Reason(reason) if reason is not None else None,
            message=str(doc.get("message", "")),
            exit_code=doc.get("exit_code"),
            signal=doc.get("signal"),
            healthy=doc.get("healthy"),
            health=tuple(record_from_json(h) for h in doc.get("health") or ()),
        )


Instruction = Launch | Kill | ForceKill | SendStatus
