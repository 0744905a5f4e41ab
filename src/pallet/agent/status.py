"""Task states and reasons with Mesos' names, and the agent's transition table; pure.

The agent moves a task along these edges only (``TRANSITIONS``)::

    STAGING ──▶ STARTING ──▶ RUNNING ──▶ FINISHED | FAILED | GONE
                   │            │
                   │            └──────▶ KILLING ──▶ KILLED
                   ├──▶ FINISHED | FAILED | GONE
                   └──▶ KILLING

STAGING is where the master leaves a task it has assigned; the agent's first report is
STARTING. GONE means the process disappeared without an exit status (Mesos: "terminated
due to an agent or containerizer error"). LOST, UNREACHABLE and the other master-side
states exist so the master can share this enum, but the agent never reports them.
"""

from __future__ import annotations

import enum

__all__ = ["TERMINAL", "TRANSITIONS", "Reason", "TaskState", "is_legal"]


class TaskState(enum.StrEnum):
    """Where a task stands; values are Mesos' ``TaskState`` names."""

    STAGING = "TASK_STAGING"
    STARTING = "TASK_STARTING"
    RUNNING = "TASK_RUNNING"
    KILLING = "TASK_KILLING"
    FINISHED = "TASK_FINISHED"
    FAILED = "TASK_FAILED"
    KILLED = "TASK_KILLED"
    ERROR = "TASK_ERROR"
    LOST = "TASK_LOST"
    DROPPED = "TASK_DROPPED"
    UNREACHABLE = "TASK_UNREACHABLE"
    GONE = "TASK_GONE"
    GONE_BY_OPERATOR = "TASK_GONE_BY_OPERATOR"
    UNKNOWN = "TASK_UNKNOWN"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset(
    {
        TaskState.FINISHED,
        TaskState.FAILED,
        TaskState.KILLED,
        TaskState.ERROR,
        TaskState.LOST,
        TaskState.DROPPED,
        TaskState.GONE,
        TaskState.GONE_BY_OPERATOR,
    }
)
"""States a task never leaves (UNREACHABLE and UNKNOWN are the master's doubts, not ends)."""


class Reason(enum.StrEnum):
    """Why a task changed state; values are Mesos' ``TaskStatus.Reason`` names."""

    COMMAND_EXECUTOR_FAILED = "REASON_COMMAND_EXECUTOR_FAILED"
    CONTAINER_LAUNCH_FAILED = "REASON_CONTAINER_LAUNCH_FAILED"
    CONTAINER_LIMITATION_MEMORY = "REASON_CONTAINER_LIMITATION_MEMORY"
    EXECUTOR_TERMINATED = "REASON_EXECUTOR_TERMINATED"
    TASK_KILLED_DURING_LAUNCH = "REASON_TASK_KILLED_DURING_LAUNCH"


_S = TaskState
TRANSITIONS: frozenset[tuple[TaskState, TaskState]] = frozenset(
    {
        (_S.STAGING, _S.STARTING),
        (_S.STARTING, _S.RUNNING),
        (_S.STARTING, _S.KILLING),
        (_S.STARTING, _S.FINISHED),
        (_S.STARTING, _S.FAILED),
        (_S.STARTING, _S.GONE),
        (_S.RUNNING, _S.KILLING),
        (_S.RUNNING, _S.FINISHED),
        (_S.RUNNING, _S.FAILED),
        (_S.RUNNING, _S.GONE),
        (_S.KILLING, _S.KILLED),
    }
)
"""Every ``(from, to)`` pair the agent may take; anything else is refused."""


def is_legal(source: TaskState, target: TaskState) -> bool:
    """True if the agent may move a task from ``source`` to ``target``."""
    return (source, target) in TRANSITIONS
