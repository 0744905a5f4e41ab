"""The master's task transition table: complete, table-driven on the edges that matter, and
never refusing what a real agent can report (any subsequence of its own moves)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pallet.agent.status import TRANSITIONS
from pallet.model import TaskState
from pallet.model.transitions import REPORTABLE, STEPS, Step, step

S = TaskState


def test_the_table_is_complete() -> None:
    assert set(STEPS) == {(c, r) for c in TaskState for r in REPORTABLE}


@pytest.mark.parametrize(
    ("current", "report", "expected"),
    [
        (S.STAGING, S.STARTING, Step.RECORD),
        (S.STAGING, S.RUNNING, Step.RECORD),  # STARTING's report was acked with it, or lost
        (S.RUNNING, S.RUNNING, Step.RECORD),  # a health or readiness report
        (S.RUNNING, S.FAILED, Step.END),
        (S.KILLING, S.KILLED, Step.END),
        (S.UNREACHABLE, S.RUNNING, Step.RESUME),  # its node is back
        (S.UNREACHABLE, S.FINISHED, Step.END),
        (S.RUNNING, S.STARTING, Step.ILLEGAL),  # going back
        (S.KILLING, S.RUNNING, Step.ILLEGAL),
        (S.FINISHED, S.RUNNING, Step.ILLEGAL),  # an end is final
        (S.RUNNING, S.UNREACHABLE, Step.ILLEGAL),  # only the master says that
        (S.RUNNING, S.GONE_BY_OPERATOR, Step.ILLEGAL),
        (S.RUNNING, S.STAGING, Step.ILLEGAL),
    ],
)
def test_steps(current: TaskState, report: TaskState, expected: Step) -> None:
    assert step(current, report) is expected


def _walks() -> st.SearchStrategy[list[TaskState]]:
    """The states an agent moves a task through, along its own edges, from STAGING."""

    @st.composite
    def walk(draw: st.DrawFn) -> list[TaskState]:
        path = [S.STAGING]
        while not path[-1].is_terminal:
            nexts = sorted(t for f, t in TRANSITIONS if f is path[-1])
            if not nexts:
                break
            nxt = draw(st.sampled_from(nexts))
            path.append(nxt)
            if nxt is S.RUNNING:  # health reports: RUNNING again, any number of times
                path += [S.RUNNING] * draw(st.integers(0, 2))
        return path

    return walk()


@given(_walks(), st.data())
def test_what_an_agent_reports_is_never_refused(path: list[TaskState], data: st.DataObject) -> None:
    # the master sees the reports in order but may miss any of them
    seen = [s for s in path[1:] if data.draw(st.booleans(), label=f"keep {s}")] or path[-1:]
    current = S.STAGING
    for report in seen:
        verdict = step(current, report)
        assert verdict is not Step.ILLEGAL, (current, report)
        if verdict is Step.END:
            break
        current = report
