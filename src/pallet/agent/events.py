"""Events the agent's state machine takes and instructions it gives back; pure data.

Events say what happened (the master's desired set, a process started or exited, time
passed, the master acknowledged a status). Instructions say what the shell must do
(launch, kill, send a status). Both are frozen dataclasses, as in dask's
``worker_state_machine``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pallet.agent.status import Reason, TaskState
from pallet.model import HealthResult, ReadinessResult, TaskSpec, TaskStatus, ValidationError

__all__ = [
    "DesiredTasks",
    "Event",
    "ForceKill",
    "HealthChanged",
    "Instruction",
    "Kill",
    "KillTimeout",
    "Launch",
    "ReadinessChanged",
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
    """The task's process exists (forked, in its cgroup, exec under way). ``ip_addresses``:
    its own addresses when it is on a named container network."""

    task_id: str
    pid: int = 0
    ip_addresses: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TaskLaunchFailed:
    """The shell could not start the task at all (sandbox, cgroup or fork failed)."""

    task_id: str
    message: str


@dataclass(frozen=True, slots=True)
class TaskExited:
    """The task's main process ended: with ``exit_code``, or killed by ``signal``.
    ``oom`` is true when the kernel OOM-killed a process in the task's cgroup;
    ``limitation`` says which other limit the agent killed it for (its disk quota)."""

    task_id: str
    exit_code: int | None = None
    signal: int | None = None
    oom: bool = False
    message: str = ""
    limitation: Reason | None = None


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
    """A running task's health checks reached new verdicts (one result per check, in the
    spec's order); ``healthy`` is Mesos' ``TaskStatus.healthy`` over all of them."""

    task_id: str
    healthy: bool | None
    health: tuple[HealthResult, ...]


@dataclass(frozen=True, slots=True)
class ReadinessChanged:
    """A running task's readiness checks answered (one result per check, in the spec's
    order); the task is ready once all of them are."""

    task_id: str
    readiness: tuple[ReadinessResult, ...]


@dataclass(frozen=True, slots=True)
class StatusAcked:
    """The master stored every status of ``task_id`` up to and including ``seq``."""

    task_id: str
    seq: int


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passed; ``now`` is monotonic seconds from the shell's clock. With
    ``deadlines`` False only the clock moves (statuses made next count their resend from
    ``now``) and what falls due waits for the next Tick: a long batch of launches reads
    the clock so, without resending mid-batch the STARTINGs it holds back."""

    now: float
    deadlines: bool = True


Event = (
    DesiredTasks
    | TaskStarted
    | TaskLaunchFailed
    | TaskExited
    | TaskVanished
    | TaskRecovered
    | KillTimeout
    | HealthChanged
    | ReadinessChanged
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
class SendStatus(TaskStatus):
    """Send this ``TaskStatus`` to the master (and again, with backoff, until it is
    acknowledged). A health or readiness report is a RUNNING status of its own seq, as
    Mesos sends a new TaskStatus for a health change."""


Instruction = Launch | Kill | ForceKill | SendStatus
