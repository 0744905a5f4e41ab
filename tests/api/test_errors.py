"""Bad input gets Marathon's 4xx answers and changes nothing."""

from __future__ import annotations

import json

import httpx
import pytest

from pallet.control import Control

pytestmark = pytest.mark.anyio

APP = {"id": "/web", "cmd": "sleep 600", "cpus": 0.1, "mem": 32}


async def test_invalid_app_is_422_in_marathons_shape_and_nothing_is_stored(
    api: httpx.AsyncClient, control: Control
) -> None:
    revision = await control.store.revision()
    r = await api.post("/v2/apps", json={**APP, "cpus": -1})
    assert r.status_code == 422
    body = r.json()
    assert body["message"] in ("Invalid JSON", "Object is not valid")
    assert any(d["path"] == "/cpus" for d in body["details"])
    r = await api.post("/v2/apps", json={**APP, "constraints": [["hostname", "NOPE"]]})
    assert r.status_code == 422
    r = await api.post(
        "/v2/apps", json={"id": "/web", "container": {"type": "DOCKER", "docker": {"image": "X y"}}}
    )
    assert r.status_code == 422
    (detail,) = r.json()["details"]
    assert detail["path"] == "/container/docker/image"
    assert detail["errors"][0].startswith("invalid image reference 'X y'")
    r = await api.post("/v2/apps", json={**APP, "container": {"type": "RKT"}})
    assert r.status_code == 422 and r.json()["details"][0]["path"] == "/container/type"
    r = await api.post("/v2/apps", json={"id": "/web", "container": {"type": "MESOS"}})
    assert r.status_code == 422 and r.json()["details"][0]["path"] == "/cmd"
    r = await api.post("/v2/apps", json={**APP, "uris": ["ftp://example.com/app.jar"]})
    assert r.status_code == 422 and r.json()["details"][0]["path"] == "/fetch(0)/uri"
    r = await api.post("/v2/apps", json={**APP, "labels": {"PALLET_PIDS_MAX": "lots"}})
    assert r.status_code == 422 and r.json()["details"][0]["path"] == "/labels/PALLET_PIDS_MAX"
    assert await control.store.revision() == revision
    assert not control.state.apps


async def test_malformed_json_is_400_and_a_huge_body_413(
    api: httpx.AsyncClient, control: Control
) -> None:
    r = await api.post(
        "/v2/apps", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["message"] == "Invalid JSON"
    r = await api.post("/v2/apps", content=b"", headers={"content-type": "application/json"})
    assert r.status_code == 400
    huge = json.dumps({**APP, "env": {"X": "y" * (1 << 20)}}).encode()
    r = await api.post("/v2/apps", content=huge, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert not control.state.apps


async def test_duplicate_is_409(api: httpx.AsyncClient, control: Control) -> None:
    assert (await api.post("/v2/apps", json=APP)).status_code == 201
    revision = await control.store.revision()
    r = await api.post("/v2/apps", json={**APP, "instances": 5})
    assert r.status_code == 409
    assert r.json()["message"] == "An app with id [/web] already exists."
    assert await control.store.revision() == revision


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2/apps/nope"),
        ("GET", "/v2/apps//nope"),
        ("GET", "/v2/apps/nope/tasks"),
        ("GET", "/v2/apps/nope/versions"),
        ("PATCH", "/v2/apps/nope"),
        ("DELETE", "/v2/apps/nope"),
        ("POST", "/v2/apps/nope/restart"),
        ("DELETE", "/v2/apps/nope/tasks/nope.1"),
        ("DELETE", "/v2/deployments/nope"),
        ("GET", "/v1/nodes/nope"),
        ("GET", "/v1/tasks/nope.1/logs"),
        ("GET", "/v1/agent/nodes/nope/desired"),
    ],
)
async def test_unknown_things_are_404(api: httpx.AsyncClient, method: str, path: str) -> None:
    body = {"instances": 2} if method == "PATCH" else None
    r = await api.request(method, path, json=body)
    assert r.status_code == 404, r.text
    assert "message" in r.json()


@pytest.mark.parametrize(
    "query",
    ["offset=--1", "offset=%C2%B2", "offset=%D9%A1%D9%A2", "length=-5", "length=1e3", "offset="],
)
async def test_bad_log_ranges_are_422_before_asking_the_agent(
    api: httpx.AsyncClient, query: str
) -> None:
    r = await api.get(f"/v1/tasks/nope.1/logs?{query}")
    assert r.status_code == 422, r.text
    assert r.json()["message"].endswith("must be a whole number")


async def test_bad_agent_messages_are_422(api: httpx.AsyncClient) -> None:
    r = await api.post("/v1/agent/register", json={"node": {"id": ""}})
    assert r.status_code == 422
    r = await api.post(
        "/v1/agent/nodes/x/status", json={"statuses": [{"task_id": "a", "state": "BAD", "seq": 1}]}
    )
    assert r.status_code == 422


async def test_bad_update_is_422_and_changes_nothing(
    api: httpx.AsyncClient, control: Control
) -> None:
    await api.post("/v2/apps", json=APP)
    before = control.state.apps["/web"]
    r = await api.put("/v2/apps/web?force=true", json={"mem": "lots"})
    assert r.status_code == 422
    r = await api.put("/v2/apps/web?force=true", json={"instances": -1})
    assert r.status_code == 422
    # times an offset carries out of datetime's range (were 500s)
    r = await api.put("/v2/apps/web?force=true", json={"version": "0001-01-01T00:00:00+14:00"})
    assert r.status_code == 422 and r.json()["details"][0]["path"] == "/version"
    r = await api.get("/v2/apps/web/versions/9999-12-31T23:59:59-14:00")
    assert r.status_code == 404 and r.json()["message"] == "App '/web' does not exist"
    assert control.state.apps["/web"] == before
