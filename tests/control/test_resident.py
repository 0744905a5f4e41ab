"""Resident apps (local persistent volumes) in control: slots reserved with the first
placement, relaunches pinned to the slot's node with the same volumes, disk counted
whether a task runs or not, slots kept on scale-down and destroyed with the app."""

from __future__ import annotations

from typing import Any

import pytest

from pallet.control import Control, ControlConfig, RunSpec, TaskState
from pallet.core.fit import PINNED
from pallet.model import Constraint, Operator, PersistentVolume, Resources
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

DATA = (PersistentVolume("data", 600),)


def resident(instances: int = 1, **changes: Any) -> RunSpec:
    changes.setdefault("unreachable_inactive_after_seconds", None)
    changes.setdefault("maximum_over_capacity", 0.0)
    changes.setdefault("minimum_health_capacity", 0.5)
    changes.setdefault("persistent", DATA)
    return run_spec(instances, **changes)


async def test_a_failed_resident_task_comes_back_on_its_node_with_its_volume(
    control: Control, clock: FakeClock
) -> None:
    await with_nodes(control, 3)
    await control.apps.create("/db", definition("/db"), resident())
    await converge(control)
    await run_all(control)
    (task,) = app_tasks(control, "/db")
    (slot,) = control.state.reservations.values()
    assert task.reservation == slot.id and slot.node_id == task.node_id
    (volume,) = task.launch.persistent_volumes
    assert volume.container_path == "data" and volume.size == 600
    assert volume.id == f"db#data#{slot.id}"
    # The agent is told which volumes the master reserves on its node.
    assert control.state.node_volumes(task.node_id) == (volume.id,)
    # The slot's disk is held on the node (the task's own disk is 0 here).
    row = control.state.view.row[task.node_id]
    assert control.state.view.free_disk[row] == 1000 - 600
    for _ in range(4):
        await report(control, task.id, TaskState.FAILED, message="crashed")
        clock.advance(400)  # past any backoff
        await converge(control)
        (again,) = app_tasks(control, "/db")
        assert again.id != task.id
        assert again.node_id == slot.node_id
        assert again.launch.persistent_volumes == (volume,)
        assert again.reservation == slot.id
        await run_all(control)
        task = again
    assert list(control.state.reservations) == [slot.id]
    # While no task runs, the slot still holds its disk.
    await report(control, task.id, TaskState.FAILED)
    assert not app_tasks(control, "/db")
    assert control.state.view.free_disk[row] == 1000 - 600


async def test_slot_disk_is_placed_like_any_resource(control: Control) -> None:
    await with_nodes(control, 2)
    # 600 MiB volumes on 1000 MiB nodes: one slot per node, a third instance waits.
    await control.apps.create("/db", definition("/db"), resident(3))
    await converge(control)
    tasks = app_tasks(control, "/db")
    assert len(tasks) == 2 and len({t.node_id for t in tasks}) == 2
    assert len(control.state.reservations) == 2
    entry = control.state.queue["/db"]
    assert entry.count == 1 and dict(entry.reasons) == {"insufficient disk": 2}


async def test_a_pinned_relaunch_waits_for_its_node(control: Control, clock: FakeClock) -> None:
    await with_nodes(control, 2)
    await control.apps.create("/db", definition("/db"), resident())
    await converge(control)
    await run_all(control)
    (task,) = app_tasks(control, "/db")
    # While it backs off after a failure, another app fills its node: it waits there,
    # though the other node has room.
    await report(control, task.id, TaskState.FAILED)
    here = (Constraint("hostname", Operator.IS, task.host),)
    big = run_spec(1, resources=Resources(1950, 32, 0, 0), constraints=here)
    await control.apps.create("/big", definition("/big"), big)
    await converge(control)
    (hog,) = app_tasks(control, "/big")
    assert hog.node_id == task.node_id
    clock.advance(400)
    await converge(control)
    assert not app_tasks(control, "/db")
    assert dict(control.state.queue["/db"].reasons) == {PINNED: 1, "insufficient cpus": 1}
    # The node frees up: the task comes back there.
    await control.apps.delete("/big", force=True)
    await control.controller.reconcile()
    await confirm_kills(control)
    await converge(control)
    (again,) = app_tasks(control, "/db")
    assert again.node_id == task.node_id and again.reservation == task.reservation


async def test_scale_down_keeps_slots_and_delete_destroys_them(
    control: Control, clock: FakeClock
) -> None:
    await with_nodes(control, 3)
    await control.apps.create("/db", definition("/db"), resident(2))
    await converge(control)
    await run_all(control)
    slots = dict(control.state.reservations)
    assert len(slots) == 2
    # Suspend: the tasks go, the slots (and their disk) stay, as Marathon keeps them.
    await control.apps.update("/db", definition("/db"), resident(0), force=True)
    await converge(control)
    await confirm_kills(control)
    await converge(control)
    assert not app_tasks(control, "/db")
    assert control.state.reservations == slots
    # Scaling up again reuses both slots, each on its node.
    await control.apps.update("/db", definition("/db"), resident(2), force=True)
    clock.advance(400)
    await converge(control)
    tasks = app_tasks(control, "/db")
    assert {t.reservation for t in tasks} == set(slots)
    assert all(t.node_id == slots[t.reservation].node_id for t in tasks if t.reservation)
    await run_all(control)
    # Deleting the app destroys the slots once their tasks ended.
    await control.apps.delete("/db", force=True)
    await control.controller.reconcile()
    assert control.state.reservations == slots  # tasks still live: kept
    await confirm_kills(control)
    await control.controller.reconcile()
    assert not control.state.reservations
    for node_id in control.state.nodes:
        assert control.state.node_volumes(node_id) == ()
        assert control.state.view.free_disk[control.state.view.row[node_id]] == 1000
    kvs, _ = await control.store.list("/pallet/reservations/")
    assert kvs == []


async def test_new_volumes_replace_the_old_slots(control: Control, clock: FakeClock) -> None:
    await with_nodes(control, 2)
    await control.apps.create("/db", definition("/db"), resident())
    await converge(control)
    await run_all(control)
    (old,) = control.state.reservations
    bigger = resident(1, persistent=(PersistentVolume("data", 700),), minimum_health_capacity=0.0)
    await control.apps.update("/db", definition("/db", cmd="x"), bigger, force=True)
    await converge(control)
    await confirm_kills(control)
    clock.advance(400)
    await converge(control)
    (new,) = control.state.reservations
    assert new != old
    (task,) = app_tasks(control, "/db")
    assert task.launch.persistent_volumes[0].size == 700


async def test_slots_survive_a_master_restart(clock: FakeClock, tmp_path) -> None:
    url = f"sqlite:///{tmp_path}/state.db"
    store = await open_store(url, clock=clock, expiry_interval=None)
    first = Control(store, ControlConfig(seed=1), clock=clock)
    await first.load()
    await with_nodes(first, 2)
    await first.apps.create("/db", definition("/db"), resident())
    await converge(first)
    await run_all(first)
    slots = dict(first.state.reservations)
    await store.close()
    store = await open_store(url, clock=clock, expiry_interval=None)
    second = Control(store, ControlConfig(seed=1), clock=clock)
    await second.load()
    assert second.state.reservations == slots
    assert second.state.view.free_disk.tolist() == first.state.view.free_disk.tolist()
    await store.close()


async def test_wipe_destroys_the_slot_and_the_replacement_gets_a_new_one(
    control: Control, clock: FakeClock
) -> None:
    await with_nodes(control, 2)
    await control.apps.create("/db", definition("/db"), resident())
    await converge(control)
    await run_all(control)
    (task,) = app_tasks(control, "/db")
    (old,) = control.state.reservations
    await control.apps.kill_tasks([task.id], wipe=True)
    assert not control.state.reservations  # gone at once; the agent keeps the data in use
    await confirm_kills(control)
    clock.advance(400)
    await converge(control)
    (again,) = app_tasks(control, "/db")
    (new,) = control.state.reservations
    assert new != old and again.reservation == new
