"""The same maintenance through Mesos's v1 operator API (``POST /api/v1`` with the five
maintenance calls, Mesos's ``Call``/``Response`` JSON) and under ``/v1/maintenance/``:
the same state as the Mesos endpoints, bad input 400 naming the field, and each route
behind ``pallet:node`` on a secured master."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from pallet.api.authz import BODY, body_requirement, requirement
from pallet.auth.perms import Action, Rid
from pallet.control import Control

from .conftest import FakeClock, register
from .test_maintenance import M0, M1, _Nothing, schedule

pytestmark = pytest.mark.anyio


async def call(api: httpx.AsyncClient, doc: object, prefix: str = "") -> httpx.Response:
    return await api.post(f"{prefix}/api/v1", json=doc)


@pytest.mark.parametrize("prefix", ["", "/master"])
async def test_the_operator_api_schedules_starts_and_stops_maintenance(
    api: httpx.AsyncClient, clock: FakeClock, prefix: str
) -> None:
    await register(api, 2)
    r = await call(api, {"type": "GET_MAINTENANCE_SCHEDULE"}, prefix)
    assert r.json() == {
        "type": "GET_MAINTENANCE_SCHEDULE",
        "get_maintenance_schedule": {"schedule": {}},
    }
    doc = schedule(clock, M0, M1)
    r = await call(
        api,
        {"type": "UPDATE_MAINTENANCE_SCHEDULE", "update_maintenance_schedule": {"schedule": doc}},
        prefix,
    )
    assert r.status_code == 200 and r.content == b"", r.text
    assert (await api.get("/maintenance/schedule")).json() == doc
    r = await call(api, {"type": "GET_MAINTENANCE_SCHEDULE"}, prefix)
    assert r.json()["get_maintenance_schedule"] == {"schedule": doc}
    r = await call(
        api, {"type": "START_MAINTENANCE", "start_maintenance": {"machines": [M1]}}, prefix
    )
    assert r.status_code == 200, r.text
    r = await call(api, {"type": "GET_MAINTENANCE_STATUS"}, prefix)
    assert r.json() == {
        "type": "GET_MAINTENANCE_STATUS",
        "get_maintenance_status": {
            "status": {"draining_machines": [{"id": M0, "statuses": []}], "down_machines": [M1]}
        },
    }
    assert (
        r.json()["get_maintenance_status"]["status"]
        == (await api.get("/maintenance/status")).json()
    )
    r = await call(
        api, {"type": "STOP_MAINTENANCE", "stop_maintenance": {"machines": [M1]}}, prefix
    )
    assert r.status_code == 200, r.text
    assert (await api.get("/maintenance/status")).json() == {
        "draining_machines": [{"id": M0, "statuses": []}]
    }


async def test_the_v1_aliases_are_the_mesos_routes(
    api: httpx.AsyncClient, clock: FakeClock
) -> None:
    await register(api, 2)
    doc = schedule(clock, M0, M1)
    assert (await api.post("/v1/maintenance/schedule", json=doc)).status_code == 200
    assert (await api.get("/v1/maintenance/schedule")).json() == doc
    assert (await api.post("/v1/maintenance/down", json=[M1])).status_code == 200
    status = (await api.get("/v1/maintenance/status")).json()
    assert status == (await api.get("/maintenance/status")).json()
    assert status["down_machines"] == [M1]
    assert (await api.post("/v1/maintenance/up", json=[M1])).status_code == 200
    r = await api.post("/v1/maintenance/up", json=[M1])  # not DOWN any more
    assert r.status_code == 400 and r.json()["details"][0]["path"] == "(0)"


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"type": "GET_HEALTH"}, "/type"),
        ({}, "/type"),
        ([], "/"),
        ({"type": "UPDATE_MAINTENANCE_SCHEDULE"}, "/update_maintenance_schedule"),
        (
            {
                "type": "UPDATE_MAINTENANCE_SCHEDULE",
                "update_maintenance_schedule": {"schedule": {"windows": [{"machine_ids": [M0]}]}},
            },
            "/update_maintenance_schedule/schedule/windows(0)/unavailability",
        ),
        (
            {"type": "START_MAINTENANCE", "start_maintenance": {"machines": []}},
            "/start_maintenance/machines",
        ),
        (
            {
                "type": "START_MAINTENANCE",
                "start_maintenance": {"machines": [{"hostname": "nope"}]},
            },
            "/start_maintenance/machines(0)",
        ),
        (
            {"type": "STOP_MAINTENANCE", "stop_maintenance": {"machines": [M0]}},
            "/stop_maintenance/machines(0)",
        ),
        ({"type": "STOP_MAINTENANCE", "stop_maintenance": 3}, "/stop_maintenance"),
    ],
)
async def test_bad_calls_are_400_naming_the_field_and_change_nothing(
    api: httpx.AsyncClient, control: Control, clock: FakeClock, body: Any, path: str
) -> None:
    await register(api, 2)
    assert (await api.post("/maintenance/schedule", json=schedule(clock, M0))).status_code == 200
    before = await control.store.get("/pallet/maintenance")
    states = {k: r.state for k, r in control.state.nodes.items()}
    r = await call(api, body)
    assert r.status_code == 400, r.text
    assert r.json()["details"][0]["path"] == path
    assert await control.store.get("/pallet/maintenance") == before
    assert {k: r.state for k, r in control.state.nodes.items()} == states


async def test_protobuf_is_refused(api: httpx.AsyncClient) -> None:
    r = await api.post(
        "/api/v1", content=b"\x08\x17", headers={"content-type": "application/x-protobuf"}
    )
    assert r.status_code == 415


def test_reading_calls_need_node_read_and_the_others_update() -> None:
    node = Rid("node")
    for prefix in ("", "/master"):
        path = f"{prefix}/api/v1"
        assert requirement("POST", path, _Nothing()) is BODY
        for kind, action in (
            ("GET_MAINTENANCE_STATUS", Action.READ),
            ("GET_MAINTENANCE_SCHEDULE", Action.READ),
            ("UPDATE_MAINTENANCE_SCHEDULE", Action.UPDATE),
            ("START_MAINTENANCE", Action.UPDATE),
            ("STOP_MAINTENANCE", Action.UPDATE),
            ("GET_HEALTH", Action.UPDATE),
        ):
            need = body_requirement("POST", path, {"type": kind}, _Nothing())
            assert getattr(need, "pairs", None) == ((node, action),), kind
        assert getattr(body_requirement("POST", path, None, _Nothing()), "pairs", None) == (
            (node, Action.UPDATE),
        )
    for method, path, action in (
        ("GET", "/v1/maintenance/schedule", Action.READ),
        ("GET", "/v1/maintenance/status", Action.READ),
        ("POST", "/v1/maintenance/schedule", Action.UPDATE),
        ("POST", "/v1/maintenance/down", Action.UPDATE),
        ("POST", "/v1/maintenance/up", Action.UPDATE),
    ):
        need = requirement(method, path, _Nothing())
        assert getattr(need, "pairs", None) == ((node, action),), (method, path)


async def test_a_secured_master_asks_pallet_node_for_the_operator_api(secure: Any) -> None:
    reader = await secure.user("rita", ("pallet:node", "read"))
    operator = await secure.user("otto", ("pallet:node", "update"))
    stranger = await secure.user("sam")
    status = {"type": "GET_MAINTENANCE_STATUS"}
    assert (await reader.post("/api/v1", json=status)).status_code == 200
    assert (await stranger.post("/api/v1", json=status)).status_code == 403
    assert (await stranger.get("/v1/maintenance/status")).status_code == 403
    doc = {"windows": [{"machine_ids": [M1], "unavailability": {"start": {"nanoseconds": 0}}}]}
    update = {
        "type": "UPDATE_MAINTENANCE_SCHEDULE",
        "update_maintenance_schedule": {"schedule": doc},
    }
    assert (await reader.post("/api/v1", json=update)).status_code == 403
    assert (await operator.post("/master/api/v1", json=update)).status_code == 200
    start = {"type": "START_MAINTENANCE", "start_maintenance": {"machines": [M1]}}
    assert (await reader.post("/api/v1", json=start)).status_code == 403
    assert (await operator.post("/api/v1", json=start)).status_code == 200
    assert (await reader.post("/v1/maintenance/up", json=[M1])).status_code == 403
    assert (await operator.post("/v1/maintenance/up", json=[M1])).status_code == 200
    async with secure.client(None) as anonymous:
        assert (await anonymous.post("/api/v1", json=status)).status_code == 401
        assert (await anonymous.get("/v1/maintenance/schedule")).status_code == 401
