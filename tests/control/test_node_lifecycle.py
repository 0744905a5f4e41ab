"""A node's life after registration: drained by an operator (tasks move, each app kept at
its minimum; the drain outlives agent restarts), undrained, gone after a long silence,
removed once down or drained."""

from __future__ import annotations

import asyncio

import pytest

from pallet.control import Control, NodeNotFound, TaskGoal, TaskState
from pallet.control.applier_nodes import drain_moves
from pallet.control.errors import NodeBusy
from pallet.control.records import NodeRecord
from pallet.model import Constraint, NodeState, Operator

from .conftest import (
    FakeClock,
    app_tasks,
    confirm_kills,
    converge,
    definition,
    node,
    run_all,
    run_spec,
    with_nodes,
)

pytestmark = pytest.mark.anyio

UNIQUE = (Constraint("hostname", Operator.UNIQUE),)


async def _running_app(control: Control, instances: int = 2) -> list[str]:
    spec = run_spec(instances, constraints=UNIQUE)  # one per node
    await control.apps.create("/web", definition("/web"), spec)
    await converge(control)
    await run_all(control)
    await control.controller.reconcile()
    return [t.id for t in app_tasks(control, "/web")]


def _ready(control: Control) -> int:
    return sum(1 for t in app_tasks(control, "/web") if t.ready and t.goal is TaskGoal.RUN)


async def test_a_drain_moves_tasks_without_dropping_below_the_minimum(control: Control) -> None:
    nodes = await with_nodes(control, 3)
    await _running_app(control, 2)
    drained = app_tasks(control, "/web")[0].node_id
    await control.nodes.drain_node(drained, None)
    assert control.state.nodes[drained].state is NodeState.DRAINING
    # minimumHealthCapacity 1.0 (Marathon's default): a replacement starts elsewhere
    # while both instances still run; only once it is ready does the old one go.
    await converge(control)
    tasks = app_tasks(control, "/web")
    assert len(tasks) == 3 and all(t.goal is TaskGoal.RUN for t in tasks)
    assert tasks[-1].node_id != drained
    assert _ready(control) == 2
    await run_all(control)
    await control.controller.reconcile()
    killed = [t for t in app_tasks(control, "/web") if t.goal is TaskGoal.KILL]
    assert [t.node_id for t in killed] == [drained]
    assert _ready(control) == 2
    await confirm_kills(control)
    await converge(control)
    left = app_tasks(control, "/web")
    assert len(left) == 2 and drained not in {t.node_id for t in left}
    assert len(nodes) == 3


async def test_the_deadline_kills_what_has_not_moved(control: Control, clock: FakeClock) -> None:
    await with_nodes(control, 1)
    await _running_app(control, 1)
    only = app_tasks(control, "/web")[0]
    await control.nodes.drain_node(only.node_id, 30.0)
    await converge(control)  # nowhere else to go: the task stays until the deadline
    assert control.state.tasks[only.id].goal is TaskGoal.RUN
    assert drain_moves(control.state, clock.now).overdue == ()
    clock.advance(31)
    await control.controller.reconcile()
    assert control.state.tasks[only.id].goal is TaskGoal.KILL


async def test_a_drain_holds_across_agent_restarts_until_undrained(control: Control) -> None:
    (node_id,) = await with_nodes(control, 1)
    await control.nodes.drain_node(node_id, None)
    # The agent restarts (same boot id: recovered its tasks) and registers again.
    await control.nodes.register(node(0), "http://127.0.0.1:5051", "boot")
    assert control.state.nodes[node_id].state is NodeState.DRAINING
    # ... and a new agent run (new boot id) too.
    await control.nodes.register(node(0), "http://127.0.0.1:5051", "boot-2")
    assert control.state.nodes[node_id].state is NodeState.DRAINING
    stored = await control.store.get(f"/pallet/nodes/{node_id}")
    assert stored is not None and b'"drain"' in stored.value
    await control.nodes.undrain_node(node_id)
    assert control.state.nodes[node_id].state is NodeState.ACTIVE
    assert control.state.nodes[node_id].drain is None
    await _running_app(control, 1)
    assert app_tasks(control, "/web")[0].node_id == node_id


async def test_a_silent_draining_node_becomes_unreachable(
    control: Control, clock: FakeClock
) -> None:
    (node_id,) = await with_nodes(control, 1)
    await control.nodes.drain(node_id)  # the agent said it is leaving
    clock.advance(6)  # past the 5 s grace
    assert await control.nodes.check() == [node_id]
    assert control.state.nodes[node_id].state is NodeState.UNREACHABLE


async def test_a_long_silence_makes_a_node_gone_and_its_tasks_are_replaced(
    control: Control, clock: FakeClock
) -> None:
    nodes = await with_nodes(control, 2)
    await _running_app(control, 1)
    lost = app_tasks(control, "/web")[0]
    clock.advance(6)
    await control.nodes.heartbeat(next(n for n in nodes if n != lost.node_id), {})
    await control.nodes.check()
    assert control.state.nodes[lost.node_id].state is NodeState.UNREACHABLE
    clock.advance(600)
    await control.nodes.heartbeat(next(n for n in nodes if n != lost.node_id), {})
    await control.nodes.check()
    assert control.state.nodes[lost.node_id].state is NodeState.GONE
    assert lost.id not in control.state.tasks
    assert not control.state.view.active[control.state.view.row[lost.node_id]]
    await converge(control)
    assert [t.node_id for t in app_tasks(control, "/web")] != [lost.node_id]
    # Its agent heartbeats: unknown, so it registers again and is ACTIVE.
    with pytest.raises(NodeNotFound):
        await control.nodes.heartbeat(lost.node_id, {})
    await control.nodes.register(node(nodes.index(lost.node_id)), "http://x:5051", "boot")
    assert control.state.nodes[lost.node_id].state is NodeState.ACTIVE


async def test_only_a_node_that_is_down_or_drained_can_be_removed(
    control: Control, clock: FakeClock
) -> None:
    nodes = await with_nodes(control, 2)
    await _running_app(control, 1)
    busy = app_tasks(control, "/web")[0].node_id
    revision = await control.store.revision()
    with pytest.raises(NodeBusy, match="is ACTIVE; drain it first"):
        await control.nodes.remove_node(busy)
    await control.nodes.drain_node(busy, None)
    with pytest.raises(NodeBusy, match="still runs 1 task"):
        await control.nodes.remove_node(busy)
    assert busy in control.state.nodes
    with pytest.raises(NodeNotFound):
        await control.nodes.remove_node("node-none")
    assert await control.store.revision() == revision + 1  # the drain alone
    # Down: silent past the grace, it can go, with its (unreachable) task.
    other = next(n for n in nodes if n != busy)
    clock.advance(6)
    await control.nodes.heartbeat(other, {})
    await control.nodes.check()
    record: NodeRecord = await control.nodes.remove_node(busy)
    assert record.state is NodeState.UNREACHABLE
    assert busy not in control.state.nodes and busy not in control.state.view.row
    assert not [t for t in control.state.tasks.values() if t.node_id == busy]
    assert await control.store.get(f"/pallet/nodes/{busy}") is None
    await converge(control)
    assert {t.node_id for t in app_tasks(control, "/web")} == {other}
    assert all(t.state is not TaskState.UNREACHABLE for t in app_tasks(control, "/web"))


async def test_the_heartbeat_interval_grows_with_the_cluster_and_the_grace_with_it(
    control: Control, clock: FakeClock
) -> None:
    # Nomad's rule: at most max_heartbeats_per_second beats a second from all agents.
    control.nodes.max_heartbeats_per_second = 2.0
    nodes = await with_nodes(control, 40)
    assert control.nodes.interval() == 20.0
    told = control.nodes.grant(nodes[0])
    assert told == 20.0 and control.state.liveness[nodes[0]].interval == 20.0
    clock.advance(24)  # within 5 s of grace past the 20 s it was told
    await control.nodes.heartbeat(nodes[0], {})
    clock.advance(24)
    lost = await control.nodes.check()
    # Every other node was told nothing (the agent's own interval): overdue after 5 s.
    assert nodes[0] not in lost and len(lost) == 39
    clock.advance(2)  # 26 s since its beat: past 20 + 5
    assert await control.nodes.check() == [nodes[0]]
    control.nodes.max_heartbeats_per_second = None  # no bound: the agents' own interval
    assert control.nodes.interval() == 0.0


async def test_a_long_poll_may_wait_the_heartbeat_interval_between_30_and_300_s(
    control: Control,
) -> None:
    # Idle polls end by their timeout: bounded per second as heartbeats are, by waiting
    # as long as the interval (the poll counts as the agent's word within it).
    control.nodes.max_heartbeats_per_second = None
    assert control.nodes.poll_wait() == 30.0
    await with_nodes(control, 40)
    control.nodes.max_heartbeats_per_second = 2.0  # interval 20 s
    assert control.nodes.poll_wait() == 30.0
    control.nodes.max_heartbeats_per_second = 0.2  # 200 s
    assert control.nodes.poll_wait() == 200.0
    control.nodes.max_heartbeats_per_second = 0.02  # 2,000 s
    assert control.nodes.poll_wait() == 300.0


async def test_the_monitor_walks_the_nodes_less_often_as_the_interval_grows(
    control: Control,
) -> None:
    # A pass walks every node: every second while the agents beat at their own pace,
    # then every sixteenth of the interval they are given (at most every 15 s).
    control.nodes.max_heartbeats_per_second = 2.0
    await with_nodes(control, 4)
    assert control.nodes.check_period() == 1.0  # interval 2 s: a second still
    await with_nodes(control, 64)  # re-registers the first 4 and adds 60
    assert control.nodes.interval() == 32.0
    assert control.nodes.check_period() == 2.0
    control.nodes.max_heartbeats_per_second = 0.01
    assert control.nodes.check_period() == 15.0
    control.nodes.max_heartbeats_per_second = None
    assert control.nodes.check_period() == 1.0


async def test_a_long_poll_ends_on_a_change_or_its_timeout_and_leaves_nothing_waiting(
    control: Control,
) -> None:
    (node_id,) = await with_nodes(control, 1)
    state = control.state
    revision = state.desired_revision[node_id]
    # By its timeout: nothing of it is left behind.
    assert await control.nodes.desired(node_id, revision, 0.01) == (revision, [])
    assert node_id not in state._desired_changed
    # Two polls of one node, woken by one change.
    polls = [asyncio.create_task(control.nodes.desired(node_id, revision, 30.0)) for _ in range(2)]
    await asyncio.sleep(0)
    assert len(state._desired_changed[node_id]) == 2
    await control.apps.create("/one", definition("/one"), run_spec(1))
    await converge(control)
    done = await asyncio.wait_for(asyncio.gather(*polls), 10.0)
    assert all(r > revision and len(tasks) == 1 for r, tasks in done)
    assert node_id not in state._desired_changed
    # A poll whose client went away (cancelled) is forgotten too.
    later = state.desired_revision[node_id]
    gone = asyncio.create_task(control.nodes.desired(node_id, later, 30.0))
    await asyncio.sleep(0)
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert node_id not in state._desired_changed
