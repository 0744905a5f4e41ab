"""Table-driven tests of the master's decision functions: given a ClusterState and an input,
the Decision's store ops, memory changes and events (nothing is applied or changed)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest

from pallet.control import Control, TaskState
from pallet.control import decision as decision_module
from pallet.control.bus import TaskChanged
from pallet.control.decide_nodes import (
    decide_drain_set,
    decide_draining,
    decide_gone,
    decide_register,
    decide_remove,
    decide_returned,
    decide_unreachable,
)
from pallet.control.decide_tasks import (
    decide_expunge,
    decide_kill,
    decide_placements,
    decide_replaced,
    decide_statuses,
)
from pallet.control.decision import Decision, first_part
from pallet.control.groups import AppChange
from pallet.control.records import NodeDrain, TaskGoal, TaskRecord
from pallet.model import NodeState, Placement, TaskStatus
from pallet.store import Delete, Op, Put

from .conftest import converge, definition, report, run_all, run_spec, with_nodes

pytestmark = pytest.mark.anyio


def _no_end(task: TaskRecord, at: float) -> list[Op]:
    return []


def _job_end(task: TaskRecord, at: float) -> list[Op]:
    return [Put(f"/ended/{task.id}", b"{}")]


def _shape(d: Decision) -> dict[str, Any]:
    """What a decision does, in words a table can hold."""
    return {
        "ops": [
            (type(op).__name__, op.key.split("/")[2] if op.key.startswith("/pallet/") else op.key)
            for op in d.ops
            if isinstance(op, Put | Delete)
        ],
        "put": [(t.state.value, t.goal.value) for t in d.tasks],
        "dropped": len(d.dropped_tasks),
        "events": [
            (type(e).__name__, e.task.state.value if isinstance(e, TaskChanged) else "")
            for e in d.events
        ],
        "backoff": len(d.backoff),
        "nodes": [s.value for _, s in d.node_states] + [n.state.value for n in d.nodes],
        "counts": dict(d.counts),
    }


async def _one_running(control: Control) -> TaskRecord:
    await with_nodes(control, 1)
    await control.apps.create("/web", definition("/web"), run_spec(1))
    await converge(control)
    await run_all(control)
    (task,) = control.state.tasks.values()
    return task


@dataclass(frozen=True)
class StatusCase:
    name: str
    state: TaskState
    seq_delta: int
    expect: dict[str, Any]
    node: str | None = None


STATUS_CASES = [
    StatusCase(
        "healthy report, new seq",
        TaskState.RUNNING,
        1,
        {
            "ops": [("Put", "tasks")],
            "put": [("TASK_RUNNING", "run")],
            "events": [("TaskChanged", "TASK_RUNNING")],
        },
    ),
    StatusCase("stale seq changes nothing", TaskState.FAILED, 0, {}),
    StatusCase(
        "a failure ends the task and backs its app off",
        TaskState.FAILED,
        1,
        {
            "ops": [("Delete", "tasks"), ("Put", "/ended/id"), ("Put", "backoff")],
            "dropped": 1,
            "events": [("TaskChanged", "TASK_FAILED")],
            "backoff": 1,
        },
    ),
    StatusCase(
        "an illegal move is counted and ignored",
        TaskState.STAGING,
        1,
        {"counts": {"illegal": 1}},
    ),
    StatusCase("a report from another node is ignored", TaskState.FAILED, 1, {}, node="elsewhere"),
]


def _expected(expect: dict[str, Any]) -> dict[str, Any]:
    base: dict[str, Any] = {
        "ops": [],
        "put": [],
        "dropped": 0,
        "events": [],
        "backoff": 0,
        "nodes": [],
        "counts": {},
    }
    return {**base, **expect}


@pytest.mark.parametrize("case", STATUS_CASES, ids=lambda c: c.name)
async def test_decide_statuses(control: Control, case: StatusCase) -> None:
    task = await _one_running(control)
    generation, revision = control.state.generation, await control.store.revision()
    report = TaskStatus(task.id, case.state, task.seq + case.seq_delta)
    d = decide_statuses(control.state, case.node or task.node_id, [report], 5.0, _job_end)
    shape = _shape(d)
    shape["ops"] = [(k, "/ended/id" if v.startswith("/ended/") else v) for k, v in shape["ops"]]
    assert shape == _expected(case.expect)
    if case.expect.get("counts"):
        assert d.logs and d.logs[0][0] == logging.WARNING
    # Pure: nothing in memory or in the store moved.
    assert control.state.generation == generation
    assert await control.store.revision() == revision
    assert control.state.tasks[task.id] == task


async def test_two_reports_of_one_task_in_a_batch_are_one_change(control: Control) -> None:
    await with_nodes(control, 1)
    await control.apps.create("/web", definition("/web"), run_spec(1))
    await converge(control)
    (task,) = control.state.tasks.values()
    batch = [
        TaskStatus(task.id, TaskState.STARTING, task.seq + 1),
        TaskStatus(task.id, TaskState.RUNNING, task.seq + 2),
    ]
    d = decide_statuses(control.state, task.node_id, batch, 5.0, _no_end)
    assert _shape(d)["ops"] == [("Put", "tasks")]  # one key once: etcd refuses a key twice
    assert [t.state for t in d.tasks] == [TaskState.RUNNING]
    # One event per task and batch, from the state before the batch to the last.
    changed = [e for e in d.events if isinstance(e, TaskChanged)]
    assert [(e.previous, e.task.state) for e in changed] == [(TaskState.STAGING, TaskState.RUNNING)]


KILL_CASES: list[tuple[str, NodeState, TaskGoal, dict[str, Any]]] = [
    ("an active node's agent kills it", NodeState.ACTIVE, TaskGoal.RUN, {"ops": [("Put", "tasks")], "put": [("TASK_RUNNING", "kill")]}),
    ("a draining node's agent kills it", NodeState.DRAINING, TaskGoal.RUN, {"ops": [("Put", "tasks")], "put": [("TASK_RUNNING", "kill")]}),
    (
        "an unreachable node's task ends now, with its job end",
        NodeState.UNREACHABLE,
        TaskGoal.RUN,
        {"ops": [("Delete", "tasks"), ("Put", "/ended/id")], "dropped": 1, "events": [("TaskChanged", "TASK_KILLED")]},
    ),
    ("already being killed: nothing", NodeState.ACTIVE, TaskGoal.KILL, {}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "node_state", "goal", "expect"), KILL_CASES, ids=[c[0] for c in KILL_CASES]
)
async def test_decide_kill(
    control: Control, name: str, node_state: NodeState, goal: TaskGoal, expect: dict[str, Any]
) -> None:
    task = await _one_running(control)
    control.state.set_node_state(task.node_id, node_state)  # the state as given
    control.state.tasks[task.id] = task.with_(goal=goal)
    d, killed = decide_kill(control.state, [task.id, task.id, "unknown"], 5.0, _job_end)
    shape = _shape(d)
    shape["ops"] = [(k, "/ended/id" if v.startswith("/ended/") else v) for k, v in shape["ops"]]
    assert shape == _expected(expect)
    assert [t.id for t in killed] == ([] if goal is TaskGoal.KILL else [task.id])


NODE_CASES: list[tuple[str, NodeState, Callable[[Any, str], Decision], dict[str, Any]]] = [
    (
        "unreachable: the node and its task, in one decision",
        NodeState.ACTIVE,
        lambda s, n: decide_unreachable(s, n, 5.0),
        {"ops": [("Put", "nodes"), ("Put", "tasks")], "put": [("TASK_UNREACHABLE", "run")],
         "events": [("TaskChanged", "TASK_UNREACHABLE")], "nodes": ["UNREACHABLE"]},
    ),
    ("unreachable twice: nothing", NodeState.UNREACHABLE, lambda s, n: decide_unreachable(s, n, 5.0), {}),
    (
        "gone: the node and its task's end",
        NodeState.UNREACHABLE,
        lambda s, n: decide_gone(s, n, 5.0, _no_end),
        {"ops": [("Put", "nodes"), ("Delete", "tasks")], "dropped": 1,
         "events": [("TaskChanged", "TASK_GONE")], "nodes": ["GONE"]},
    ),
    ("gone while active: nothing", NodeState.ACTIVE, lambda s, n: decide_gone(s, n, 5.0, _no_end), {}),
    (
        "removed: the node and its task",
        NodeState.DOWN,
        lambda s, n: decide_remove(s, n, 5.0, _no_end),
        {"ops": [("Delete", "nodes"), ("Delete", "tasks")], "dropped": 1,
         "events": [("TaskChanged", "TASK_GONE")]},
    ),
    (
        "draining: the node alone",
        NodeState.ACTIVE,
        lambda s, n: decide_draining(s, n),
        {"ops": [("Put", "nodes")], "nodes": ["DRAINING"]},
    ),
    (
        "an operator's drain",
        NodeState.ACTIVE,
        lambda s, n: decide_drain_set(s, n, NodeDrain(1.0)),
        {"ops": [("Put", "nodes")], "nodes": ["DRAINING"]},
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "node_state", "decide", "expect"), NODE_CASES, ids=[c[0] for c in NODE_CASES]
)
async def test_decide_nodes(
    control: Control,
    name: str,
    node_state: NodeState,
    decide: Callable[[Any, str], Decision],
    expect: dict[str, Any],
) -> None:
    task = await _one_running(control)
    control.state.set_node_state(task.node_id, node_state)
    generation = control.state.generation
    d = decide(control.state, task.node_id)
    assert _shape(d) == _expected(expect)
    assert d.wake is bool(expect)  # a decision that changes nothing wakes nobody
    assert control.state.generation == generation


async def test_a_node_returning_resumes_its_tasks_and_kills_the_replaced(control: Control) -> None:
    task = await _one_running(control)
    await control.applier.node_unreachable(task.node_id)
    lost = control.state.tasks[task.id]
    control.state.tasks[task.id] = lost.with_(replaced=True)
    d = decide_returned(control.state, task.node_id, 9.0)
    assert _shape(d) == _expected(
        {
            "ops": [("Put", "nodes"), ("Put", "tasks")],
            "put": [("TASK_RUNNING", "kill")],
            "events": [("TaskChanged", "TASK_RUNNING")],
            "nodes": ["ACTIVE"],
        }
    )


async def test_a_new_boot_id_drops_the_nodes_tasks_with_the_node(control: Control) -> None:
    task = await _one_running(control)
    record = control.state.nodes[task.node_id]
    fresh = replace(record, boot_id="another")
    d = decide_register(control.state, fresh, 5.0, _job_end)
    shape = _shape(d)
    assert [op for op, _ in shape["ops"]] == ["Put", "Delete", "Put"]
    assert shape["dropped"] == 1 and shape["nodes"] == ["ACTIVE"]
    same = decide_register(control.state, record, 5.0, _job_end)
    assert _shape(same)["dropped"] == 0


async def test_decide_placements_keeps_what_the_app_still_wants(control: Control) -> None:
    await with_nodes(control, 1)
    await control.apps.create("/web", definition("/web"), run_spec(2))
    await control.controller.reconcile()
    app = control.state.apps["/web"]
    node_id = next(iter(control.state.nodes))
    extra = [Placement(app.run.placement_request("/web", f"web.{i}"), node_id) for i in range(3)]
    d = decide_placements(control.state, extra, 5.0)
    assert [t.id for t in d.tasks] == ["web.0", "web.1"]  # two wanted, the third dropped
    assert dict(d.counts) == {"placed": 2, "rejected": 0}
    assert _shape(d)["ops"] == [("Put", "tasks"), ("Put", "tasks")]
    assert [e.previous for e in d.events if isinstance(e, TaskChanged)] == [None, None]
    assert not control.state.tasks


async def test_replaced_and_expunged(control: Control) -> None:
    task = await _one_running(control)
    d = decide_replaced(control.state, [task.id, task.id, "unknown"])
    assert [t.replaced for t in d.tasks] == [True]
    gone = decide_expunge(control.state, [task.id], 5.0)
    assert _shape(gone)["ops"] == [("Delete", "tasks")]
    assert _shape(gone)["events"] == [("TaskChanged", "TASK_GONE_BY_OPERATOR")]


def test_then_keeps_the_last_write_of_a_key_and_both_changes() -> None:
    a = Decision(ops=(Put("k", b"1"), Put("j", b"1")), counts=(("placed", 1),), wake=False)
    b = Decision(ops=(Delete("k"),), dropped_tasks=("t",), wake=False)
    both = a.then(b)
    assert both.ops == (Put("j", b"1"), Delete("k"))
    assert both.dropped_tasks == ("t",) and both.counts == (("placed", 1),)
    assert not both.wake and not both.empty
    assert Decision().empty


def test_first_part_halves_until_the_decision_fits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decision_module, "MAX_TXN_OPS", 10)

    def decide(items: Any) -> Decision:
        return Decision(ops=tuple(Put(f"k{i}", b"") for i in items for _ in range(1)))

    items = list(range(25))
    parts = []
    rest: Any = items
    while rest:
        d, rest = first_part(rest, decide)
        assert d.fits()
        parts.append(len(d.ops))
    assert sum(parts) == 25 and all(p <= 10 for p in parts)
    # One item whose decision cannot fit is returned whole, never cut.
    big, rest = first_part([0], lambda _: Decision(ops=tuple(Put(f"x{i}", b"") for i in range(11))))
    assert len(big.ops) == 11 and not big.fits() and not rest


async def test_a_dry_run_group_change_leaves_the_launch_delay_alone(control: Control) -> None:
    # It reset the app's launch delay in memory (never in the store) before this
    # decision was pure: a dry run must change nothing.
    task = await _one_running(control)
    await report(control, task.id, TaskState.FAILED)
    delay = control.state.backoff["/web"]
    assert delay.launch_after > 0
    change = AppChange("/web", definition("/web", cmd="sleep 900"), run_spec(1, cmd="sleep 900"))
    preview = await control.groups.change(
        "/", [change], {}, remove_missing=False, force=True, dry_run=True
    )
    assert preview is not None and preview.deployment is not None
    assert control.state.backoff["/web"] == delay
    await control.groups.change("/", [change], {}, remove_missing=False, force=True)
    assert control.state.backoff["/web"].launch_after == 0.0  # the real change resets it
