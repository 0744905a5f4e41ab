"""The agent protocol's routes, served before FastAPI's router (``routes_agent.AgentRoutes``):
the same answers as every other route for bad input (a 4xx naming the field, never a
500), unknown nodes, wrong methods and paths it does not serve; and an agent that
long-polls is not lost while its heartbeats are late."""

from __future__ import annotations

import httpx
import pytest

from pallet.control import Control
from pallet.model import NodeState
from pallet.model.clock import FakeClock

from .conftest import node_body, register

pytestmark = pytest.mark.anyio

BAD_BODIES = [
    ("/v1/agent/register", {"node": {"id": ""}}, "/node"),
    ("/v1/agent/register", {**node_body(0), "boot_id": 7}, "/boot_id"),
    ("/v1/agent/register", {**node_body(0), "extra": 1}, "/extra"),
    (
        "/v1/agent/nodes/node-0/status",
        {"statuses": [{"task_id": "a", "state": "BAD", "seq": 1}]},
        "/statuses/0/state",
    ),
    ("/v1/agent/nodes/node-0/status", {"statuses": "x"}, "/statuses"),
    ("/v1/agent/nodes/node-0/heartbeat", {"usage": {"t": {"cpu_seconds": "x"}}}, "/usage/t"),
    ("/v1/agent/nodes/node-0/heartbeat", [], ""),
]


@pytest.mark.parametrize(("path", "body", "field"), BAD_BODIES)
async def test_a_bad_body_is_422_naming_the_field(
    api: httpx.AsyncClient, control: Control, path: str, body: object, field: str
) -> None:
    await register(api, 1)
    before = dict(control.state.nodes)
    r = await api.post(path, json=body)
    assert r.status_code == 422, r.text
    doc = r.json()
    assert doc["message"] == "Invalid agent message"
    assert doc["details"][0]["path"].startswith(field), doc
    assert r.headers["content-type"] == "application/json"
    assert control.state.nodes == before


async def test_not_json_too_large_and_bad_numbers_are_4xx(api: httpx.AsyncClient) -> None:
    await register(api, 1)
    hb = "/v1/agent/nodes/node-0/heartbeat"
    r = await api.post(hb, content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["message"], r.text
    r = await api.post(hb, content=b"")
    assert r.status_code == 400 and r.json()["message"], r.text
    r = await api.post(hb, content=b" " * (2 << 20))
    assert r.status_code == 413 and "larger than" in r.json()["message"], r.text
    r = await api.get("/v1/agent/nodes/node-0/desired", params={"after": "x", "wait": "0"})
    assert r.status_code == 422 and "numbers" in r.json()["message"], r.text


async def test_unknown_nodes_wrong_methods_and_other_paths(api: httpx.AsyncClient) -> None:
    r = await api.post("/v1/agent/nodes/nope/heartbeat", json={"usage": {}})
    assert r.status_code == 404 and "nope" in r.json()["message"], r.text
    r = await api.get("/v1/agent/nodes/nope/desired", params={"wait": "0"})
    assert r.status_code == 404, r.text
    r = await api.post("/v1/agent/nodes/nope/status", json={"statuses": []})
    assert r.status_code == 404, r.text
    r = await api.get("/v1/agent/register")
    assert r.status_code == 405 and r.headers["allow"] == "POST", r.text
    assert r.json() == {"message": "Method Not Allowed"}
    r = await api.post("/v1/agent/nodes/nope/desired")
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD", r.text
    # not the protocol's: FastAPI answers, as for any unknown path
    for path in ("/v1/agent/nodes/x/other", "/v1/agent/nodes//heartbeat", "/v1/agent/x/y/z/w"):
        r = await api.post(path, json={})
        assert r.status_code in (404, 405), (path, r.status_code, r.text)
        assert r.json()["message"], path


async def test_the_protocol_round_trip_through_the_routes(
    api: httpx.AsyncClient, control: Control
) -> None:
    r = await api.post("/v1/agent/register", json=node_body(0))
    assert r.status_code == 200, r.text
    assert r.json()["node_id"] == "node-0"
    r = await api.get("/v1/agent/nodes/node-0/desired", params={"after": "0", "wait": "0"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json()["tasks"] == []
    r = await api.post("/v1/agent/nodes/node-0/status", json={"statuses": []})
    assert r.status_code == 200 and r.json() == {"acks": []}, r.text
    r = await api.post("/v1/agent/nodes/node-0/drain")
    assert r.status_code == 200 and r.json() == {"state": "DRAINING"}, r.text
    assert control.state.nodes["node-0"].state is NodeState.DRAINING


async def test_an_agent_that_long_polls_stays_reachable_without_heartbeats(
    api: httpx.AsyncClient, control: Control, clock: FakeClock
) -> None:
    """Each long-poll counts as the agent's word when it arrives: node-0 polls every 10 s
    and never heartbeats; node-1 says nothing after registering and is lost."""
    await register(api, 2)
    grace = control.nodes.grace
    for _ in range(4):
        clock.advance(grace * 2 / 3)
        r = await api.get("/v1/agent/nodes/node-0/desired", params={"wait": "0"})
        assert r.status_code == 200, r.text
        await control.nodes.check()
    assert control.state.nodes["node-0"].state is NodeState.ACTIVE
    assert control.state.nodes["node-1"].state is NodeState.UNREACHABLE
    # a status post counts too; an unreachable node comes back only by heartbeat
    clock.advance(grace * 2 / 3)
    r = await api.post("/v1/agent/nodes/node-0/status", json={"statuses": []})
    assert r.status_code == 200, r.text
    clock.advance(grace * 2 / 3)
    await control.nodes.check()
    assert control.state.nodes["node-0"].state is NodeState.ACTIVE
    r = await api.get("/v1/agent/nodes/node-1/desired", params={"wait": "0"})
    assert control.state.nodes["node-1"].state is NodeState.UNREACHABLE
    r = await api.post("/v1/agent/nodes/node-1/heartbeat", json={"usage": {}})
    assert r.status_code == 200 and r.json()["state"] == "ACTIVE", r.text


async def test_the_long_poll_reads_its_query(api: httpx.AsyncClient, control: Control) -> None:
    await register(api, 1)
    revision = control.state.desired_revision.get("node-0", 0)
    for query in ("", "after=0", "wait=0&after=0", "after=0&wait=0.0&other=1", "wait=-3"):
        r = await api.get(f"/v1/agent/nodes/node-0/desired?{query}")
        assert r.status_code == 200 and r.json()["revision"] == revision, (query, r.text)
    for query in ("after=1.5", "wait=soon", "after=%ZZ"):
        r = await api.get(f"/v1/agent/nodes/node-0/desired?{query}")
        assert r.status_code == 422, (query, r.text)
