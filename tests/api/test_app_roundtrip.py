"""Marathon JSON -> the stored app (``AppRecord``: its ``AppSpec``, through its store
encoding, ``RunSpec`` computed from it) -> Marathon JSON is, byte for byte, what ``/v2/apps`` renders for the
app, on the master that took it and on one that loaded it from the store, for real
definitions taken from the tests; and the API stores exactly that app.

(Before, the master that took an app through ``/v2/apps`` rendered free-form objects
such as ``container`` in the submitter's key order, and in the store's sorted order
after a restart, or when the app came through ``/v2/groups`` or a kill-and-scale.)"""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import pytest
from tests.api.marathon.test_marathon_roundtrip import BODIES

from pallet.api import create_api
from pallet.api.convert import moment, stored_app
from pallet.api.marathon import app_json, normalize_app, read_app
from pallet.control import AppRecord, Control, ControlConfig
from pallet.control.records import decode, encode

from . import test_canary, test_container_networks, test_readiness, test_resident
from .conftest import INFO

pytestmark = pytest.mark.anyio

EMBEDS = ("versionInfo", "tasksStaged", "tasksRunning", "tasksHealthy", "tasksUnhealthy")


def _runnable() -> list[dict[str, Any]]:
    """The round-trip suite's bodies this master runs (without secrets, which need a key
    file, and host volumes, which need an allowed path), and the route tests' apps."""
    by_id = {b["id"]: copy.deepcopy(b) for b in BODIES}
    api = by_id["prod/api"]
    del api["secrets"], api["env"]["PW"], api["dependencies"]
    bridge = by_id["/bridge"]
    del bridge["container"]["volumes"]
    out = [by_id["/web"], api, bridge, by_id["/resident"]]
    for name, module in (
        ("canary", test_canary),
        ("networks", test_container_networks),
        ("readiness", test_readiness),
        ("resident", test_resident),
    ):
        out.append({**copy.deepcopy(module.APP), "id": f"/tests/{name}"})
    return out


CASES = _runnable()


def _stored(body: dict[str, Any], version: str) -> AppRecord:
    """The app as the API edge makes it of ``body``, through the store's bytes."""
    spec = normalize_app(read_app(body))
    record = AppRecord(spec.id, version, version, version, *stored_app(spec))
    return AppRecord.from_json(decode(encode(record.to_json())))


@pytest.mark.parametrize("body", CASES, ids=lambda b: b["id"])
async def test_json_to_app_to_json_is_what_the_api_renders(
    api: httpx.AsyncClient, control: Control, body: dict[str, Any]
) -> None:
    r = await api.post("/v2/apps", json=body)
    assert r.status_code == 201, r.text
    app_id = r.json()["id"]
    record = control.state.apps[app_id]

    stored = _stored(body, record.version)
    assert stored == record  # what the API keeps is that app, nothing else
    doc = app_json(stored.spec, moment(stored.version))

    assert json.dumps(_listed(await api.get("/v2/apps"), app_id)) == json.dumps(doc)

    again = Control(control.store, ControlConfig(heartbeat_grace=5.0, seed=3), clock=control.clock)
    await again.load()
    transport = httpx.ASGITransport(app=create_api(again, INFO, manage_control=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://master") as loaded:
        rendered = _listed(await loaded.get("/v2/apps"), app_id)
    await again.stop()
    assert json.dumps(rendered) == json.dumps(doc)


def _listed(r: httpx.Response, app_id: str) -> dict[str, Any]:
    """The app's entry in a ``GET /v2/apps``, less what is not the app's definition."""
    (app,) = [a for a in r.json()["apps"] if a["id"] == app_id]
    return {k: v for k, v in app.items() if k not in (*EMBEDS, "deployments")}
