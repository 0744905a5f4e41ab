"""Pallet's additions to Marathon's upgradeStrategy: a progress deadline, automatic
rollback to the last healthy version, and canaries that pause until promoted. First the
pure ``watch`` table, then whole rollouts through Control with a fake clock."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any, cast

import pytest

from pallet.control import (
    AppRecord,
    Control,
    DeploymentChanged,
    DeploymentRecord,
    NotPromotable,
    TaskGoal,
    TaskRecord,
    TaskState,
)
from pallet.control.deployments import holding, holds, waiting, waiting_apps, watch
from pallet.control.state import Deployments
from pallet.model import CheckProtocol, HealthCheckSpec, HealthResult, Resources, TaskSpec

from .conftest import (
    FakeClock,
    app_tasks,
    confirm_kills,
    converge,
    definition,
    report,
    run_all,
    run_spec,
    with_nodes,
)

pytestmark = pytest.mark.anyio

CHECK = HealthCheckSpec(protocol=CheckProtocol.COMMAND, command="true")
T0 = 1000.0


def _app(**run: Any) -> AppRecord:
    return AppRecord("/web", "v2", "v2", "v2", {}, run_spec(4, health_checks=(CHECK,), **run))


def _task(i: int, ready: bool, config: str = "v2") -> TaskRecord:
    return TaskRecord(
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
        staged_at=0.0,
        launch=TaskSpec(f"web.{i}", cmd="true", health_checks=(CHECK,)),
        state=TaskState.RUNNING,
        healthy=ready,
    )


def _deployment(**fields: Any) -> DeploymentRecord:
    steps = ((("RestartApplication", "/web"),),)
    targets = {"/web": {"version": "v2"}}
    base = DeploymentRecord("d", "v2", steps, 1, {"/web": {}}, targets, T0, T0)
    return replace(base, **fields)


@pytest.mark.parametrize(
    ("app", "deployment", "tasks", "now", "changes", "failed"),
    [
        # no deadline: never fails, however long nothing happens
        (_app(), _deployment(), [], T0 + 1e6, {}, False),
        # deadline 20 s, 19 s without progress: goes on
        (_app(progress_deadline_seconds=20), _deployment(), [], T0 + 19, {}, False),
        # 21 s without a newly ready task: fails
        (_app(progress_deadline_seconds=20), _deployment(), [_task(1, False)], T0 + 21, {}, True),
        # a task became ready at 21 s: that is progress, the clock restarts
        (
            _app(progress_deadline_seconds=20),
            _deployment(),
            [_task(1, True)],
            T0 + 21,
            {"ready_seen": 1, "progress_at": T0 + 21},
            False,
        ),
        # ready tasks of the old config are no progress of this deployment
        (
            _app(progress_deadline_seconds=20),
            _deployment(),
            [_task(1, True, "v1")],
            T0 + 21,
            {},
            True,
        ),
        # canaries: 1 of 2 ready is progress, not yet paused
        (
            _app(canary_instances=2),
            _deployment(canaries=2),
            [_task(1, True), _task(2, False)],
            T0 + 5,
            {"ready_seen": 1, "progress_at": T0 + 5},
            False,
        ),
        # both ready: paused (and a paused deployment's deadline does not run)
        (
            _app(canary_instances=2, progress_deadline_seconds=20),
            _deployment(canaries=2, ready_seen=2),
            [_task(1, True), _task(2, True)],
            T0 + 500,
            {"paused_at": T0 + 500},
            False,
        ),
        # auto-promoted once ready for autoPromoteAfterSeconds
        (
            _app(canary_instances=2, auto_promote_after_seconds=60),
            _deployment(canaries=2, ready_seen=2, paused_at=T0 + 10),
            [_task(1, True), _task(2, True)],
            T0 + 70,
            {"promoted": True, "progress_at": T0 + 70},
            False,
        ),
        # a canary failed after the pause: no longer paused, the deadline runs again
        (
            _app(canary_instances=2, progress_deadline_seconds=20),
            _deployment(canaries=2, ready_seen=2, paused_at=T0 + 10),
            [_task(1, True), _task(2, False)],
            T0 + 30,
            {"ready_seen": 1, "paused_at": None},
            True,
        ),
    ],
)
def test_watch(
    app: AppRecord,
    deployment: DeploymentRecord,
    tasks: list[TaskRecord],
    now: float,
    changes: dict[str, Any],
    failed: bool,
) -> None:
    new, reason = watch(deployment, {app.id: app}, tasks, now)
    assert new == replace(deployment, **changes)
    assert (reason is not None) == failed


# ---------------------------------------------------------------- whole rollouts


async def _healthy(ctl: Control, task_id: str, alive: bool) -> None:
    await report(
        ctl,
        task_id,
        TaskState.RUNNING,
        healthy=alive,
        health=(HealthResult(alive, 0 if alive else 1),),
    )


async def _start(ctl: Control, **strategy: Any) -> None:
    await with_nodes(ctl, 3)
    run = run_spec(4, health_checks=(CHECK,), **strategy)
    await ctl.apps.create("/web", definition("/web"), run)
    await converge(ctl)
    await run_all(ctl)
    for t in app_tasks(ctl, "/web"):
        await _healthy(ctl, t.id, True)
    await ctl.controller.reconcile()
    assert not ctl.state.deployments
    assert ctl.state.apps["/web"].stable_version == ctl.state.apps["/web"].version


def _ready(ctl: Control, config: str | None = None) -> int:
    return sum(
        1
        for t in ctl.state.app_tasks("/web")
        if t.ready and t.goal is TaskGoal.RUN and (config is None or t.config_version == config)
    )


async def test_a_broken_version_rolls_back_by_itself(control: Control, clock: FakeClock) -> None:
    strategy = {"minimum_health_capacity": 0.5, "maximum_over_capacity": 0.0}
    await _start(control, progress_deadline_seconds=20, auto_rollback=True, **strategy)
    good = control.state.apps["/web"]
    sub = control.bus.subscribe()
    broken = run_spec(
        4,
        cmd="exit 1",
        health_checks=(CHECK,),
        progress_deadline_seconds=20,
        auto_rollback=True,
        **strategy,
    )
    await control.apps.update("/web", definition("/web", cmd="exit 1"), broken)
    lowest = 4
    for _ in range(8):  # 8 x 3 s: past the 20 s deadline
        await converge(control)
        await confirm_kills(control)
        await run_all(control)
        for t in app_tasks(control, "/web"):
            if t.config_version != good.config_version and t.healthy is None:
                await _healthy(control, t.id, False)  # the new version never gets healthy
        lowest = min(lowest, _ready(control, good.config_version))
        clock.advance(3)
    for _ in range(4):  # the rollback replaces the broken tasks by good ones
        await converge(control)
        await confirm_kills(control)
        await run_all(control)
        for t in app_tasks(control, "/web"):
            if t.healthy is None:
                await _healthy(control, t.id, t.config_version == good.config_version)
        lowest = min(lowest, _ready(control, good.config_version))
    app = control.state.apps["/web"]
    # back on the good definition, with the good tasks kept (same config version)
    assert app.definition == good.definition and app.config_version == good.config_version
    assert lowest >= 2  # never below the old version's minimum (0.5 x 4)
    assert _ready(control, good.config_version) == 4
    assert all(t.config_version == good.config_version for t in control.state.app_tasks("/web"))
    events = []
    while not sub._queue.empty():
        event = sub._queue.get_nowait()
        if isinstance(event, DeploymentChanged):
            events.append((event.kind, event.reason))
    assert ("failed", "no new task became ready within progressDeadlineSeconds (20 s)") in events
    assert (
        "step_failure",
        "no new task became ready within progressDeadlineSeconds (20 s)",
    ) in events


async def test_without_auto_rollback_a_failed_deployment_only_ends(
    control: Control, clock: FakeClock
) -> None:
    await _start(control, progress_deadline_seconds=5)
    broken = run_spec(4, cmd="exit 1", health_checks=(CHECK,), progress_deadline_seconds=5)
    await control.apps.update("/web", definition("/web", cmd="exit 1"), broken)
    await converge(control)
    clock.advance(6)
    await control.controller.reconcile()
    assert not control.state.deployments
    assert control.state.apps["/web"].spec.cmd == "exit 1"  # left as it is
    assert _ready(control) == 4  # the old tasks still serve: none was ready to replace them


async def test_canaries_pause_until_promoted(control: Control, clock: FakeClock) -> None:
    await _start(control)
    v1 = control.state.apps["/web"].config_version
    canary = run_spec(4, cmd="sleep 601", health_checks=(CHECK,), canary_instances=1)
    change = await control.apps.update("/web", definition("/web", cmd="sleep 601"), canary)
    for _ in range(3):
        await converge(control)
        await run_all(control)
        for t in app_tasks(control, "/web"):
            if t.healthy is None:
                await _healthy(control, t.id, True)
    new = [t for t in app_tasks(control, "/web") if t.config_version != v1]
    assert len(new) == 1  # one canary beside the four old tasks, none of them killed
    assert _ready(control, v1) == 4
    d = control.state.deployments[change.deployment.id]
    assert d.paused_at is not None and not d.promoted
    clock.advance(3600)  # paused: it waits for as long as it takes
    await converge(control)
    assert len([t for t in app_tasks(control, "/web") if t.config_version != v1]) == 1

    await control.apps.promote(change.deployment.id)
    with pytest.raises(NotPromotable):
        await control.apps.promote(change.deployment.id)
    for _ in range(6):
        await converge(control)
        await confirm_kills(control)
        await run_all(control)
        for t in app_tasks(control, "/web"):
            if t.healthy is None:
                await _healthy(control, t.id, True)
    await control.controller.reconcile()
    assert not control.state.deployments
    assert {t.config_version for t in control.state.app_tasks("/web")} == {
        control.state.apps["/web"].config_version
    }


async def test_canaries_promote_themselves(control: Control, clock: FakeClock) -> None:
    await _start(control)
    run = run_spec(
        4,
        cmd="sleep 601",
        health_checks=(CHECK,),
        canary_instances=2,
        auto_promote_after_seconds=30,
    )
    change = await control.apps.update("/web", definition("/web", cmd="sleep 601"), run)
    for _ in range(3):
        await converge(control)
        await run_all(control)
        for t in app_tasks(control, "/web"):
            if t.healthy is None:
                await _healthy(control, t.id, True)
    assert control.state.deployments[change.deployment.id].paused_at is not None
    clock.advance(31)
    await control.controller.reconcile()
    assert control.state.deployments[change.deployment.id].promoted


def test_one_walk_over_the_deployments_answers_as_asking_app_by_app() -> None:
    """A controller pass asks each app it looks at whether it waits and how many tasks it
    may run, through the deployments' index (``waiting``, ``holding``): the same answers
    as one walk over every deployment (``waiting_apps``, ``holds``)."""
    group = DeploymentRecord(
        "g",
        "v2",
        (
            (("StartApplication", "/db"),),
            (("StartApplication", "/web"),),
            (("StopApplication", "/old"),),
        ),
        1,
        {"/db": None, "/web": None, "/old": {}},
        {"/db": {}, "/web": {}, "/old": None},
        T0,
        T0,
        group="/",
    )
    canary = replace(_deployment(), id="c", canaries=2)
    promoted = replace(
        _deployment(),
        id="p",
        canaries=2,
        promoted=True,
        steps=((("RestartApplication", "/api"),),),
        targets={"/api": {}},
    )
    deployments = Deployments()
    deployments.update({"g": group, "c": canary, "p": promoted})
    state = cast(Any, SimpleNamespace(deployments=deployments))
    apps = ["/db", "/web", "/old", "/api", "/none"]
    assert waiting_apps(state) == {a for a in apps if waiting(state, a)} == {"/web", "/old"}
    assert holds(state) == {"/web": 2}
    assert [holding(state, a) for a in apps] == [None, 2, None, None, None]
