"""An app's life through the routes, with the agents' side played over the agent protocol;
every /v2 answer must parse in the Marathon client's models."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from marathon.models import (
    MarathonApp,
    MarathonDeployment,
    MarathonInfo,
    MarathonQueueItem,
    MarathonTask,
)

from pallet.api.routes_info import marathon_event
from pallet.control import Control, TaskGoal

from .conftest import FakeClock, node_body, register

pytestmark = pytest.mark.anyio

NODE_KEYS = {
    "id",
    "hostname",
    "state",
    "attributes",
    "role",
    "gpu_model",
    "networks",
    "disks",
    "capacity",
    "allocated",
    "used",
    "tasks",
    "last_heartbeat",
    "drain",
    "maintenance",
    "supervisor",
}


async def converge(control: Control) -> None:
    for _ in range(3):
        await control.controller.reconcile()
        await control.scheduler.run_once()
    await control.controller.reconcile()


async def agents_run_everything(api: httpx.AsyncClient, control: Control) -> None:
    """Each agent long-polls its set and reports every task STARTING then RUNNING."""
    for node_id in control.state.nodes:
        r = await api.get(f"/v1/agent/nodes/{node_id}/desired", params={"after": 0, "wait": 0})
        assert r.status_code == 200
        statuses = []
        for spec in r.json()["tasks"]:
            seq = control.state.tasks[spec["task_id"]].seq
            if seq == 0:
                statuses += [
                    {"task_id": spec["task_id"], "state": "TASK_STARTING", "seq": 1},
                    {"task_id": spec["task_id"], "state": "TASK_RUNNING", "seq": 2},
                ]
        if statuses:
            r = await api.post(f"/v1/agent/nodes/{node_id}/status", json={"statuses": statuses})
            assert r.json()["acks"] == [[s["task_id"], s["seq"]] for s in statuses]
    await control.controller.reconcile()


async def test_create_show_scale_kill_delete(api: httpx.AsyncClient, control: Control) -> None:
    await register(api, 3)
    sub = control.bus.subscribe()
    r = await api.post(
        "/v2/apps",
        json={
            "id": "/prod/web",
            "cmd": "sleep 600",
            "cpus": 0.1,
            "mem": 32,
            "instances": 2,
            "constraints": [["hostname", "UNIQUE"]],
        },
    )
    assert r.status_code == 201
    assert r.headers["location"] == "/v2/apps/prod/web"
    created = r.json()
    MarathonApp.from_json(created)
    assert created["deployments"] and created["tasksRunning"] == 0
    r = await api.get("/v2/deployments")
    (deployment,) = r.json()
    MarathonDeployment.from_json(deployment)
    assert deployment["affectedApps"] == ["/prod/web"]

    await converge(control)
    await agents_run_everything(api, control)
    r = await api.get("/v2/apps//prod/web")  # the Marathon client's double slash
    app = r.json()["app"]
    MarathonApp.from_json(app)
    assert app["tasksRunning"] == 2 and app["deployments"] == []
    hosts = {t["host"] for t in app["tasks"]}
    assert len(hosts) == 2
    r = await api.get("/v2/tasks")
    tasks = r.json()["tasks"]
    assert len(tasks) == 2 and all(t["state"] == "TASK_RUNNING" for t in tasks)
    for t in tasks:
        MarathonTask.from_json(t)
        assert t["ipAddresses"][0]["ipAddress"] == t["host"]
        assert t["ports"]

    # scale through PUT (what scale_app sends)
    r = await api.put("/v2/apps//prod/web?force=False", json={"instances": 3})
    assert r.status_code == 200 and r.headers["marathon-deployment-id"] == r.json()["deploymentId"]
    await converge(control)
    await agents_run_everything(api, control)
    assert len(control.state.tasks) == 3
    assert (await api.get("/v2/deployments")).json() == []

    # kill one task with scale: a deployment to 2 instances
    victim = tasks[0]["id"]
    r = await api.delete(f"/v2/apps//prod/web/tasks/{victim}", params={"scale": "true"})
    assert r.status_code == 200 and "deploymentId" in r.json()
    assert control.state.apps["/prod/web"].instances == 2
    assert control.state.tasks[victim].goal.value == "kill"

    # versions
    r = await api.get("/v2/apps/prod/web/versions")
    versions = r.json()["versions"]
    assert len(versions) == 3
    r = await api.get(f"/v2/apps/prod/web/versions/{versions[-1]}")
    assert r.json()["instances"] == 2

    # nodes
    r = await api.get("/v1/nodes")
    nodes = r.json()["nodes"]
    assert len(nodes) == 3
    for n in nodes:
        assert set(n) == NODE_KEYS
        assert set(n["capacity"]) == {"cpus", "mem", "disk", "gpus", "ports"}
        assert set(n["allocated"]) == {"cpus", "mem", "disk", "gpus"}
        assert set(n["used"]) == {"cpus", "mem", "disk"}
        assert isinstance(n["capacity"]["cpus"], float)
    busy = next(n for n in nodes if n["tasks"])
    assert busy["allocated"]["cpus"] == pytest.approx(0.1 * len(busy["tasks"]))
    r = await api.get(f"/v1/nodes/{busy['id']}")
    detail = r.json()
    assert set(detail) == NODE_KEYS | {"task_details"}
    assert [t["id"] for t in detail["task_details"]] == detail["tasks"]

    # heartbeats carry usage: CPU from cpu-second deltas, RSS and sandbox disk in MiB
    task_id = busy["tasks"][0]
    await api.post(
        f"/v1/agent/nodes/{busy['id']}/heartbeat",
        json={"usage": {task_id: {"cpu_seconds": 1.0, "rss_bytes": 1 << 20}}},
    )
    control.clock.advance(2.0)  # type: ignore[attr-defined]
    await api.post(
        f"/v1/agent/nodes/{busy['id']}/heartbeat",
        json={
            "usage": {task_id: {"cpu_seconds": 2.0, "rss_bytes": 3 << 20, "disk_bytes": 5 << 19}}
        },
    )
    used = (await api.get(f"/v1/nodes/{busy['id']}")).json()["used"]
    assert used == {"cpus": 0.5, "mem": 3.0, "disk": 2.5}

    # delete
    r = await api.delete("/v2/apps/prod/web")
    assert r.status_code == 409  # the scale-down deployment still holds the app
    r = await api.delete("/v2/apps/prod/web", params={"force": "true"})
    assert r.status_code == 200
    assert (await api.get("/v2/apps/prod/web")).status_code == 404

    # events render in Marathon's shapes
    kinds = set()
    while not sub._queue.empty():
        event = marathon_event(api._transport.app.state.pallet, sub._queue.get_nowait())  # type: ignore[attr-defined]
        if event is not None:
            kinds.add(event.event_type)
    assert {
        "api_post_event",
        "status_update_event",
        "deployment_info",
        "deployment_success",
    } <= kinds


async def test_queue_says_why_nothing_fits(api: httpx.AsyncClient, control: Control) -> None:
    await register(api, 2)
    r = await api.post("/v2/apps", json={"id": "/big", "cmd": "sleep 1", "mem": 4096, "cpus": 0.1})
    assert r.status_code == 201
    await converge(control)
    r = await api.get("/v2/queue")
    (item,) = r.json()["queue"]
    MarathonQueueItem.from_json(item)
    assert item["count"] == 1
    summary = item["processedOffersSummary"]
    assert summary["processedOffersCount"] == 2
    declined = {s["reason"]: s["declined"] for s in summary["rejectSummaryLastOffers"]}
    assert declined["InsufficientMemory"] == 2


async def test_restart_replaces_tasks_and_info_parses(
    api: httpx.AsyncClient, control: Control
) -> None:
    await register(api, 2)
    await api.post("/v2/apps", json={"id": "/web", "cmd": "sleep 600", "cpus": 0.1, "mem": 32})
    await converge(control)
    await agents_run_everything(api, control)
    (old,) = control.state.tasks
    r = await api.post("/v2/apps/web/restart")
    assert r.status_code == 200
    await converge(control)
    await agents_run_everything(api, control)
    await control.controller.reconcile()
    assert control.state.tasks[old].goal.value == "kill"
    assert len([t for t in control.state.tasks.values() if t.goal.value == "run"]) == 1
    info = (await api.get("/v2/info")).json()
    MarathonInfo.from_json(info)
    assert (await api.get("/v2/leader")).json() == {"leader": "127.0.0.1:8080"}
    assert (await api.get("/ping")).text == "pong"
    metrics = (await api.get("/metrics")).text
    assert 'pallet_nodes{state="ACTIVE"} 2.0' in metrics
    assert "pallet_tasks" in metrics


async def test_kill_given_tasks(api: httpx.AsyncClient, control: Control) -> None:
    await register(api, 2)
    await api.post(
        "/v2/apps", json={"id": "/web", "cmd": "sleep 600", "cpus": 0.1, "mem": 32, "instances": 2}
    )
    await converge(control)
    await agents_run_everything(api, control)
    ids = list(control.state.tasks)
    r = await api.post("/v2/tasks/delete", json={"ids": ids[:1]})
    assert r.status_code == 200
    body: dict[str, Any] = r.json()
    assert [t["id"] for t in body["tasks"]] == ids[:1]
    assert control.state.apps["/web"].instances == 2  # not scaled: replaced
    r = await api.post("/v2/tasks/delete?scale=true", json={"ids": ids[1:]})
    assert "deploymentId" in r.json()
    assert control.state.apps["/web"].instances == 1


async def test_killing_a_task_twice_answers_the_task_both_times(
    api: httpx.AsyncClient, control: Control
) -> None:
    # the second kill killed nothing new and the route indexed an empty list (a 500)
    await register(api, 1)
    body = {"id": "/web", "cmd": "sleep 600", "cpus": 0.1, "mem": 32}
    await api.post("/v2/apps", json=body)
    await converge(control)
    await agents_run_everything(api, control)
    (task_id,) = control.state.tasks
    for _ in range(2):
        r = await api.delete(f"/v2/apps/web/tasks/{task_id}")
        assert r.status_code == 200, r.text
        assert r.json()["task"]["id"] == task_id
    assert control.state.tasks[task_id].goal is TaskGoal.KILL


async def test_kill_and_scale_counts_each_task_once(
    api: httpx.AsyncClient, control: Control
) -> None:
    # a repeated id, or a second kill of a task being killed, shrank the app again each time
    await register(api, 2)
    body = {"id": "/web", "cmd": "sleep 600", "cpus": 0.1, "mem": 32, "instances": 4}
    await api.post("/v2/apps", json=body)
    await converge(control)
    await agents_run_everything(api, control)
    first = sorted(control.state.tasks)[0]
    r = await api.post("/v2/tasks/delete?scale=true&force=true", json={"ids": [first] * 3})
    assert r.status_code == 200, r.text
    assert control.state.apps["/web"].instances == 3
    r = await api.post("/v2/tasks/delete?scale=true&force=true", json={"ids": [first]})
    assert r.status_code == 200, r.text
    r = await api.delete(f"/v2/apps/web/tasks/{first}", params={"scale": "true", "force": "true"})
    assert r.status_code == 200, r.text
    assert control.state.apps["/web"].instances == 3


async def test_a_draining_agents_tasks_are_replaced_on_the_other_nodes(
    api: httpx.AsyncClient, control: Control, clock: FakeClock
) -> None:
    # kill -USR1 on an agent: it says it is leaving, then kills and reports its tasks.
    await register(api, 2)
    app = {"id": "/web", "cmd": "sleep 600", "cpus": 0.1, "mem": 32, "instances": 2}
    r = await api.post("/v2/apps", json={**app, "constraints": [["hostname", "UNIQUE"]]})
    assert r.status_code == 201, r.text
    await converge(control)
    await agents_run_everything(api, control)
    (leaving,) = [t for t in control.state.tasks.values() if t.node_id == "node-0"]

    r = await api.post("/v1/agent/nodes/node-0/drain")
    assert r.status_code == 200 and r.json() == {"state": "DRAINING"}
    assert (await api.post("/v1/agent/nodes/nope/drain")).status_code == 404
    killed = {"task_id": leaving.id, "state": "TASK_KILLED", "seq": leaving.seq + 1}
    await api.post("/v1/agent/nodes/node-0/status", json={"statuses": [killed]})
    clock.advance(2.0)  # past the launch delay the unexpected kill added
    await converge(control)
    # Its replacement waits for a node (hostname UNIQUE, the other one is taken): none
    # goes to the node that is leaving.
    assert not control.state.tasks_by_node.get("node-0")
    assert (await api.get("/v2/queue")).json()["queue"][0]["count"] == 1
    (node,) = [n for n in (await api.get("/v1/nodes")).json()["nodes"] if n["id"] == "node-0"]
    assert node["state"] == "DRAINING"

    # The agent comes back: the node is ACTIVE and takes the replacement.
    r = await api.post("/v1/agent/register", json=node_body(0))
    assert r.status_code == 200
    await converge(control)
    assert len(control.state.tasks_by_node.get("node-0", ())) == 1
