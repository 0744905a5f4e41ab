"""What the master does with a task state an agent reports: one table, states x reports ->
step, asserted complete; pure.

The agent moves a task along its own edges (``agent.status.TRANSITIONS``) and reports
every step with the next seq; the master sees them in seq order but may miss some (an
ack covers everything before it, and an agent that restarts resends only the last), so
any state the agent could reach later is a legal report. On top: a RUNNING task reports
RUNNING again (a health or readiness change), and a task the master marked UNREACHABLE
resumes with whatever its agent says now. Everything else (a task going back, an end
reported twice, a state only the master sets) is illegal: logged, counted, ignored.

    report  STARTING RUNNING KILLING FINISHED FAILED KILLED ERROR GONE DROPPED
    STAGING  record  record  record  end      end    end    end   end  end
    RUNNING  illegal record  record  end      end    end    end   end  end
    ...      (the table below is the definition)
"""

from __future__ import annotations

import enum

from pallet.model.task import TERMINAL, TaskState

__all__ = ["REPORTABLE", "STEPS", "Step", "step"]


class Step(enum.StrEnum):
    RECORD = "record"
    """Store the new state."""
    END = "end"
    """The task ended: record how, forget the task, count the end for its app."""
    RESUME = "resume"
    """An UNREACHABLE task is heard of again: its node is back."""
    ILLEGAL = "illegal"
    """Not a move the agent can make: log it, count it, change nothing."""


_S = TaskState

REPORTABLE: frozenset[TaskState] = frozenset(
    {_S.STARTING, _S.RUNNING, _S.KILLING, *(TERMINAL - {_S.LOST, _S.GONE_BY_OPERATOR})}
)
"""States an agent reports (LOST, UNREACHABLE, UNKNOWN and GONE_BY_OPERATOR are the
master's own verdicts)."""

_LATER: dict[TaskState, frozenset[TaskState]] = {
    _S.STAGING: frozenset({_S.STARTING, _S.RUNNING, _S.KILLING}),
    _S.STARTING: frozenset({_S.RUNNING, _S.KILLING}),
    _S.RUNNING: frozenset({_S.RUNNING, _S.KILLING}),
    _S.KILLING: frozenset(),
}
"""Live states an agent may report after each live state (itself excluded but for
RUNNING, whose health and readiness come as RUNNING again)."""

_ENDS_FROM_KILLING = frozenset({_S.KILLED, _S.FAILED, _S.FINISHED, _S.GONE})


def _step(current: TaskState, report: TaskState) -> Step:
    if current.is_terminal:
        return Step.ILLEGAL  # an end is final (the record is gone by then anyway)
    if current in (_S.UNREACHABLE, _S.UNKNOWN):
        return Step.END if report.is_terminal else Step.RESUME
    if current is _S.KILLING:
        return Step.END if report in _ENDS_FROM_KILLING else Step.ILLEGAL
    if report.is_terminal:
        return Step.END
    return Step.RECORD if report in _LATER[current] else Step.ILLEGAL


STEPS: dict[tuple[TaskState, TaskState], Step] = {
    (current, report): _step(current, report)
    for current in TaskState
    for report in sorted(REPORTABLE)
}
assert len(STEPS) == len(TaskState) * len(REPORTABLE), "every (state, report) has one step"


def step(current: TaskState, report: TaskState) -> Step:
    """The master's step for a task in ``current`` whose agent reports ``report``; a state
    no agent reports is illegal."""
    return STEPS.get((current, report), Step.ILLEGAL)
