"""Task states and reasons with Mesos' names, and the agent's transition table; pure.

The agent moves a task along these edges only (``TRANSITIONS``)::

    STAGING ──▶ STARTING ──▶ RUNNING ──▶ FINISHED | FAILED | GONE
                   │            │
                   │            └──────▶ KILLING ──▶ KILLED
                   ├──▶ FINISHED | FAILED | GONE
                   └──▶ KILLING

STAGING is where the master leaves a task it has assigned; the agent's first report is
STARTING. GONE means the process disappeared without an exit status (Mesos: "terminated
due to an agent or containerizer error"). The states themselves are the model's
(``pallet.model.TaskState``), shared with the master; LOST, UNREACHABLE and the other
master-side states are never reported by the agent.
"""

from __future__ import annotations

from pallet.model.task import TERMINAL, Reason, TaskState

__all__ = ["TERMINAL", "TRANSITIONS", "Reason", "TaskState", "is_legal"]


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
