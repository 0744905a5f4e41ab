"""Maintenance windows on the master: a scheduled machine's node is DRAINING and its
tasks move as a drain's do (each app kept at its minimum), ``down`` kills them and keeps
the agent out, ``up`` returns the node; the schedule survives a new master."""

from __future__ import annotations

import itertools

import pytest

from pallet.control import Control, ControlConfig, TaskGoal
from pallet.control.errors import NodeBusy
from pallet.model import Constraint, NodeState, Operator, ValidationError
from pallet.model.maintenance import MachineId, machines_from_json, schedule_from_json

from .conftest import (
    T0,
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

S = 1_000_000_000


def schedule(*hosts: str, start: float = T0 + 3600) -> dict[str, object]:
    return {
        "windows": [
            {
                "machine_ids": [{"hostname": h} for h in hosts],
                "unavailability": {
                    "start": {"nanoseconds": int(start * S)},
                    "duration": {"nanoseconds": 3600 * S},
                },
            }
        ]
    }


async def _web(control: Control, instances: int) -> None:
    spec = run_spec(instances, constraints=(Constraint("hostname", Operator.UNIQUE),))
    await control.apps.create("/web", definition("/web"), spec)
    await converge(control)
    await run_all(control)
    await control.controller.reconcile()


async def test_a_scheduled_machine_drains_before_its_window(
    control: Control, clock: FakeClock
) -> None:
    await with_nodes(control, 3)
    await _web(control, 2)
    target = app_tasks(control, "/web")[0].node_id
    host = control.state.nodes[target].node.hostname
    await control.nodes.update_schedule(schedule_from_json(schedule(host)))
    # At once, an hour before the window: DRAINING, and nothing new goes there.
    assert control.state.nodes[target].state is NodeState.DRAINING
    assert not control.state.view.active[control.state.view.row[target]]
    # Its task moves as an operator's drain moves it: the replacement first.
    await converge(control)
    tasks = app_tasks(control, "/web")
    assert len(tasks) == 3 and all(t.goal is TaskGoal.RUN for t in tasks)
    await run_all(control)
    await control.controller.reconcile()
    assert [t.node_id for t in app_tasks(control, "/web") if t.goal is TaskGoal.KILL] == [target]
    await confirm_kills(control)
    # The window comes and goes: Mesos changes no mode by itself, nor does Pallet.
    clock.advance(3 * 3600)
    await converge(control)
    assert control.state.nodes[target].state is NodeState.DRAINING
    # Posting a schedule without it puts it back in service.
    await control.nodes.update_schedule(())
    assert control.state.nodes[target].state is NodeState.ACTIVE


async def test_down_kills_its_tasks_keeps_its_agent_out_until_up(control: Control) -> None:
    nodes = await with_nodes(control, 2)
    await _web(control, 1)
    task = app_tasks(control, "/web")[0]
    i = nodes.index(task.node_id)
    host = node(i).hostname
    with pytest.raises(ValidationError, match="not part of a maintenance schedule"):
        await control.nodes.machines_down((MachineId(host),))
    await control.nodes.update_schedule(schedule_from_json(schedule(host)))
    await control.nodes.machines_down(machines_from_json([{"hostname": host}]))
    assert control.state.nodes[task.node_id].state is NodeState.DOWN
    assert task.id not in control.state.tasks  # its agent kills it: not in the desired set
    assert control.state.desired_tasks(task.node_id) == []
    await converge(control)
    assert [t.node_id for t in app_tasks(control, "/web")] == [nodes[1 - i]]
    # A DOWN node is not overdue, and its agent may not register again.
    await control.nodes.check()
    assert control.state.nodes[task.node_id].state is NodeState.DOWN
    with pytest.raises(NodeBusy, match="DOWN for maintenance"):
        await control.nodes.register(node(i), f"http://127.0.0.{i + 1}:5051", "boot-2")
    # Its schedule entry cannot be dropped by a new schedule, only by up.
    with pytest.raises(ValidationError, match="must stay in the schedule"):
        await control.nodes.update_schedule(())
    await control.nodes.machines_up((MachineId(host),))
    assert control.state.maintenance.windows == ()
    await control.nodes.register(node(i), f"http://127.0.0.{i + 1}:5051", "boot-2")
    assert control.state.nodes[task.node_id].state is NodeState.ACTIVE


async def test_a_refused_change_changes_nothing(control: Control) -> None:
    await with_nodes(control, 2)
    before = await control.store.get("/pallet/maintenance")
    # node-0 is 127.0.0.1 by hostname and by IP: two windows for one node
    doc = schedule(node(0).hostname)
    doc["windows"] = [*doc["windows"], {**doc["windows"][0], "machine_ids": [{"ip": "127.0.0.1"}]}]  # type: ignore[index]
    with pytest.raises(ValidationError):
        await control.nodes.update_schedule(schedule_from_json(doc))
    assert await control.store.get("/pallet/maintenance") == before
    assert all(r.state is NodeState.ACTIVE for r in control.state.nodes.values())


async def test_the_schedule_survives_a_new_master(control: Control, clock: FakeClock) -> None:
    await with_nodes(control, 2)
    host0, host1 = node(0).hostname, node(1).hostname
    await control.nodes.update_schedule(schedule_from_json(schedule(host0, host1)))
    await control.nodes.machines_down((MachineId(host1),))
    counter = itertools.count()
    successor = Control(
        control.store,
        ControlConfig(heartbeat_grace=5.0, seed=7),
        clock=clock,
        new_id=lambda: f"b{next(counter)}",
    )
    await successor.load()
    try:
        assert successor.state.maintenance == control.state.maintenance
        # The first agent comes back to the new master: still DRAINING; the second is kept out.
        await successor.nodes.register(node(0), "http://127.0.0.1:5051", "boot")
        assert successor.state.nodes["node-0"].state is NodeState.DRAINING
        with pytest.raises(NodeBusy):
            await successor.nodes.register(node(1), "http://127.0.0.2:5051", "boot")
    finally:
        await successor.stop()


async def test_an_undrain_does_not_end_a_maintenance_window(control: Control) -> None:
    (node_id,) = await with_nodes(control, 1)
    await control.nodes.update_schedule(schedule_from_json(schedule(node(0).hostname)))
    await control.nodes.drain_node(node_id, None)
    await control.nodes.undrain_node(node_id)
    assert control.state.nodes[node_id].state is NodeState.DRAINING
    await control.nodes.update_schedule(())
    assert control.state.nodes[node_id].state is NodeState.ACTIVE


async def test_a_down_node_can_be_removed_and_its_machine_still_keeps_agents_out(
    control: Control,
) -> None:
    (node_id,) = await with_nodes(control, 1)
    host = node(0).hostname
    await control.nodes.update_schedule(schedule_from_json(schedule(host)))
    await control.nodes.machines_down((MachineId(host),))
    await control.nodes.remove_node(node_id)
    assert node_id not in control.state.nodes
    with pytest.raises(NodeBusy):
        await control.nodes.register(node(0), "http://127.0.0.1:5051", "boot")
