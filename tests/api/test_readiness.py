"""Readiness checks through the routes: the master sends them to agents (in a desired set
the agent's own reader accepts), a deployment waits for them, ``/v2/deployments`` shows
their results and the event stream reports them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from pallet.api.routes_info import marathon_event
from pallet.control import Control
from pallet.model import DesiredSet

from .conftest import register
from .test_lifecycle import agents_run_everything, converge

pytestmark = pytest.mark.anyio

APP: dict[str, Any] = {
    "id": "/web",
    "cmd": "python3 -m http.server $PORT0",
    "cpus": 0.1,
    "mem": 32,
    "instances": 2,
    "portDefinitions": [{"port": 0, "name": "http"}, {"port": 0, "name": "admin"}],
    "healthChecks": [{"protocol": "MESOS_HTTP", "portIndex": 0, "path": "/"}],
    "readinessChecks": [
        {
            "name": "warm",
            "portName": "admin",
            "path": "/ready",
            "intervalSeconds": 5,
            "timeoutSeconds": 2,
            "httpStatusCodesForReady": [200, 204],
            "preserveLastResponse": True,
        }
    ],
}


async def _post(api: httpx.AsyncClient, node: str, statuses: list[dict[str, Any]]) -> None:
    r = await api.post(f"/v1/agent/nodes/{node}/status", json={"statuses": statuses})
    assert r.status_code == 200, r.text


async def test_a_deployment_waits_for_readiness(api: httpx.AsyncClient, control: Control) -> None:
    await register(api, 2)
    assert (await api.post("/v2/apps", json=APP)).status_code == 201
    await converge(control)

    # what the master sends, the agent reads: checks bound to each task's host ports
    specs = []
    for node in control.state.nodes:
        r = await api.get(f"/v1/agent/nodes/{node}/desired", params={"after": 0, "wait": 0})
        specs += DesiredSet.from_json(r.json()).tasks
    assert len(specs) == 2
    for spec in specs:
        (check,) = spec.readiness_checks
        assert check.port == spec.ports[1] and check.status_codes == (200, 204)
        assert spec.health_checks[0].port == spec.ports[0]

    await agents_run_everything(api, control)
    sub = control.bus.subscribe()
    # healthy but not yet ready: the deployment goes on, showing each task's readiness
    for tid, task in control.state.tasks.items():
        health = [{"alive": True, "consecutive_failures": 0}]
        await _post(
            api,
            task.node_id,
            [
                {
                    "task_id": tid,
                    "state": "TASK_RUNNING",
                    "seq": 3,
                    "healthy": True,
                    "health": health,
                }
            ],
        )
    await control.controller.reconcile()
    (deployment,) = (await api.get("/v2/deployments")).json()
    results = deployment["currentActions"][0]["readinessCheckResults"]
    assert sorted(r["taskId"] for r in results) == sorted(control.state.tasks)
    assert all(r["name"] == "warm" and r["ready"] is False for r in results)

    # the agents' probes answer: ready, with the last response kept
    for tid, task in control.state.tasks.items():
        ready = {
            "name": "warm",
            "ready": True,
            "last_response": {"status": 204, "content_type": "text/plain", "body": ""},
        }
        await _post(
            api,
            task.node_id,
            [{"task_id": tid, "state": "TASK_RUNNING", "seq": 4, "readiness": [ready]}],
        )
    await control.controller.reconcile()
    assert (await api.get("/v2/deployments")).json() == []
    app = (await api.get("/v2/apps/web", params={"embed": "app.readiness"})).json()["app"]
    assert [r["ready"] for r in app["readinessCheckResults"]] == [True, True]
    assert app["readinessCheckResults"][0]["lastResponse"]["status"] == 204

    ctx = api._transport.app.state.pallet  # type: ignore[attr-defined]
    kinds = []
    while not sub._queue.empty():
        event = marathon_event(ctx, sub._queue.get_nowait())
        if event is not None:
            kinds.append(event.event_type)
    assert kinds.count("readiness_check_result") == 2
    assert "deployment_success" in kinds


async def test_readiness_naming_a_missing_port_is_refused(api: httpx.AsyncClient) -> None:
    body = {**APP, "readinessChecks": [{**APP["readinessChecks"][0], "portName": "nope"}]}
    r = await api.post("/v2/apps", json=body)
    assert r.status_code == 422
    assert r.json()["details"][0]["path"] == "/readinessChecks(0)/portName"
    assert (await api.get("/v2/apps/web")).status_code == 404
