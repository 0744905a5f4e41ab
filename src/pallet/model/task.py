"""Task states with Mesos' names, shared by the master and the agents; pure."""

from __future__ import annotations

import enum

__all__ = ["TERMINAL", "TaskState"]


class TaskState(enum.StrEnum):
    """Where a task stands; values are Mesos' ``TaskState`` names. The agent reports
    STARTING to GONE; LOST, UNREACHABLE and UNKNOWN are the master's doubts."""

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
