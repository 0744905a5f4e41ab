"""``pallet bench faults`` at a small size: the scenarios measure what they say and leave
nothing behind; the error-span arithmetic on chosen timelines."""

from __future__ import annotations

import pytest

from pallet.bench.faults import _error_spans, _Write, run_agent_restart, run_etcd_member_kill
from pallet.store.etcd.server import etcd_available

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("outcomes", "longest"),
    [
        ([(0, 1, True), (1, 2, True)], 0.0),
        # fails from 1.0 until the write that ends at 4.0 succeeds: 3.0
        ([(0, 1, True), (1, 2, False), (2, 3, False), (3, 4, True)], 3.0),
        # two spans, 1.0 and 0.5: the longer counts
        ([(0, 1, False), (1, 1, True), (2, 2.25, False), (2.25, 2.5, True)], 1.0),
        # still failing at the end: until the last write ended
        ([(0, 1, True), (1, 3, False)], 2.0),
    ],
)
def test_error_spans(outcomes: list[tuple[float, float, bool]], longest: float) -> None:
    assert _error_spans([_Write(*o) for o in outcomes]) == longest


def test_agent_restart_reattaches_without_restarting_tasks() -> None:
    result = run_agent_restart(tasks=5)
    assert result["scenario"] == "agent-restart" and result["tasks"] == 5
    assert result["task_restarts"] == 0
    assert result["reattach_s"] > 0 and result["baseline_launch_s"] > 0


@pytest.mark.skipif(etcd_available() is not None, reason=str(etcd_available()))
def test_etcd_member_kill_measures_writes_around_the_kill() -> None:
    result = run_etcd_member_kill(seconds=3.0)
    assert result["writes"] > 0 and result["baseline"]["writes"] > 0
    assert result["baseline"]["errors"] == 0
    assert result["max_error_s"] >= 0 and result["max_stall_s"] > 0
