"""The app controller's incremental passes: a kicked pass looks only at the apps whose
decision may have changed (``ClusterState.dirty``, the index of due times), and decides
for them what a pass over every app would (issue 16)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from pallet.control import Control, TaskState
from pallet.control.controller import (
    PassPlan,
    decide_finish_deployments,
    decide_watch_deployments,
)
from pallet.control.decision import Decision
from pallet.control.groups import AppChange
from pallet.control.records import DeploymentRecord
from pallet.model import Constraint, Operator
from pallet.model.clock import FakeClock

from .conftest import converge, definition, report, run_all, run_spec, with_nodes

pytestmark = pytest.mark.anyio

UNIQUE = (Constraint("hostname", Operator.UNIQUE),)


async def settled(ctl: Control) -> None:
    """Running tasks and a full pass: nothing left dirty, nothing for a pass to do."""
    await converge(ctl)
    await run_all(ctl)
    await ctl.controller.reconcile(full=True)
    await ctl.controller.reconcile(full=False)  # (the deployments it finished)
    assert not ctl.state.dirty


async def kicked(ctl: Control) -> PassPlan:
    """What the next kicked (incremental) pass decides; then that pass."""
    plan = ctl.controller.plan(ctl.clock(), full=False)
    await ctl.controller.reconcile(full=False)
    return plan


def waiting(ctl: Control, app_id: str) -> int:
    entry = ctl.state.queue.get(app_id)
    return 0 if entry is None else entry.count


async def test_a_task_status_alone_gets_its_app_looked_at(control: Control) -> None:
    await with_nodes(control)
    await control.apps.create("/web", definition("/web"), run_spec(2))
    await control.apps.create("/other", definition("/other"), run_spec(1))
    await settled(control)
    task = next(iter(control.state.app_tasks("/web")))
    await report(control, task.id, TaskState.FAILED)
    plan = await kicked(control)
    assert set(plan.queue) == {"/web"}  # only the app that changed
    assert waiting(control, "/web") == 1
    assert waiting(control, "/other") == 0


async def test_an_untouched_app_keeps_its_queue_entry(control: Control) -> None:
    await with_nodes(control, count=2)
    await control.apps.create("/web", definition("/web"), run_spec(3, constraints=UNIQUE))
    await control.apps.create("/other", definition("/other"), run_spec(1))
    await settled(control)
    assert waiting(control, "/web") == 1  # no third host
    await control.apps.update("/other", definition("/other"), run_spec(2))
    plan = await kicked(control)
    assert "/web" not in plan.queue
    assert waiting(control, "/web") == 1
    assert waiting(control, "/other") == 1


async def test_a_deleted_apps_tasks_are_killed_by_a_kicked_pass(control: Control) -> None:
    await with_nodes(control)
    await control.apps.create("/web", definition("/web"), run_spec(2))
    await settled(control)
    await control.apps.delete("/web", force=True)
    plan = await kicked(control)
    assert sorted(plan.kill) == sorted(t.id for t in control.state.app_tasks("/web"))
    assert all(t.goal.value == "kill" for t in control.state.app_tasks("/web"))


async def test_a_pass_that_fails_to_store_is_followed_by_a_full_one(
    control: Control, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The failed pass had taken its apps off the dirty set: the retry must look at every
    # app, or what it decided waits for the next safety-net pass (30 s).
    await with_nodes(control)
    await control.apps.create("/web", definition("/web"), run_spec(2))
    await settled(control)
    await control.apps.delete("/web", force=True)
    kill = control.applier.kill_locked

    async def store_down(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the store is away")

    monkeypatch.setattr(control.applier, "kill_locked", store_down)
    with pytest.raises(RuntimeError):
        await control.controller.reconcile()
    assert not control.state.dirty
    monkeypatch.setattr(control.applier, "kill_locked", kill)
    await control.controller.reconcile()  # the retry, as the loop makes it
    assert all(t.goal.value == "kill" for t in control.state.app_tasks("/web"))


async def test_a_launch_delay_reset_reaches_the_queue(control: Control, clock: FakeClock) -> None:
    await with_nodes(control)
    await control.apps.create("/web", definition("/web"), run_spec(1, backoff_seconds=60.0))
    await settled(control)
    task = next(iter(control.state.app_tasks("/web")))
    await report(control, task.id, TaskState.FAILED)
    await kicked(control)
    assert control.state.queue["/web"].launch_after > clock()
    await control.apps.reset_delay("/web")
    await kicked(control)
    assert control.state.queue["/web"].launch_after <= clock()


async def test_a_drained_node_moves_its_tasks_on_a_kicked_pass(control: Control) -> None:
    nodes = await with_nodes(control)
    await control.apps.create("/web", definition("/web"), run_spec(3, constraints=UNIQUE))
    await with_nodes(control, count=4)  # a fourth host to move to
    await settled(control)
    await control.nodes.drain_node(nodes[0], None)
    await kicked(control)
    assert waiting(control, "/web") == 1  # the drained node's task is replaced elsewhere


async def test_a_deployment_that_holds_an_app_back_reaches_the_queue(control: Control) -> None:
    await with_nodes(control)
    await control.apps.create("/web", definition("/web"), run_spec(1))
    await settled(control)
    await control.apps.update("/web", definition("/web"), run_spec(2), force=True)
    await kicked(control)
    assert waiting(control, "/web") == 1
    # A later step of a group's deployment leaves the app as it is (applied directly,
    # as a group's deployment would be stored).
    d = DeploymentRecord(
        id="d-group",
        version="v",
        steps=((("StartApplication", "/db"),), (("ScaleApplication", "/web"),)),
        current_step=1,
        originals={"/db": None, "/web": None},
        targets={"/db": None, "/web": None},
        started_at=0.0,
        progress_at=0.0,
    )
    async with control.applier.lock:
        await control.applier.apply(Decision(deployments=(d,)))
    await kicked(control)
    assert "/web" not in control.state.queue


async def test_a_stuck_app_is_looked_at_after_a_scheduling_round(control: Control) -> None:
    await with_nodes(control, count=2)
    await control.apps.create("/web", definition("/web"), run_spec(2, constraints=UNIQUE))
    await settled(control)
    new = run_spec(2, cmd="sleep 900", constraints=UNIQUE)
    await control.apps.update("/web", definition("/web", cmd="sleep 900"), new)
    await kicked(control)
    await control.scheduler.run_once()  # no room for a new task: stuck
    assert "/web" in control.state.dirty
    plan = await kicked(control)
    assert len(plan.kill) == 1  # one old task goes to make room


async def test_an_unreachable_task_is_replaced_on_time_without_a_change(
    control: Control, clock: FakeClock
) -> None:
    nodes = await with_nodes(control)
    run = run_spec(1, unreachable_inactive_after_seconds=10.0, unreachable_expunge_after_seconds=20)
    await control.apps.create("/web", definition("/web"), run)
    await settled(control)
    task = next(iter(control.state.app_tasks("/web")))
    await control.applier.node_unreachable(task.node_id)
    await kicked(control)
    assert waiting(control, "/web") == 0
    clock.advance(11)
    plan = await kicked(control)  # nothing changed: the index of due times has it
    assert plan.replaced == [task.id]
    assert waiting(control, "/web") == 1
    assert nodes  # (three nodes: room elsewhere)


async def test_a_maintenance_change_makes_the_next_pass_full(control: Control) -> None:
    await with_nodes(control)
    await settled(control)
    await control.nodes.machines_down(())
    assert control.state.dirty_all
    await control.controller.reconcile()
    assert not control.state.dirty_all


# ------------------------------------------------------------ incremental == full


def _queue(ctl: Control, plan: PassPlan | None = None) -> dict[str, tuple[int, float]]:
    out = {a: (e.count, e.launch_after) for a, e in ctl.state.queue.items()}
    for app_id, waiting in (plan.queue if plan is not None else {}).items():
        if waiting is None:
            out.pop(app_id, None)
        else:
            out[app_id] = waiting
    return out


def _due(ctl: Control, plan: PassPlan) -> dict[str, float]:
    out = dict(ctl.controller._due)
    for app_id, at in plan.due.items():
        if at is None:
            out.pop(app_id, None)
        else:
            out[app_id] = at
    return out


def _by_id(deployments: tuple[DeploymentRecord, ...]) -> dict[str, DeploymentRecord]:
    return {d.id: d for d in deployments}


def _same(ctl: Control) -> None:
    now = ctl.clock()
    drained = {n for n, r in ctl.state.nodes.items() if r.drain is not None}
    assert ctl.state.drained == drained  # what drain_moves walks
    inc = ctl.controller.plan(now, full=False)
    full = ctl.controller.plan(now, full=True)
    assert sorted(inc.kill) == sorted(full.kill)
    assert sorted(inc.replaced) == sorted(full.replaced)
    assert sorted(inc.expunge) == sorted(full.expunge)
    assert _queue(ctl, inc) == {a: w for a, w in full.queue.items() if w is not None}
    assert _due(ctl, inc) == {a: at for a, at in full.due.items() if at is not None}
    assert full.deployments is None and inc.deployments is not None
    finish = decide_finish_deployments(ctl.state, now, inc.deployments)
    finish_all = decide_finish_deployments(ctl.state, now)
    assert set(finish.dropped_deployments) == set(finish_all.dropped_deployments)
    assert _by_id(finish.deployments) == _by_id(finish_all.deployments)
    assert sorted(map(repr, finish.ops)) == sorted(map(repr, finish_all.ops))
    (watched, rollbacks) = decide_watch_deployments(ctl.state, now, inc.deployments)
    (watched_all, rollbacks_all) = decide_watch_deployments(ctl.state, now)
    assert set(watched.dropped_deployments) == set(watched_all.dropped_deployments)
    assert _by_id(watched.deployments) == _by_id(watched_all.deployments)
    assert sorted(rollbacks) == sorted(rollbacks_all)


async def _step(ctl: Control, rng: random.Random, clock: FakeClock, nodes: list[str]) -> None:
    apps = sorted(ctl.state.apps)
    tasks = sorted(ctl.state.tasks)
    op = rng.randrange(14)
    if op == 0 or not apps:
        app_id = f"/a{rng.randrange(12)}"
        if app_id not in ctl.state.apps:
            run: dict[str, Any] = {
                "unreachable_inactive_after_seconds": rng.choice([None, 5.0, 30.0]),
                "unreachable_expunge_after_seconds": rng.choice([10.0, 60.0]),
                "backoff_seconds": rng.choice([1.0, 20.0]),
            }
            if rng.random() < 0.3:
                run["constraints"] = UNIQUE
            if rng.random() < 0.2:
                run["canary_instances"] = 1
                run["auto_promote_after_seconds"] = rng.choice([None, 5.0])
            if rng.random() < 0.3:
                run["progress_deadline_seconds"] = 10.0
                run["auto_rollback"] = rng.random() < 0.5
            await ctl.apps.create(app_id, definition(app_id), run_spec(rng.randrange(4), **run))
    elif op == 1:
        app = ctl.state.apps[rng.choice(apps)]
        run = run_spec(rng.randrange(5), **{
            k: getattr(app.run, k)
            for k in ("constraints", "canary_instances", "backoff_seconds",
                      "unreachable_inactive_after_seconds", "unreachable_expunge_after_seconds",
                      "auto_promote_after_seconds", "progress_deadline_seconds", "auto_rollback")
        })  # fmt: skip
        await ctl.apps.update(app.id, app.definition, run, force=True)
    elif op == 2:
        app = ctl.state.apps[rng.choice(apps)]
        cmd = f"sleep {rng.randrange(1000)}"
        await ctl.apps.update(app.id, definition(app.id, cmd=cmd), app.run, force=True)
    elif op == 3:
        await ctl.apps.delete(rng.choice(apps), force=True)
    elif op in (4, 5, 6) and tasks:
        task = ctl.state.tasks[rng.choice(tasks)]
        if task.state.is_terminal or task.state is TaskState.UNREACHABLE:
            return
        nxt = {
            TaskState.STAGING: [TaskState.STARTING, TaskState.FAILED],
            TaskState.STARTING: [TaskState.RUNNING, TaskState.FAILED],
            TaskState.RUNNING: [TaskState.FAILED, TaskState.FINISHED, TaskState.KILLED],
        }.get(task.state, [TaskState.KILLED])
        await report(ctl, task.id, rng.choice(nxt))
    elif op == 7:
        await ctl.scheduler.run_once()
    elif op == 8:
        node_id = rng.choice(nodes)
        state = ctl.state.nodes[node_id].state.value
        if state == "unreachable":
            await ctl.applier.node_returned(node_id)
        elif rng.random() < 0.5:
            await ctl.applier.node_unreachable(node_id)
    elif op == 9:
        node_id = rng.choice(nodes)
        if ctl.state.nodes[node_id].drain is None:
            await ctl.nodes.drain_node(node_id, rng.choice([None, 5.0]))
        else:
            await ctl.nodes.undrain_node(node_id)
    elif op == 10:
        clock.advance(rng.choice([0.5, 3.0, 8.0, 25.0]))
    elif op == 11:
        await ctl.apps.reset_delay(rng.choice(apps))
    elif op == 12:
        deps = rng.random() < 0.7
        changes = [
            AppChange("/g/db", definition("/g/db"), run_spec(rng.randrange(3))),
            AppChange(
                "/g/web",
                definition("/g/web", dependencies=["/g/db"] if deps else []),
                run_spec(rng.randrange(3), dependencies=("/g/db",) if deps else ()),
            ),
        ]
        await ctl.groups.change("/g", changes, {}, force=True)
    else:
        for deployment in list(ctl.state.deployments.values()):
            if deployment.holding is not None and rng.random() < 0.5:
                await ctl.apps.promote(deployment.id)


@pytest.mark.parametrize("seed", range(6))
async def test_incremental_passes_decide_what_a_full_pass_would(
    control: Control, clock: FakeClock, seed: int
) -> None:
    rng = random.Random(seed)
    nodes = await with_nodes(control, count=4)
    await control.controller.reconcile(full=True)
    for _ in range(160):
        for _ in range(rng.randrange(1, 4)):
            try:
                await _step(control, rng, clock, nodes)
            except Exception as e:  # refused by the API (locked app, ...): a no-op
                if type(e).__module__.startswith("pallet"):
                    continue
                raise
        _same(control)
        await control.controller.reconcile(full=False)


async def test_more_deployments_end_at_once_than_one_transaction_holds(control: Control) -> None:
    # 2,100 apps of no instance created between two passes: their deployments end in the
    # same pass, 4,200 operations, more than a transaction takes (they end in parts).
    for i in range(2100):
        await control.apps.create(f"/many/a{i:04d}", definition(f"/many/a{i:04d}"), run_spec(0))
    assert len(control.state.deployments) == 2100
    await control.controller.reconcile()
    assert not control.state.deployments
    assert all(a.stable_version == a.version for a in control.state.apps.values())
