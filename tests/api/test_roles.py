"""Public agents and acceptedResourceRoles through the API: placement, /v2/queue, 422s."""

from __future__ import annotations

import httpx
import pytest

from pallet.control import Control

from .conftest import node_body, register
from .test_lifecycle import converge

pytestmark = pytest.mark.anyio


async def _register_public(api: httpx.AsyncClient, i: int) -> None:
    body = node_body(i)
    body["node"]["role"] = "slave_public"
    r = await api.post("/v1/agent/register", json=body)
    assert r.status_code == 200, r.text


async def test_public_apps_land_only_on_public_agents(
    api: httpx.AsyncClient, control: Control
) -> None:
    await register(api, 2)
    await _register_public(api, 2)
    nodes = {n["id"]: n["role"] for n in (await api.get("/v1/nodes")).json()["nodes"]}
    assert nodes == {"node-0": "*", "node-1": "*", "node-2": "slave_public"}
    edge = {"id": "/edge", "cmd": "sleep 600", "cpus": 0.1, "mem": 32, "instances": 3}
    r = await api.post("/v2/apps", json={**edge, "acceptedResourceRoles": ["slave_public"]})
    assert r.status_code == 201, r.text
    r = await api.post("/v2/apps", json={**edge, "id": "/web", "instances": 4})
    assert r.status_code == 201, r.text
    await converge(control)
    on = {t.id: t.node_id for t in control.state.tasks.values()}
    edge_nodes = {on[t] for t in on if t.startswith("edge")}
    web_nodes = {on[t] for t in on if t.startswith("web")}
    assert edge_nodes == {"node-2"}
    assert web_nodes and "node-2" not in web_nodes
    app = (await api.get("/v2/apps/edge")).json()["app"]
    assert app["acceptedResourceRoles"] == ["slave_public"]


async def test_the_queue_says_no_public_agent_has_room(
    api: httpx.AsyncClient, control: Control
) -> None:
    await register(api, 2)
    app = {"id": "/edge", "cmd": "sleep 1", "cpus": 0.1, "mem": 32}
    r = await api.post("/v2/apps", json={**app, "acceptedResourceRoles": ["slave_public"]})
    assert r.status_code == 201, r.text
    await converge(control)
    (item,) = (await api.get("/v2/queue")).json()["queue"]
    steps = item["processedOffersSummary"]["rejectSummaryLastOffers"]
    assert steps[0] == {"reason": "UnfulfilledRole", "declined": 2, "processed": 2}


async def test_unknown_roles_are_refused_with_their_path(api: httpx.AsyncClient) -> None:
    app = {"id": "/edge", "cmd": "sleep 1", "acceptedResourceRoles": ["slave_public", "gold"]}
    r = await api.post("/v2/apps", json=app)
    assert r.status_code == 422
    assert r.json()["details"] == [
        {
            "path": "/acceptedResourceRoles",
            "errors": ["acceptedResourceRoles can only contain * and slave_public"],
        }
    ]
    body = node_body(0)
    body["node"]["role"] = "a/b"
    r = await api.post("/v1/agent/register", json=body)
    assert r.status_code == 422 and "slash" in r.text
