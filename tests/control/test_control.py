"""Control end to end in one process: memory store, fake clock, agents played by the test."""

from __future__ import annotations

import pytest

from pallet.control import (
    AppExists,
    AppLocked,
    Control,
    ControlConfig,
    DeploymentChanged,
    NodeNotFound,
    TaskGoal,
    TaskRecord,
    TaskState,
    decision,
    iso,
)
from pallet.control.controller import DUTY, SETTLE
from pallet.control.layout import TASKS
from pallet.control.scheduler import MAX_ROUND_SIZE, ROUND_SIZE
from pallet.model import Constraint, NodeState, Operator, Resources, TaskStatus
from pallet.store import open_store

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

UNIQUE = (Constraint("hostname", Operator.UNIQUE),)


async def test_create_places_instances_and_deployment_finishes(control: Control) -> None:
    await with_nodes(control, 3)
    sub = control.bus.subscribe()
    change = await control.apps.create("/web", definition("/web"), run_spec(3, constraints=UNIQUE))
    assert change.deployment.id in control.state.deployments
    await converge(control)
    tasks = app_tasks(control, "/web")
    assert len(tasks) == 3
    assert len({t.node_id for t in tasks}) == 3  # hostname UNIQUE spreads them
    assert all(t.state is TaskState.STAGING for t in tasks)
    # the agents see their desired sets
    rev, specs = await control.nodes.desired(tasks[0].node_id, 0, 0)
    assert [s.task_id for s in specs] == [tasks[0].id] and rev > 0
    await run_all(control)
    await control.controller.reconcile()
    assert not control.state.deployments
    kinds = []
    while (event := sub._queue.get_nowait() if not sub._queue.empty() else None) is not None:
        if isinstance(event, DeploymentChanged):
            kinds.append(event.kind)
    assert kinds == ["info", "step_success", "success"]


async def test_duplicate_create_is_refused_and_changes_nothing(control: Control) -> None:
    await control.apps.create("/web", definition("/web"), run_spec())
    revision = await control.store.revision()
    with pytest.raises(AppExists):
        await control.apps.create("/web", definition("/web"), run_spec(5))
    assert await control.store.revision() == revision
    assert control.state.apps["/web"].instances == 1


async def test_scale_down_kills_youngest_and_locks_without_force(
    control: Control, clock: FakeClock
) -> None:
    await with_nodes(control, 3)
    await control.apps.create("/web", definition("/web"), run_spec(3))
    await converge(control)
    first, second, third = app_tasks(control, "/web")
    for task in (first, second, third):  # started one second apart
        clock.advance(1)
        await report(control, task.id, TaskState.STARTING)
        await report(control, task.id, TaskState.RUNNING)
    await control.controller.reconcile()
    change = await control.apps.update("/web", definition("/web"), run_spec(1))
    assert change.app is not None and change.app.config_version != change.app.version
    with pytest.raises(AppLocked):
        await control.apps.update("/web", definition("/web"), run_spec(2))
    await control.controller.reconcile()
    goals = {t.id: t.goal for t in app_tasks(control, "/web")}
    assert goals == {first.id: TaskGoal.RUN, second.id: TaskGoal.KILL, third.id: TaskGoal.KILL}
    await confirm_kills(control)
    await control.controller.reconcile()
    assert [t.id for t in app_tasks(control, "/web")] == [first.id]
    assert not control.state.deployments


async def test_failed_task_is_replaced_after_marathons_backoff(
    control: Control, clock: FakeClock
) -> None:
    await with_nodes(control, 1)
    await control.apps.create("/web", definition("/web"), run_spec(1))
    await converge(control)
    await run_all(control)
    (task,) = app_tasks(control, "/web")
    await report(control, task.id, TaskState.FAILED, message="Command exited with status 1")
    assert control.state.backoff["/web"].delay == 1.0
    failure = control.state.backoff["/web"].last_failure
    assert failure is not None and failure["message"] == "Command exited with status 1"
    await converge(control)
    assert app_tasks(control, "/web") == []  # backing off
    assert control.state.queue["/web"].count == 1
    clock.advance(1.0)
    await converge(control)
    (again,) = app_tasks(control, "/web")
    await run_all(control)
    await report(control, again.id, TaskState.FAILED)
    assert control.state.backoff["/web"].delay == pytest.approx(1.15)
    clock.advance(1.1)
    await converge(control)
    assert app_tasks(control, "/web") == []
    clock.advance(0.1)
    await converge(control)
    assert len(app_tasks(control, "/web")) == 1
    # a config change resets the delay
    await control.apps.update(
        "/web", definition("/web", cmd="true"), run_spec(1, cmd="true"), force=True
    )
    assert control.state.backoff["/web"].delay == 0.0


async def test_statuses_are_idempotent_by_seq(control: Control) -> None:
    await with_nodes(control, 1)
    await control.apps.create("/web", definition("/web"), run_spec(1))
    await converge(control)
    (task,) = app_tasks(control, "/web")
    running = TaskStatus(task.id, TaskState.RUNNING, 2)
    starting = TaskStatus(task.id, TaskState.STARTING, 1)
    acks = await control.nodes.statuses(task.node_id, [running, starting, running])
    assert acks == [(task.id, 2), (task.id, 1), (task.id, 2)]
    assert control.state.tasks[task.id].state is TaskState.RUNNING
    assert control.state.tasks[task.id].seq == 2
    # an unknown task is acknowledged too, so the agent stops resending
    assert await control.nodes.statuses(task.node_id, [TaskStatus("x.y", TaskState.KILLED, 3)]) == [
        ("x.y", 3)
    ]
    with pytest.raises(NodeNotFound):
        await control.nodes.statuses("nope", [running])


async def test_lost_node_goes_unreachable_and_its_tasks_are_replaced(
    control: Control, clock: FakeClock
) -> None:
    nodes = await with_nodes(control, 3)
    await control.apps.create("/web", definition("/web"), run_spec(2, constraints=UNIQUE))
    await converge(control)
    await run_all(control)
    lost_task = app_tasks(control, "/web")[0]
    lost = lost_task.node_id
    clock.advance(3)
    for n in nodes:
        if n != lost:
            await control.nodes.heartbeat(n, {})
    clock.advance(3)  # the lost node is 6 s silent, the others 3 s (grace 5 s)
    assert await control.nodes.check() == [lost]
    assert control.state.nodes[lost].state is NodeState.UNREACHABLE
    assert control.state.tasks[lost_task.id].state is TaskState.UNREACHABLE
    await converge(control)
    tasks = app_tasks(control, "/web")
    # replaced at once (strategy 0, 0) but kept, shown UNREACHABLE, while its node is only
    # silent: its process may still run there
    kept = control.state.tasks[lost_task.id]
    assert kept.state is TaskState.UNREACHABLE and kept.replaced
    running = [t for t in tasks if t.id != lost_task.id]
    assert len(running) == 2 and lost not in {t.node_id for t in running}
    # the node returns: ACTIVE again, and its agent no longer has the old task in its set
    await control.nodes.heartbeat(lost, {})
    assert control.state.nodes[lost].state is NodeState.ACTIVE
    _, specs = await control.nodes.desired(lost, 0, 0)
    assert lost_task.id not in {s.task_id for s in specs}


async def _replaced_on_a_lost_node(control: Control, clock: FakeClock) -> TaskRecord:
    """One instance on one of two nodes; that node goes silent, UNREACHABLE, and its task
    is replaced on the other (inactiveAfterSeconds 1). The replaced task."""
    await with_nodes(control, 2)
    run = run_spec(
        1, unreachable_inactive_after_seconds=1.0, unreachable_expunge_after_seconds=3600.0
    )
    await control.apps.create("/web", definition("/web"), run)
    await converge(control)
    await run_all(control)
    (task,) = app_tasks(control, "/web")
    other = next(n for n in control.state.nodes if n != task.node_id)
    clock.advance(4)
    await control.nodes.heartbeat(other, {})
    clock.advance(2)
    await control.nodes.check()
    clock.advance(1)
    await converge(control)
    assert control.state.tasks[task.id].replaced
    return task


async def test_returning_node_kills_replaced_tasks_it_still_runs(
    control: Control, clock: FakeClock
) -> None:
    task = await _replaced_on_a_lost_node(control, clock)
    await control.nodes.heartbeat(task.node_id, {})
    assert control.state.tasks[task.id].goal is TaskGoal.KILL
    assert control.state.tasks[task.id].state is TaskState.RUNNING


async def test_restarted_agent_that_recovered_its_tasks_gets_replaced_ones_killed(
    control: Control, clock: FakeClock
) -> None:
    from .conftest import node

    task = await _replaced_on_a_lost_node(control, clock)
    # The agent comes back by registering again with the same boot id, not by a heartbeat.
    index = sorted(control.state.nodes).index(task.node_id)
    await control.nodes.register(node(index), "http://127.0.0.1:5051", "boot")
    assert control.state.nodes[task.node_id].state is NodeState.ACTIVE
    assert control.state.tasks[task.id].goal is TaskGoal.KILL
    assert control.state.tasks[task.id].state is TaskState.RUNNING


async def test_agent_restart_loses_its_tasks(control: Control) -> None:
    from .conftest import node

    await with_nodes(control, 1)
    await control.apps.create("/web", definition("/web"), run_spec(1))
    await converge(control)
    (task,) = app_tasks(control, "/web")
    await control.nodes.register(node(0), "http://127.0.0.1:5051", "another-boot")
    assert task.id not in control.state.tasks


async def test_applier_never_overcommits_a_stale_plan(control: Control) -> None:
    await with_nodes(control, 1, cpu=1000)
    await control.apps.create("/a", definition("/a"), run_spec(10, resources=Resources(300, 32)))
    await control.controller.reconcile()
    plan_a = control.scheduler.requests()
    assert len(plan_a) == 10
    await converge(control)
    view = control.state.view
    assert int(view.free_cpu.min()) >= 0
    assert len(app_tasks(control, "/a")) == 3  # 3 x 300 of 1000 millicpus
    entry = control.state.queue["/a"]
    assert entry.count == 7 and entry.reasons == (("insufficient cpus", 1),)


async def test_delete_stops_tasks_then_terminates(control: Control) -> None:
    await with_nodes(control, 2)
    await control.apps.create("/web", definition("/web"), run_spec(2))
    await converge(control)
    await run_all(control)
    await control.controller.reconcile()
    change = await control.apps.delete("/web")
    assert "/web" not in control.state.apps
    await control.controller.reconcile()
    assert all(t.goal is TaskGoal.KILL for t in app_tasks(control, "/web"))
    assert change.deployment.id in control.state.deployments
    await confirm_kills(control)
    await control.controller.reconcile()
    assert not control.state.deployments and not control.state.tasks


async def test_state_survives_a_master_restart(clock: FakeClock, tmp_path) -> None:
    url = f"sqlite:///{tmp_path}/state.db"
    store = await open_store(url, clock=clock, expiry_interval=None)
    first = Control(store, ControlConfig(seed=1), clock=clock)
    await first.load()
    await with_nodes(first, 2)
    await first.apps.create("/web", definition("/web"), run_spec(2))
    await converge(first)
    await run_all(first)
    tasks = {t.id: t for t in first.state.tasks.values()}
    await store.close()
    store = await open_store(url, clock=clock, expiry_interval=None)
    second = Control(store, ControlConfig(seed=1), clock=clock)
    await second.load()
    assert second.state.tasks == tasks
    assert set(second.state.apps) == {"/web"}
    assert second.state.view.free_cpu.tolist() == first.state.view.free_cpu.tolist()
    await converge(second)
    assert second.state.tasks == tasks  # nothing to do: already converged
    await store.close()


async def test_nodes_from_the_store_get_tasks_only_once_heard_again(
    clock: FakeClock, tmp_path
) -> None:
    # After a master restart the stored nodes may be gone (a stopped `pallet up` with
    # more agents): nothing is placed on one until its agent registers or heartbeats,
    # and one that never does goes UNREACHABLE after the grace period.
    url = f"sqlite:///{tmp_path}/state.db"
    store = await open_store(url, clock=clock, expiry_interval=None)
    first = Control(store, ControlConfig(seed=1), clock=clock)
    await first.load()
    a, b = await with_nodes(first, 2)
    await store.close()
    store = await open_store(url, clock=clock, expiry_interval=None)
    second = Control(store, ControlConfig(seed=1, heartbeat_grace=5.0), clock=clock)
    await second.load()
    assert second.state.recovering == {a, b}
    await second.apps.create("/web", definition("/web"), run_spec(2))
    await converge(second)
    assert app_tasks(second, "/web") == []
    assert second.state.queue["/web"].count == 2
    await second.nodes.heartbeat(a, {})
    await converge(second)
    assert {t.node_id for t in app_tasks(second, "/web")} == {a}
    await second.nodes.check()  # starts b's grace period
    clock.advance(6.0)
    await second.nodes.heartbeat(a, {})
    assert await second.nodes.check() == [b]
    assert second.state.nodes[b].state is NodeState.UNREACHABLE
    await second.nodes.heartbeat(b, {})  # it came back after all
    assert second.state.nodes[b].state is NodeState.ACTIVE
    assert second.state.recovering == set()
    assert second.state.view.active.all()
    await store.close()


@pytest.mark.parametrize(
    ("epoch", "text"),
    [
        (0.0, "1970-01-01T00:00:00.000Z"),
        (1_700_000_000.1234, "2023-11-14T22:13:20.123Z"),
        (-62_135_596_800.0, "0001-01-01T00:00:00.000Z"),  # four-digit year, as ISO 8601 has it
    ],
)
def test_version_text_is_marathons_iso_form(epoch: float, text: str) -> None:
    assert iso(epoch) == text


@pytest.mark.parametrize("limit", [None, 128])
async def test_a_mass_exit_of_many_apps_is_recorded_and_replaced(
    control: Control, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, limit: int | None
) -> None:
    # 150 single-instance apps on one node whose processes all die at once: one status
    # batch with 150 task ends and 150 backoff records. It needed more than the store's
    # 128 operations per transaction, so it was refused forever and nothing was replaced.
    # With a limit of 128 (etcd's default) the batch is applied as several whole
    # decisions.
    if limit is not None:
        monkeypatch.setattr(decision, "MAX_TXN_OPS", limit)
    (node_id,) = await with_nodes(control, 1, cpu=64000, mem=64000)
    for i in range(150):
        await control.apps.create(f"/a{i}", definition(f"/a{i}"), run_spec(1))
    await converge(control)
    await run_all(control)
    tasks = list(control.state.tasks.values())
    assert len(tasks) == 150
    batch = [TaskStatus(t.id, TaskState.FAILED, t.seq + 1, message="killed -9") for t in tasks]
    transactions = control.applier.transactions
    acks = await control.nodes.statuses(node_id, batch)
    assert len(acks) == 150
    assert control.applier.transactions - transactions == (1 if limit is None else 3)
    assert not any(t.id in control.state.tasks for t in tasks)  # every end recorded
    assert all(control.state.backoff[f"/a{i}"].last_failure for i in range(150))
    clock.advance(10)  # past the first backoff delay
    await converge(control)
    assert len(control.state.tasks) == 150  # each replaced


async def test_a_large_plan_is_written_in_one_transaction(control: Control) -> None:
    # 200 placements (one scheduling round): one decision, one transaction (each commit
    # wakes every agent's long-poll).
    await with_nodes(control, 4, cpu=64000, mem=64000)
    await control.apps.create("/many", definition("/many"), run_spec(200))
    await control.controller.reconcile()
    before = await control.store.revision()
    await control.scheduler.run_once()
    assert await control.store.revision() - before == 1
    stored, _ = await control.store.list(TASKS)
    assert len(stored) == len(control.state.tasks) == 200


async def test_the_controller_rests_in_proportion_to_its_last_pass(control: Control) -> None:
    # A pass walks every app and task: a long one is followed by a longer rest, so kicked
    # passes never take more than about a quarter of the loop, up to the periodic tick.
    controller = control.controller
    assert controller.rest_after(0.001) == SETTLE
    assert controller.rest_after(0.1) == pytest.approx(DUTY * 0.1)
    assert controller.rest_after(60.0) == controller.interval


async def test_placed_instances_leave_the_queue_before_the_next_pass(control: Control) -> None:
    # The scheduler's next round must not ask again for what it just placed (the
    # applier would drop those placements whole while the controller rests).
    await with_nodes(control, 3)
    await control.apps.create("/q", definition("/q"), run_spec(5))
    await control.controller.reconcile()
    assert control.state.queue["/q"].count == 5
    await control.scheduler.run_once()
    assert len(app_tasks(control, "/q")) == 5
    assert control.state.queue["/q"].count == 0
    assert await control.scheduler.run_once() is None  # nothing left to ask for


async def test_full_rounds_grow_and_a_short_one_starts_again(control: Control) -> None:
    # A round copies the view and commits once whatever its size: while rounds come back
    # full, each asks for twice as many (up to MAX_ROUND_SIZE); the first stays small so
    # the first tasks start while the rest are placed.
    await with_nodes(control, 8, cpu=640_000, mem=640_000)
    await control.apps.create("/big", definition("/big"), run_spec(ROUND_SIZE * 7 + 5))
    await control.controller.reconcile()
    sizes = []
    while (plan := await control.scheduler.run_once()) is not None:
        sizes.append(len(plan.placements))
    assert sizes == [ROUND_SIZE, 2 * ROUND_SIZE, 4 * ROUND_SIZE, 5]
    assert control.scheduler.round_size == ROUND_SIZE
    assert len(app_tasks(control, "/big")) == ROUND_SIZE * 7 + 5
    assert MAX_ROUND_SIZE >= 4 * ROUND_SIZE
