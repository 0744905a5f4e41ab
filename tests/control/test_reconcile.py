"""The app controller's pure decision, table-driven: desired instances vs tasks."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pallet.control import AppRecord, BackoffRecord, TaskGoal, TaskRecord, TaskState
from pallet.control.reconcile import backoff_after_failure, reconcile_app
from pallet.model import Resources, TaskSpec

from .conftest import run_spec

NOW = 1000.0


def app(instances: int, config: str = "v1", **run: object) -> AppRecord:
    return AppRecord("/web", config, config, config, {}, run_spec(instances, **run))


def task(
    i: int,
    state: TaskState = TaskState.RUNNING,
    config: str = "v1",
    goal: TaskGoal = TaskGoal.RUN,
    **fields: object,
) -> TaskRecord:
    base = TaskRecord(
        id=f"web.{i}",
        app_id="/web",
        node_id="n",
        host="h",
        version=config,
        config_version=config,
        resources=Resources(100, 32),
        ports=(),
        requested_ports=(),
        gpus=(),
        staged_at=float(i),
        started_at=float(i),
        launch=TaskSpec(f"web.{i}", cmd="true"),
        state=state,
        goal=goal,
    )
    return replace(base, **fields)


@pytest.mark.parametrize(
    ("instances", "tasks", "launch", "kill"),
    [
        # nothing yet: launch all 3
        (3, [], 3, ()),
        # 2 of 3 live, a third ended long ago and is gone from the list: launch 1
        (3, [task(1), task(2)], 1, ()),
        # scale 3 -> 1, YOUNGEST_FIRST: the two started last (3, 2) go
        (1, [task(1), task(2), task(3)], 0, ("web.3", "web.2")),
        # a task being killed does not count: launch its replacement
        (2, [task(1), task(2, goal=TaskGoal.KILL)], 1, ()),
        # not yet running goes before running, whatever its age
        (1, [task(1), task(2, state=TaskState.STAGING, started_at=None)], 0, ("web.2",)),
    ],
)
def test_scale(instances: int, tasks: list[TaskRecord], launch: int, kill: tuple[str, ...]) -> None:
    decision = reconcile_app(app(instances), tasks, NOW)
    assert decision.launch == launch
    assert decision.kill == kill


def test_oldest_first_kills_the_oldest() -> None:
    decision = reconcile_app(
        app(1, kill_selection="OLDEST_FIRST"), [task(1), task(2), task(3)], NOW
    )
    assert decision.kill == ("web.1", "web.2")


def test_rolling_restart_keeps_minimum_health() -> None:
    # 4 instances, min health 0.5 -> 2 must stay RUNNING; over capacity 0.5 -> at most 6.
    a = app(4, config="v2", minimum_health_capacity=0.5, maximum_over_capacity=0.5)
    old = [task(i) for i in range(4)]
    first = reconcile_app(a, old, NOW)
    # launch min(4 new missing, 6 - 4 live) = 2; kill the 2 oldest running (4 running - 2)
    assert first.launch == 2
    assert first.kill == ("web.0", "web.1")
    # new ones staged but not running: only 2 old remain, both needed for health
    staged = [task(10 + i, state=TaskState.STAGING, config="v2") for i in range(2)]
    second = reconcile_app(a, old[2:] + staged, NOW)
    assert second.kill == ()
    assert second.launch == 2  # min(4 - 2 new, 6 - 4 live)
    # all four new running: the old ones go
    new = [task(10 + i, config="v2") for i in range(4)]
    assert reconcile_app(a, old[2:] + new, NOW).kill == ("web.2", "web.3")


def test_default_upgrade_starts_all_new_before_killing_old() -> None:
    # min health 1, over capacity 1: 2 old running -> launch 2 new, kill nothing yet
    decision = reconcile_app(app(2, config="v2"), [task(1), task(2)], NOW)
    assert (decision.launch, decision.kill) == (2, ())


def test_strategy_without_room_goes_one_over_capacity() -> None:
    # min health 1, over capacity 0: min_ready 2 = max_live 2 leaves no room, so Marathon
    # allows one instance over capacity: launch 1 new, kill nothing until it is ready
    a = app(2, config="v2", minimum_health_capacity=1.0, maximum_over_capacity=0.0)
    decision = reconcile_app(a, [task(1), task(2)], NOW)
    assert (decision.launch, decision.kill) == (1, ())
    # the new one runs: 3 ready, 1 spare -> the oldest old task goes; it still runs until
    # its agent reports, so nothing more is launched yet
    decision = reconcile_app(a, [task(1), task(2), task(3, config="v2")], NOW)
    assert (decision.launch, decision.kill) == (0, ("web.1",))
    killing = task(1, goal=TaskGoal.KILL)
    decision = reconcile_app(a, [killing, task(2), task(3, config="v2")], NOW)
    assert (decision.launch, decision.kill) == (0, ())
    # once it has ended: one more new
    decision = reconcile_app(a, [task(2), task(3, config="v2")], NOW)
    assert (decision.launch, decision.kill) == (1, ())


def test_rolling_upgrade_that_fits_nowhere_replaces_one_old_task_at_a_time() -> None:
    # 3 instances, hostname UNIQUE on 3 nodes: new tasks fit nowhere while old ones hold them
    a = app(3, config="v2")
    old = [task(i) for i in range(3)]
    assert reconcile_app(a, old, NOW).kill == ()
    decision = reconcile_app(a, old, NOW, stuck=True)
    assert decision.kill == ("web.0",)


def test_backoff_delays_launches_but_queue_shows_them() -> None:
    backoff = BackoffRecord(delay=1.0, launch_after=NOW + 1)
    decision = reconcile_app(app(2), [task(1)], NOW, backoff)
    assert (decision.launch, decision.waiting) == (0, 1)
    assert reconcile_app(app(2), [task(1)], NOW + 1, backoff).launch == 1


def test_unreachable_tasks_are_replaced_and_expunged_per_strategy() -> None:
    lost = task(1, state=TaskState.UNREACHABLE, unreachable_since=NOW - 10)
    # default strategy (0, 0): replaced and forgotten at once
    d = reconcile_app(app(1), [lost], NOW)
    assert (d.launch, d.replaced, d.expunge) == (1, ("web.1",), ("web.1",))
    # inactive after 60 s: still counts
    patient = app(
        1, unreachable_inactive_after_seconds=60.0, unreachable_expunge_after_seconds=120.0
    )
    assert reconcile_app(patient, [lost], NOW).launch == 0
    # after 60 s it is replaced but not yet forgotten
    d = reconcile_app(patient, [lost], NOW + 55)
    assert (d.launch, d.replaced, d.expunge) == (1, ("web.1",), ())
    # disabled: never replaced
    assert (
        reconcile_app(app(1, unreachable_inactive_after_seconds=None), [lost], NOW + 999).launch
        == 0
    )


@pytest.mark.parametrize(
    ("delays", "expected"),
    [
        # first failure waits backoffSeconds
        ([], 1.0),
        # then x1.15 each time: 1 * 1.15
        ([1.0], 1.15),
        # 1.15 * 1.15 = 1.3225
        ([1.0, 1.15], 1.3225),
        # capped at maxLaunchDelaySeconds (300)
        ([290.0], 300.0),
    ],
)
def test_marathon_backoff(delays: list[float], expected: float) -> None:
    a = app(1)
    current = None
    for d in delays:
        current = BackoffRecord(delay=d, launch_after=0.0)
    record = backoff_after_failure(a, current, NOW)
    assert record.delay == pytest.approx(expected)
    assert record.launch_after == pytest.approx(NOW + expected)
