"""An agent report the master's transition table refuses is acknowledged (so the agent
stops resending it), ignored and counted in /metrics."""

from __future__ import annotations

import httpx
import pytest

from pallet.control import Control, TaskState

from .conftest import register
from .test_lifecycle import agents_run_everything, converge

pytestmark = pytest.mark.anyio


async def test_a_task_going_back_is_ignored_and_counted(
    api: httpx.AsyncClient, control: Control
) -> None:
    await register(api, 1)
    body = {"id": "/web", "cmd": "sleep 600", "cpus": 0.1, "mem": 32, "instances": 1}
    assert (await api.post("/v2/apps", json=body)).status_code == 201
    await converge(control)
    await agents_run_everything(api, control)
    (task,) = control.state.tasks.values()
    assert task.state is TaskState.RUNNING
    back = {"task_id": task.id, "state": "TASK_STARTING", "seq": task.seq + 1}
    r = await api.post(f"/v1/agent/nodes/{task.node_id}/status", json={"statuses": [back]})
    assert r.json()["acks"] == [[task.id, task.seq + 1]]
    assert control.state.tasks[task.id].state is TaskState.RUNNING  # unchanged
    metrics = (await api.get("/metrics")).text
    assert "pallet_task_reports_illegal_total 1.0" in metrics
