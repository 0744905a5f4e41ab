"""Apps on named container networks through the API: placed only on agents that have
the network (else waiting, with the reason in ``/v2/queue``), the task's own address
from its agent's RUNNING status in every task listing and in Mesos-DNS's records, and
malformed or unsupported network definitions refused with their path."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from pallet.control import Control
from pallet.discovery import build_records, services_from_apps

from .conftest import node_body
from .test_lifecycle import converge

pytestmark = pytest.mark.anyio

IMAGE = "127.0.0.1:5000/web:1"
APP = {
    "id": "/web",
    "cmd": "exec httpd -f -p 8080",
    "cpus": 0.1,
    "mem": 32,
    "instances": 2,
    "container": {
        "type": "MESOS",
        "docker": {"image": IMAGE},
        "portMappings": [{"containerPort": 8080, "name": "http"}],
    },
    "networks": [{"mode": "container", "name": "dcos"}],
    "healthChecks": [{"protocol": "MESOS_HTTP", "portIndex": 0, "path": "/"}],
    "readinessChecks": [{"name": "up", "portName": "http", "path": "/"}],
}


HEALTHY = {"alive": True, "consecutive_failures": 0, "first_success": 1.0, "last_success": 1.0}


async def register(api: httpx.AsyncClient, i: int, networks: list[str]) -> None:
    body: dict[str, Any] = node_body(i)
    body["node"]["networks"] = networks
    r = await api.post("/v1/agent/register", json=body)
    assert r.status_code == 200, r.text


async def run(api: httpx.AsyncClient, control: Control, addresses: dict[str, str]) -> None:
    """Each agent reports its tasks STARTING, then RUNNING with the address it gave, then
    healthy."""
    for node_id in control.state.nodes:
        r = await api.get(f"/v1/agent/nodes/{node_id}/desired", params={"after": 0, "wait": 0})
        statuses = []
        for spec in r.json()["tasks"]:
            tid = spec["task_id"]
            assert spec["container"]["network"] == "container"
            assert spec["container"]["network_name"] == "dcos"
            # checks probe the container port (at the task's own address, on the agent)
            assert spec["health_checks"][0]["port"] == 8080
            assert spec["readiness_checks"][0]["port"] == 8080
            statuses += [
                {"task_id": tid, "state": "TASK_STARTING", "seq": 1},
                {
                    "task_id": tid,
                    "state": "TASK_RUNNING",
                    "seq": 2,
                    "ip_addresses": [addresses[tid]],
                },
                # a health report says nothing of the address: the master keeps it
                {
                    "task_id": tid,
                    "state": "TASK_RUNNING",
                    "seq": 3,
                    "healthy": True,
                    "health": [HEALTHY],
                },
            ]
        if statuses:
            r = await api.post(f"/v1/agent/nodes/{node_id}/status", json={"statuses": statuses})
            assert r.status_code == 200, r.text
    await control.controller.reconcile()


async def test_placed_where_the_network_is_and_its_address_shown_and_resolved(
    api: httpx.AsyncClient, control: Control
) -> None:
    await register(api, 0, [])
    r = await api.post("/v2/apps", json=APP)
    assert r.status_code == 201, r.text
    assert r.json()["networks"] == [{"mode": "container", "name": "dcos"}]
    await converge(control)
    # No agent has the network: both instances wait, and the queue says why.
    assert not control.state.tasks
    assert list(control.state.queue["/web"].reasons) == [("container network dcos not on node", 1)]
    (item,) = (await api.get("/v2/queue")).json()["queue"]
    assert item["count"] == 2
    summary = item["processedOffersSummary"]["rejectSummaryLastOffers"]
    assert {s["reason"]: s["declined"] for s in summary}["UnfulfilledConstraint"] == 1
    # Agents with the network join: the tasks go there only.
    await register(api, 1, ["dcos"])
    await register(api, 2, ["dcos", "other"])
    nodes = (await api.get("/v1/nodes")).json()["nodes"]
    assert {n["id"]: n["networks"] for n in nodes} == {
        "node-0": [],
        "node-1": ["dcos"],
        "node-2": ["dcos", "other"],
    }
    await converge(control)
    tasks = sorted(control.state.tasks.values(), key=lambda t: t.id)
    assert len(tasks) == 2 and {t.node_id for t in tasks} <= {"node-1", "node-2"}
    # Before RUNNING, a task on a container network has no address to show yet.
    (shown,) = (await api.get("/v2/apps/web/tasks")).json()["tasks"][:1]
    assert shown["ipAddresses"] == []
    addresses = {t.id: f"10.77.{i}.2" for i, t in enumerate(tasks)}
    await run(api, control, addresses)
    expected = {tid: [{"ipAddress": ip, "protocol": "IPv4"}] for tid, ip in addresses.items()}
    listings = [
        (await api.get("/v2/apps/web/tasks")).json()["tasks"],
        (await api.get("/v2/tasks")).json()["tasks"],
        (await api.get("/v2/apps/web", params={"embed": "app.tasks"})).json()["app"]["tasks"],
    ]
    for listing in listings:
        assert {t["id"]: t["ipAddresses"] for t in listing} == expected
    # Mesos-DNS's records (IP sources netinfo first): the app's and each task's name answer
    # the tasks' own addresses, the SRV records their container port; .slave. the agents.
    apps = (await api.get("/v2/apps", params={"embed": "apps.tasks"})).json()["apps"]
    records = build_records(services_from_apps(apps))
    assert {r.data for r in records["web.marathon.mesos"]} == set(addresses.values())
    hosts = {t.host for t in tasks}
    assert {r.data for r in records["web.marathon.slave.mesos"]} == hosts
    srv = records["_web._tcp.marathon.mesos"]
    assert {r.data.split()[2] for r in srv} == {"8080"}
    for r in srv:
        (target,) = records[r.data.split()[3]]
        assert target.data in addresses.values()


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        (
            {"networks": [{"mode": "container", "name": "Bad_Name"}]},
            "/networks(0)/name",
            "must match ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        ),
        (
            {"networks": [{"mode": "container", "name": "n" * 64}]},
            "/networks(0)/name",
            "must be 1-63 characters",
        ),
        (
            {"networks": [{"mode": "container"}]},
            "/networks",
            "Network name must be specified when container network is selected.",
        ),
    ],
)
async def test_malformed_networks_are_422_with_the_path(
    api: httpx.AsyncClient, change: dict[str, Any], path: str, message: str
) -> None:
    r = await api.post("/v2/apps", json={**APP, **change})
    assert r.status_code == 422, r.text
    assert {"path": path, "errors": [message]} in r.json()["details"]
    assert (await api.get("/v2/apps")).json()["apps"] == []


async def test_an_agent_registering_a_malformed_network_is_refused(api: httpx.AsyncClient) -> None:
    body: dict[str, Any] = node_body(0)
    body["node"]["networks"] = ["UPPER"]
    r = await api.post("/v1/agent/register", json=body)
    assert r.status_code == 422, r.text
    assert "/node/networks/0" in r.text


async def test_the_deprecated_ip_address_joins_the_named_network(api: httpx.AsyncClient) -> None:
    legacy = {
        "id": "/old",
        "cmd": "exec httpd -f -p 8080",
        "cpus": 0.1,
        "mem": 32,
        "container": {"type": "MESOS", "docker": {"image": IMAGE}},
        "ipAddress": {
            "networkName": "dcos",
            "discovery": {"ports": [{"number": 8080, "name": "http"}]},
        },
    }
    r = await api.post("/v2/apps", json=legacy)
    assert r.status_code == 201, r.text
    app = r.json()
    assert app["networks"] == [{"mode": "container", "name": "dcos"}]
    assert "ipAddress" not in app
    assert [m["containerPort"] for m in app["container"]["portMappings"]] == [8080]
