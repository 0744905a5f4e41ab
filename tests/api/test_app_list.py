"""``GET /v2/apps`` served from per-app serialized JSON: the body is byte for byte what
serializing every app's JSON would give, after writes too, and a write re-serializes
only the apps it changed; an app that waits for nothing skips the dependency walk."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from pallet.api.marathon.params import AppEmbed
from pallet.control import Control

from .conftest import register
from .test_lifecycle import agents_run_everything, converge

pytestmark = pytest.mark.anyio

EMBEDS = ["apps.counts", "apps.deployments", "apps.lastTaskFailure"]


def _app(app_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": app_id, "cmd": "sleep 600", "cpus": 0.1, "mem": 32, "instances": 1, **extra}


def _whole_list(api: httpx.AsyncClient, control: Control, embeds: frozenset[AppEmbed]) -> bytes:
    """The list as it was rendered before: every app's JSON in one ``json.dumps``."""
    renderer = api._transport.app.state.pallet.renderer  # type: ignore[attr-defined]
    apps = sorted(control.state.apps.values(), key=lambda a: a.id)
    doc = {"apps": [renderer.app(a, embeds) for a in apps]}
    return json.dumps(doc, separators=(",", ":")).encode()


async def test_the_list_is_what_serializing_every_app_gives(
    api: httpx.AsyncClient, control: Control
) -> None:
    await register(api, 2)
    for i in range(4):
        r = await api.post("/v2/apps", json=_app(f"/list/app-{i}"))
        assert r.status_code == 201, r.text
    embeds = frozenset({AppEmbed.COUNTS, AppEmbed.DEPLOYMENTS, AppEmbed.LAST_TASK_FAILURE})
    params = [("embed", e) for e in EMBEDS]
    for step in range(3):
        r = await api.get("/v2/apps", params=params, headers={"Accept-Encoding": "identity"})
        assert r.content == _whole_list(api, control, embeds)
        zipped = await api.get("/v2/apps", params=params, headers={"Accept-Encoding": "gzip"})
        assert zipped.headers["Content-Encoding"] == "gzip"
        assert zipped.content == r.content  # httpx has unzipped it
        if step == 0:  # a deployment in flight shows in its app only
            doc = r.json()
            assert all(a["deployments"] for a in doc["apps"])
            await converge(control)
        else:
            r = await api.put(
                "/v2/apps/list/app-2?force=true", json=_app("/list/app-2", cmd="sleep 601")
            )
            assert r.status_code == 200, r.text
    body = (await api.get("/v2/apps", headers={"Accept-Encoding": "identity"})).json()
    assert [a["cmd"] for a in body["apps"]] == ["sleep 600"] * 2 + ["sleep 601", "sleep 600"]


async def test_a_write_serializes_only_the_app_it_changed(
    api: httpx.AsyncClient, control: Control, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(5):
        assert (
            await api.post("/v2/apps", json=_app(f"/few/app-{i}", instances=0))
        ).status_code == 201
    await converge(control)
    await api.get("/v2/apps")
    import pallet.api.render as render

    dumped: list[str] = []
    real = render.json.dumps

    class _Json:
        @staticmethod
        def dumps(doc: Any, **kw: Any) -> str:
            dumped.append(doc.get("id", "?") if isinstance(doc, dict) else "?")
            return real(doc, **kw)

    monkeypatch.setattr(render, "json", _Json)
    r = await api.put("/v2/apps/few/app-3", json=_app("/few/app-3", instances=0, cmd="true"))
    assert r.status_code == 200, r.text
    await converge(control)
    dumped.clear()
    listed = (await api.get("/v2/apps")).json()["apps"]
    assert dumped == ["/few/app-3"]
    assert [a["cmd"] for a in listed if a["id"] == "/few/app-3"] == ["true"]


async def test_a_task_change_recounts_only_its_app(
    api: httpx.AsyncClient, control: Control, monkeypatch: pytest.MonkeyPatch
) -> None:
    await register(api, 2)
    for i in range(3):
        assert (await api.post("/v2/apps", json=_app(f"/few/app-{i}"))).status_code == 201
    await converge(control)
    await agents_run_everything(api, control)
    await converge(control)
    params = [("embed", "apps.counts")]
    assert [
        a["tasksRunning"] for a in (await api.get("/v2/apps", params=params)).json()["apps"]
    ] == [
        1,
        1,
        1,
    ]
    import pallet.api.render as render

    counted: list[set[str]] = []
    real = render._counts

    def counts(tasks: list[Any]) -> Any:
        counted.append({t.app_id for t in tasks})
        return real(tasks)

    monkeypatch.setattr(render, "_counts", counts)
    (task,) = control.state.app_tasks("/few/app-1")
    r = await api.delete(f"/v2/apps/few/app-1/tasks/{task.id}")
    assert r.status_code == 200, r.text
    listed = (await api.get("/v2/apps", params=params)).json()["apps"]
    # Only the app whose task changed was counted again; the others came from the cache.
    assert counted == [{"/few/app-1"}]
    assert [a["tasksRunning"] for a in listed] == [1, 0, 1]


async def test_dependencies_of_an_app_in_a_group_with_dependencies_are_still_checked(
    api: httpx.AsyncClient,
) -> None:
    r = await api.put("/v2/groups/g", json={"id": "/g", "dependencies": ["/h"], "apps": []})
    assert r.status_code in (200, 201), r.text
    r = await api.post("/v2/apps", json=_app("/h/x", instances=0))
    assert r.status_code == 201, r.text
    # /g/y waits for nothing itself, but /g waits for /h: /h/x waiting for /g/y is a cycle.
    r = await api.post("/v2/apps", json=_app("/g/y", instances=0))
    assert r.status_code == 201, r.text
    r = await api.put("/v2/apps/h/x", json=_app("/h/x", instances=0, dependencies=["/g/y"]))
    assert r.status_code == 422, r.text
    assert "cycle" in r.text
