"""Mesos's maintenance endpoints over HTTP: the schedule, down, up and status in Mesos's
JSON at ``/`` and ``/master/``, bad input answered 400 naming the field with nothing
changed, and the node list showing each node's window."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from pallet.api.authz import requirement
from pallet.auth.perms import Action, Rid
from pallet.control import Control

from .conftest import FakeClock, node_body, register

pytestmark = pytest.mark.anyio

S = 1_000_000_000


def schedule(clock: FakeClock, *machines: dict[str, str]) -> dict[str, Any]:
    start = int(clock() + 600) * S
    return {
        "windows": [
            {
                "machine_ids": list(machines),
                "unavailability": {
                    "start": {"nanoseconds": start},
                    "duration": {"nanoseconds": 3600 * S},
                },
            }
        ]
    }


M0 = {"hostname": "127.0.0.2", "ip": "127.0.0.2"}  # node-0, as conftest registers it
M1 = {"hostname": "127.0.0.3"}


async def _node(api: httpx.AsyncClient, node_id: str) -> dict[str, Any]:
    r = await api.get(f"/v1/nodes/{node_id}")
    assert r.status_code == 200
    return r.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize("prefix", ["", "/master"])
async def test_schedule_down_up_in_mesos_shapes(
    api: httpx.AsyncClient, clock: FakeClock, prefix: str
) -> None:
    await register(api, 3)
    assert (await api.get(f"{prefix}/maintenance/schedule")).json() == {}
    doc = schedule(clock, M0, M1)
    r = await api.post(f"{prefix}/maintenance/schedule", json=doc)
    assert r.status_code == 200, r.text
    assert (await api.get(f"{prefix}/maintenance/schedule")).json() == doc
    n0 = await _node(api, "node-0")
    assert n0["state"] == "DRAINING"
    assert n0["maintenance"] == {
        "mode": "DRAINING",
        "unavailability": doc["windows"][0]["unavailability"],
        "phase": "pending",
    }
    assert (await _node(api, "node-2"))["maintenance"] is None
    r = await api.post(f"{prefix}/machine/down", json=[M1])
    assert r.status_code == 200, r.text
    assert (await _node(api, "node-1"))["state"] == "DOWN"
    assert (await api.get(f"{prefix}/maintenance/status")).json() == {
        "draining_machines": [{"id": M0, "statuses": []}],
        "down_machines": [M1],
    }
    # An agent on a DOWN machine may not register.
    r = await api.post("/v1/agent/register", json=node_body(1))
    assert r.status_code == 409 and "DOWN for maintenance" in r.json()["message"]
    r = await api.post(f"{prefix}/machine/up", json=[M1])
    assert r.status_code == 200, r.text
    assert (await _node(api, "node-1"))["state"] == "ACTIVE"
    assert (await api.get(f"{prefix}/maintenance/status")).json() == {
        "draining_machines": [{"id": M0, "statuses": []}]
    }
    doc["windows"][0]["machine_ids"] = [M0]
    assert (await api.get(f"{prefix}/maintenance/schedule")).json() == doc


@pytest.mark.parametrize(
    ("route", "body", "path"),
    [
        (
            "/maintenance/schedule",
            {"windows": [{"machine_ids": [M0]}]},
            "/windows(0)/unavailability",
        ),
        (
            "/maintenance/schedule",
            {
                "windows": [
                    {"machine_ids": [M0, M0], "unavailability": {"start": {"nanoseconds": 0}}}
                ]
            },
            "/windows(0)/machine_ids(1)",
        ),
        (
            "/maintenance/schedule",
            {
                "windows": [
                    {
                        "machine_ids": [M0],
                        "unavailability": {
                            "start": {"nanoseconds": 0},
                            "duration": {"nanoseconds": -5},
                        },
                    }
                ]
            },
            "/windows(0)/unavailability/duration/nanoseconds",
        ),
        # node-0 once by hostname, once by IP, in two windows
        (
            "/maintenance/schedule",
            {
                "windows": [
                    {
                        "machine_ids": [{"hostname": "127.0.0.2"}],
                        "unavailability": {"start": {"nanoseconds": 0}},
                    },
                    {
                        "machine_ids": [{"ip": "127.0.0.2"}],
                        "unavailability": {"start": {"nanoseconds": 0}},
                    },
                ]
            },
            "/windows(1)/machine_ids(0)",
        ),
        ("/machine/down", [{"hostname": "unscheduled"}], "(0)"),
        ("/machine/down", [{}], "(0)"),
        ("/machine/down", {"hostname": "x"}, "/"),
        ("/machine/up", [M0], "(0)"),  # scheduled but not DOWN
        ("/machine/up", [], "/"),
    ],
)
async def test_bad_input_is_400_naming_the_field_and_changes_nothing(
    api: httpx.AsyncClient, control: Control, clock: FakeClock, route: str, body: Any, path: str
) -> None:
    await register(api, 2)
    assert (await api.post("/maintenance/schedule", json=schedule(clock, M0))).status_code == 200
    before = await control.store.get("/pallet/maintenance")
    states = {k: r.state for k, r in control.state.nodes.items()}
    r = await api.post(route, json=body)
    assert r.status_code == 400, r.text
    assert r.json()["details"][0]["path"] == path
    assert await control.store.get("/pallet/maintenance") == before
    assert {k: r.state for k, r in control.state.nodes.items()} == states


async def test_malformed_json_is_400(api: httpx.AsyncClient) -> None:
    r = await api.post("/machine/down", content=b"[{", headers={"content-type": "application/json"})
    assert r.status_code == 400


class _Nothing:
    def is_app(self, app_id: str) -> bool:
        return False

    def task_app(self, task_id: str) -> str | None:
        return None

    def deployment_apps(self, deployment_id: str) -> None:
        return None


@pytest.mark.parametrize("prefix", ["", "/master"])
def test_the_routes_need_pallet_node(prefix: str) -> None:
    node = Rid("node")
    for method, path, action in (
        ("GET", "/maintenance/schedule", Action.READ),
        ("GET", "/maintenance/status", Action.READ),
        ("POST", "/maintenance/schedule", Action.UPDATE),
        ("POST", "/machine/down", Action.UPDATE),
        ("POST", "/machine/up", Action.UPDATE),
    ):
        need = requirement(method, prefix + path, _Nothing())
        assert getattr(need, "pairs", None) == ((node, action),), (method, path)


async def test_a_secured_master_asks_pallet_node_for_maintenance(secure: Any) -> None:
    reader = await secure.user("rita", ("pallet:node", "read"))
    operator = await secure.user("otto", ("pallet:node", "update"))
    stranger = await secure.user("sam")
    doc = {"windows": [{"machine_ids": [M1], "unavailability": {"start": {"nanoseconds": 0}}}]}
    for path in ("/maintenance/schedule", "/master/maintenance/status"):
        assert (await reader.get(path)).status_code == 200
        assert (await stranger.get(path)).status_code == 403
    assert (await reader.post("/maintenance/schedule", json=doc)).status_code == 403
    assert (await operator.post("/master/maintenance/schedule", json=doc)).status_code == 200
    assert (await operator.post("/machine/down", json=[M1])).status_code == 200
    assert (await stranger.post("/machine/up", json=[M1])).status_code == 403
    assert (await operator.post("/master/machine/up", json=[M1])).status_code == 200
