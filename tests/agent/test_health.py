"""Health-check timing and counting (``agent.health``), table-driven with times as data;
and the state machine's health reports."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from pallet.agent import AgentStateMachine, DesiredTasks, HealthChanged, SendStatus, TaskStarted
from pallet.agent.health import (
    HealthRecord,
    aggregate,
    begin,
    http_verdict,
    observe,
    reportable,
    should_kill,
)
from pallet.agent.status import TaskState
from pallet.model import CheckProtocol, HealthCheckSpec, ValidationError

from .conftest import make_spec

# grace 10 s, interval 5 s, at most 3 failures, delay 2 s (Mesos protocols only)
CHECK = HealthCheckSpec(
    protocol=CheckProtocol.HTTP,
    port=31000,
    grace_period=10,
    interval=5,
    max_consecutive_failures=3,
    delay=2,
)


@dataclass(frozen=True)
class Case:
    name: str
    probes: tuple[tuple[float, bool | None], ...]
    """(finish time, verdict) after a start at t=100."""
    alive: bool | None
    failures: int
    first_success: float | None = None
    last_failure: float | None = None


CASES = [
    Case("nothing probed yet: no verdict", (), None, 0),
    # 100 + grace 10 = 110: failures before it are ignored entirely
    Case("failures in the grace period are ignored", ((101, False), (106, False)), None, 0),
    Case("a failure after the grace period counts", ((101, False), (111, False)), False, 1, None, 111),
    Case("the first success ends the grace period", ((101, True), (102, False)), False, 1, 101, 102),
    Case("a success resets the failure count", ((111, False), (116, False), (121, True)), True, 0, 121, 116),
    Case("failures add up: 3 after grace", ((111, False), (116, False), (121, False)), False, 3, None, 121),
    Case("no verdict (ignored 1xx) changes nothing", ((111, False), (116, None)), False, 1, None, 111),
    Case("the first success is kept", ((101, True), (106, True)), True, 0, 101),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_observe_sequences(case: Case) -> None:
    record = begin(CHECK, 100.0)
    for when, ok in case.probes:
        record = observe(CHECK, record, when, ok, "refused")
        assert record.next_due == when + CHECK.interval  # every probe schedules the next
    assert record.alive is case.alive
    assert record.consecutive_failures == case.failures
    assert record.first_success == case.first_success
    assert record.last_failure == case.last_failure
    if case.last_failure is not None:
        assert record.last_failure_cause == "refused"


@pytest.mark.parametrize(
    ("protocol", "first_due"),
    [
        (CheckProtocol.HTTP, 100.0),  # Marathon's own checks start at once
        (CheckProtocol.TCP, 100.0),
        (CheckProtocol.HTTPS, 100.0),
        (CheckProtocol.COMMAND, 102.0),  # Mesos checks wait delaySeconds (2)
        (CheckProtocol.MESOS_HTTP, 102.0),
        (CheckProtocol.MESOS_TCP, 102.0),
    ],
)
def test_first_probe_waits_for_the_delay_of_mesos_checks(
    protocol: CheckProtocol, first_due: float
) -> None:
    check = HealthCheckSpec(protocol=protocol, port=31000, command="true", delay=2)
    assert begin(check, 100.0).next_due == first_due


@pytest.mark.parametrize(
    ("limit", "failures", "kill"),
    [(3, 2, False), (3, 3, True), (3, 4, True), (0, 100, False), (1, 1, True), (1, 0, False)],
)
def test_should_kill(limit: int, failures: int, kill: bool) -> None:
    assert should_kill(limit, failures) is kill


@pytest.mark.parametrize(
    ("status", "ignore_1xx", "verdict"),
    [
        (200, False, True),
        (204, False, True),
        (301, False, True),
        (399, False, True),
        (400, False, False),
        (404, False, False),
        (500, False, False),
        (100, True, None),
        (101, True, None),
        (100, False, False),
    ],
)
def test_http_verdict(status: int, ignore_1xx: bool, verdict: bool | None) -> None:
    assert http_verdict(status, ignore_1xx) is verdict


def _rec(alive: bool | None, failures: int = 0) -> HealthRecord:
    return HealthRecord(0.0, 0.0, alive=alive, consecutive_failures=failures)


@pytest.mark.parametrize(
    ("alives", "healthy"),
    [((), None), ((None,), None), ((True,), True), ((False,), False), ((True, None), None),
     ((True, True), True), ((True, False), False)],
)  # fmt: skip
def test_aggregate(alives: tuple[bool | None, ...], healthy: bool | None) -> None:
    assert aggregate(_rec(a) for a in alives) is healthy


@pytest.mark.parametrize(
    ("before", "after", "report"),
    [
        (_rec(None), _rec(None), False),
        (_rec(None), _rec(True), True),
        (_rec(True), _rec(True), False),  # another success: nothing new for the master
        (_rec(True), _rec(False, 1), True),
        (_rec(False, 1), _rec(False, 2), True),  # the master counts toward the kill
    ],
)
def test_reportable(before: HealthRecord, after: HealthRecord, report: bool) -> None:
    assert reportable(before, after) is report


def test_a_check_without_a_port_fails_when_probed_instead_of_refusing_the_task() -> None:
    assert HealthCheckSpec(protocol="TCP").problem is not None
    assert HealthCheckSpec(protocol="COMMAND", command="true").problem is None
    assert HealthCheckSpec(protocol="COMMAND").problem is not None
    with pytest.raises(ValidationError) as info:
        HealthCheckSpec.from_json({"protocol": "HTTP", "port": 80, "timeout": -5}, "/c")
    assert info.value.field == "/c/timeout"


def test_specs_read_health_checks_from_json() -> None:
    spec = make_spec(health_checks=[{"protocol": "TCP", "port": 31000, "interval": 1}])
    assert spec.health_checks == (
        HealthCheckSpec(protocol=CheckProtocol.TCP, port=31000, interval=1),
    )


def test_health_reports_take_the_next_seq_of_a_running_task_only() -> None:
    machine = AgentStateMachine()
    spec = make_spec("t1", health_checks=[{"protocol": "TCP", "port": 31000}])
    record = _rec(True)
    # STARTING: health is no news yet
    machine.handle(DesiredTasks([spec]))
    assert machine.handle(HealthChanged("t1", True, (record,))) == []
    machine.handle(TaskStarted("t1", 1))
    assert machine.task("t1").state is TaskState.RUNNING  # type: ignore[union-attr]
    out = machine.handle(HealthChanged("t1", True, (record,)))
    assert out == [SendStatus("t1", TaskState.RUNNING, 3, healthy=True, health=(record,))]
    failing = HealthRecord(0.0, 0.0, alive=False, consecutive_failures=1, last_failure_cause="x")
    out = machine.handle(HealthChanged("t1", False, (failing,)))
    assert [(s.seq, s.healthy, s.message) for s in out if isinstance(s, SendStatus)] == [
        (4, False, "x")
    ]
    # Every RUNNING waits for its ack; the STARTING they superseded does not.
    assert machine.task("t1").unacked == (2, 3, 4)  # type: ignore[union-attr]
    assert machine.handle(HealthChanged("nope", True, ())) == []
