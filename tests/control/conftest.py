"""Fixtures for the control tests: a memory store, a fake clock and a Control without its loops."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from factories import memory_control
from pallet.control import (
    Control,
    RunSpec,
    TaskState,
)
from pallet.model import Node, Resources, TaskStatus, parse_port_ranges
from pallet.model.app import AppSpec
from pallet.model.clock import FakeClock

T0 = 1_700_000_000.0


def run_spec(instances: int = 1, **changes: Any) -> RunSpec:
    changes.setdefault("resources", Resources(100, 32, 0, 0))
    changes.setdefault("cmd", "sleep 600")
    return RunSpec(instances=instances, **changes)


def definition(app_id: str, **extra: Any) -> AppSpec:
    """An app's stored definition: its spec less its count (that is ``run``'s). The
    tests give ``run`` beside it; on a reload ``run`` is computed from the spec, so a
    test that reloads gives both from one spec (``model.app_run.run_spec``)."""
    return AppSpec(**{"id": app_id, "cmd": "sleep 600", "instances": 0, **extra})


def node(i: int, cpu: int = 2000, mem: int = 1024) -> Node:
    return Node.build(
        f"node-{i}",
        cpu_milli=cpu,
        mem_mib=mem,
        disk_mib=1000,
        hostname=f"127.0.0.{i + 1}",
        ports=parse_port_ranges(f"[{31000 + 100 * i}-{31099 + 100 * i}]"),
    )


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
async def control(clock: FakeClock) -> AsyncIterator[Control]:
    async with memory_control(clock, seed=7) as ctl:
        yield ctl


async def with_nodes(ctl: Control, count: int = 3, **kwargs: Any) -> list[str]:
    ids = []
    for i in range(count):
        record = await ctl.nodes.register(node(i, **kwargs), f"http://127.0.0.{i + 1}:5051", "boot")
        ids.append(record.id)
    return ids


async def converge(ctl: Control, rounds: int = 3) -> None:
    """Controller passes and scheduling rounds, as the loops would run them."""
    for _ in range(rounds):
        await ctl.controller.reconcile()
        await ctl.scheduler.run_once()
    await ctl.controller.reconcile()


async def report(ctl: Control, task_id: str, state: TaskState, **fields: Any) -> None:
    """The task's agent reports ``state`` with the next seq."""
    task = ctl.state.tasks[task_id]
    update = TaskStatus(task_id, state, task.seq + 1, **fields)
    await ctl.nodes.statuses(task.node_id, [update])


async def run_all(ctl: Control) -> None:
    """Every agent reports every task it should run as RUNNING."""
    for task in list(ctl.state.tasks.values()):
        if task.state is TaskState.STAGING and task.goal.value == "run":
            await report(ctl, task.id, TaskState.STARTING)
            await report(ctl, task.id, TaskState.RUNNING)


async def confirm_kills(ctl: Control) -> None:
    for task in list(ctl.state.tasks.values()):
        if task.goal.value == "kill":
            await report(ctl, task.id, TaskState.KILLED)


def app_tasks(ctl: Control, app_id: str) -> list[Any]:
    return sorted(ctl.state.app_tasks(app_id), key=lambda t: t.staged_at)
