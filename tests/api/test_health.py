"""Health checks through the master's routes, the agents' side played over the agent
protocol: checks reach the agents with their ports, health reports become Marathon's
counts, ``healthCheckResults`` and events (all parsed by the Marathon client), and a
task that reaches ``maxConsecutiveFailures`` is killed, its end counted as a failure."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from marathon.models import MarathonApp, MarathonTask
from marathon.models.events import EventFactory

from pallet.api.marathon import sse_frame
from pallet.api.routes_info import marathon_event
from pallet.control import Control, TaskGoal

from .conftest import FakeClock, register
from .test_lifecycle import agents_run_everything, converge

pytestmark = pytest.mark.anyio

CHECK = {
    "protocol": "HTTP",
    "path": "/health",
    "gracePeriodSeconds": 5,
    "intervalSeconds": 1,
    "timeoutSeconds": 1,
    "maxConsecutiveFailures": 2,
}


def _health(alive: bool, failures: int, when: float) -> dict[str, Any]:
    return {
        "alive": alive,
        "consecutive_failures": failures,
        "first_success": when if alive else None,
        "last_success": when if alive else None,
        "last_failure": None if alive else when,
        "last_failure_cause": None if alive else "HTTP 503",
    }


async def _report(
    api: httpx.AsyncClient, control: Control, task_id: str, seq: int, **fields: Any
) -> None:
    node = control.state.tasks[task_id].node_id
    status = {"task_id": task_id, "state": "TASK_RUNNING", "seq": seq, **fields}
    r = await api.post(f"/v1/agent/nodes/{node}/status", json={"statuses": [status]})
    assert r.json()["acks"] == [[task_id, seq]]


async def _app(api: httpx.AsyncClient) -> dict[str, Any]:
    r = await api.get("/v2/apps/web", params={"embed": ["app.tasks", "app.counts"]})
    assert r.status_code == 200
    doc: dict[str, Any] = r.json()["app"]
    MarathonApp.from_json(doc)  # the client raises on fields it does not know
    return doc


async def test_health_reports_count_render_and_kill(
    api: httpx.AsyncClient, control: Control, clock: FakeClock
) -> None:
    await register(api, 2)
    sub = control.bus.subscribe()
    body = {
        "id": "/web",
        "cmd": "python3 -m http.server $PORT0",
        "cpus": 0.1,
        "mem": 32,
        "instances": 2,
        "portDefinitions": [{"port": 0}],
        "healthChecks": [CHECK],
    }
    r = await api.post("/v2/apps", json=body)
    assert r.status_code == 201, r.text
    await converge(control)

    # the agents get the check with the task's own host port (portIndex 0 by default)
    for node_id in control.state.nodes:
        r = await api.get(f"/v1/agent/nodes/{node_id}/desired", params={"after": 0, "wait": 0})
        for spec in r.json()["tasks"]:
            (check,) = spec["health_checks"]
            assert check["port"] == spec["ports"][0]
            assert check["path"] == "/health" and check["max_consecutive_failures"] == 2
    await agents_run_everything(api, control)
    a, b = sorted(control.state.tasks)

    app = await _app(api)
    assert (app["tasksRunning"], app["tasksHealthy"], app["tasksUnhealthy"]) == (2, 0, 0)
    assert all(t["healthCheckResults"] == [] for t in app["tasks"])
    await control.controller.reconcile()
    assert control.state.deployments, "RUNNING but not yet healthy: the deployment goes on"

    now = clock.now
    await _report(api, control, a, 3, healthy=True, health=[_health(True, 0, now)])
    await _report(api, control, b, 3, healthy=False, health=[_health(False, 1, now)])
    app = await _app(api)
    assert (app["tasksHealthy"], app["tasksUnhealthy"]) == (1, 1)
    results = {t["id"]: t["healthCheckResults"] for t in app["tasks"]}
    assert results[a][0]["alive"] is True and results[a][0]["instanceId"] == a
    assert results[b][0] == {
        "alive": False,
        "consecutiveFailures": 1,
        "instanceId": b,
        "lastFailure": results[b][0]["lastFailure"],
        "lastFailureCause": "HTTP 503",
    }
    r = await api.get("/v2/tasks")
    assert all(MarathonTask.from_json(t).health_check_results for t in r.json()["tasks"])

    # the second failure in a row reaches maxConsecutiveFailures: killed in that update
    await _report(api, control, b, 4, healthy=False, health=[_health(False, 2, now + 1)])
    assert control.state.tasks[b].goal is TaskGoal.KILL
    assert control.state.tasks[a].goal is TaskGoal.RUN
    app = await _app(api)
    assert (app["tasksHealthy"], app["tasksUnhealthy"]) == (1, 0)  # being killed: not counted
    # a repeated (stale) report changes nothing
    await _report(api, control, b, 4, healthy=False, health=[_health(False, 2, now + 1)])

    # its agent kills it: the end counts against the app's backoff, as a failure
    await _report(api, control, b, 5, **{"state": "TASK_KILLING"})
    await _report(api, control, b, 6, **{"state": "TASK_KILLED", "message": "killed"})
    assert b not in control.state.tasks
    backoff = control.state.backoff["/web"]
    assert backoff.delay > 0 and backoff.last_failure is not None
    assert backoff.last_failure["task_id"] == b

    kinds = []
    while not sub._queue.empty():
        event = marathon_event(api._transport.app.state.pallet, sub._queue.get_nowait())  # type: ignore[attr-defined]
        if event is None:
            continue
        kinds.append(event.event_type)
        payload = json.loads(sse_frame(event).decode().split("\n")[1].removeprefix("data: "))
        assert EventFactory().process(payload).event_type == event.event_type
    assert kinds.count("health_status_changed_event") == 1  # a became alive
    assert kinds.count("failed_health_check_event") == 2  # b failed twice
    assert kinds.count("unhealthy_instance_kill_event") == 1


async def test_a_health_time_out_of_range_is_422_and_the_task_still_renders(
    api: httpx.AsyncClient, control: Control, clock: FakeClock
) -> None:
    # 1e308 seconds was stored, then every read rendering the task was a 500
    await register(api, 1)
    body = {"id": "/web", "cmd": "sleep 9", "cpus": 0.1, "mem": 32, "healthChecks": [CHECK]}
    assert (await api.post("/v2/apps", json=body)).status_code == 201
    await converge(control)
    await agents_run_everything(api, control)
    (task_id,) = control.state.tasks
    node = control.state.tasks[task_id].node_id
    for when in (1e308, -1.0):
        health = [_health(True, 0, clock.now) | {"last_success": when}]
        status = {"task_id": task_id, "state": "TASK_RUNNING", "seq": 3, "health": health}
        r = await api.post(f"/v1/agent/nodes/{node}/status", json={"statuses": [status]})
        assert r.status_code == 422, r.text
        assert r.json()["details"][0]["path"] == "/statuses/0/health/0/last_success"
    assert control.state.tasks[task_id].health == ()
    for path in ("/v2/tasks", "/v2/apps/web", f"/v1/nodes/{node}"):
        assert (await api.get(path)).status_code == 200, path


async def test_health_check_validation(api: httpx.AsyncClient) -> None:
    base = {"id": "/v", "cmd": "sleep 9", "portDefinitions": [{"port": 0}]}
    cases = [
        ({"protocol": "HTTP", "portIndex": 1}, "/healthChecks(0)"),
        ({"protocol": "MESOS_TCP", "portIndex": 2}, "/healthChecks(0)"),
        ({"protocol": "COMMAND"}, "/healthChecks(0)/command"),
        ({"protocol": "HTTP", "intervalSeconds": -1}, "/healthChecks(0)/intervalSeconds"),
        ({"protocol": "GOPHER"}, "/healthChecks(0)/protocol"),
    ]
    for check, path in cases:
        r = await api.post("/v2/apps", json=base | {"healthChecks": [check]})
        assert r.status_code == 422, (check, r.text)
        assert path in {d["path"] for d in r.json()["details"]}, (check, r.text)
    r = await api.post(
        "/v2/apps",
        json=base | {"healthChecks": [{"protocol": "COMMAND", "command": {"value": "true"}}]},
    )
    assert r.status_code == 201, r.text
