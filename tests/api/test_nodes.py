"""``/v1/nodes``: an operator drains, undrains and removes nodes; bad input is a 4xx
naming the field, and changes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from pallet.control import Control

from .conftest import FakeClock, register

pytestmark = pytest.mark.anyio


async def _node(api: httpx.AsyncClient, node_id: str) -> dict[str, Any]:
    r = await api.get(f"/v1/nodes/{node_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_drain_then_undrain(api: httpx.AsyncClient, clock: FakeClock) -> None:
    await register(api, 1)
    r = await api.post("/v1/nodes/node-0/drain", json={"deadline": 60})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["state"] == "DRAINING"
    assert doc["drain"]["deadline"] is not None and doc["drain"]["started_at"]
    # No body at all: a drain without a deadline.
    r = await api.post("/v1/nodes/node-0/drain")
    assert r.status_code == 200 and r.json()["drain"]["deadline"] is None
    r = await api.post("/v1/nodes/node-0/undrain")
    assert r.status_code == 200
    assert r.json()["state"] == "ACTIVE" and r.json()["drain"] is None


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"deadline": -1}, "/deadline"),
        ({"deadline": "soon"}, "/deadline"),
        ({"deadline": 10**9}, "/deadline"),
        ({"deadlne": 5}, "/deadlne"),
    ],
)
async def test_a_bad_drain_is_422_naming_the_field(
    api: httpx.AsyncClient, control: Control, body: dict[str, Any], path: str
) -> None:
    await register(api, 1)
    revision = await control.store.revision()
    r = await api.post("/v1/nodes/node-0/drain", json=body)
    assert r.status_code == 422, r.text
    assert [d["path"] for d in r.json()["details"]] == [path]
    assert await control.store.revision() == revision
    assert (await _node(api, "node-0"))["state"] == "ACTIVE"


async def test_removing_an_active_node_is_refused(api: httpx.AsyncClient, control: Control) -> None:
    await register(api, 1)
    r = await api.delete("/v1/nodes/node-0")
    assert r.status_code == 409
    assert "is ACTIVE; drain it first" in r.json()["message"]
    assert "node-0" in control.state.nodes
    assert (await api.delete("/v1/nodes/node-9")).status_code == 404
    assert (await api.post("/v1/nodes/node-9/drain")).status_code == 404
    assert (await api.post("/v1/nodes/node-9/undrain")).status_code == 404


async def test_a_drained_node_without_tasks_is_removed(
    api: httpx.AsyncClient, control: Control
) -> None:
    await register(api, 2)
    assert (await api.post("/v1/nodes/node-1/drain")).status_code == 200
    r = await api.delete("/v1/nodes/node-1")
    assert r.status_code == 200, r.text
    assert r.json()["id"] == "node-1"
    listed = (await api.get("/v1/nodes")).json()["nodes"]
    assert [n["id"] for n in listed] == ["node-0"]
    assert (await api.get("/v1/nodes/node-1")).status_code == 404


async def test_the_supervisor_of_a_crash_looping_agent_shows_on_its_node(
    api: httpx.AsyncClient, clock: FakeClock
) -> None:
    await register(api, 1)
    assert (await api.get("/v1/nodes/node-0")).json()["supervisor"] is None
    report = {
        "supervisor": "pallet up",
        "restarts": 6,
        "exits_last_minute": 5,
        "backing_off_until": 1_800_000_030.0,
        "last_exit": 1_800_000_000.0,
        "last_line": "error: the disk is full",
    }
    r = await api.put("/v1/nodes/node-0/supervisor", json=report)
    assert r.status_code == 200, r.text
    (node,) = (await api.get("/v1/nodes")).json()["nodes"]
    shown = node["supervisor"]
    assert shown["restarts"] == 6 and shown["last_line"] == "error: the disk is full"
    assert shown["backing_off_until"] == "2027-01-15T08:00:30.000Z"
    assert shown["reported_at"] is not None
    bad = await api.put("/v1/nodes/node-0/supervisor", json={**report, "restarts": -1})
    assert bad.status_code == 422 and bad.json()["details"][0]["path"] == "/restarts"
    bad = await api.put("/v1/nodes/node-0/supervisor", json={**report, "extra": 1})
    assert bad.status_code == 422
    missing = await api.put("/v1/nodes/node-9/supervisor", json=report)
    assert missing.status_code == 404
    assert (await api.get("/v1/nodes/node-0")).json()["supervisor"]["restarts"] == 6
