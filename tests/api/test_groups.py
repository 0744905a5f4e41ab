"""``/v2/groups`` through the routes: a group's apps change together as one deployment with
a step per dependency level; dependents start after what they depend on and stop
before it; bad dependencies are 422 with the path and change nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from pallet.control import Control, TaskState

from .conftest import register
from .test_lifecycle import agents_run_everything, converge

pytestmark = pytest.mark.anyio


def _app(app_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": app_id, "cmd": "sleep 600", "cpus": 0.1, "mem": 32, "instances": 1, **extra}


SHOP = {
    "id": "/shop",
    "apps": [
        _app("db"),
        _app("web", dependencies=["db"], instances=2),
        _app("/shop/cache"),
    ],
}


def _running(control: Control, app_id: str) -> int:
    return sum(1 for t in control.state.app_tasks(app_id) if t.state is TaskState.RUNNING)


async def _settle(api: httpx.AsyncClient, control: Control, rounds: int = 3) -> None:
    for _ in range(rounds):
        await converge(control)
        await agents_run_everything(api, control)


async def test_a_group_starts_in_dependency_order(api: httpx.AsyncClient, control: Control) -> None:
    await register(api, 3)
    r = await api.post("/v2/groups", json=SHOP)
    assert r.status_code == 201, r.text
    (deployment,) = (await api.get("/v2/deployments")).json()
    steps = [sorted(a["app"] for a in s["actions"]) for s in deployment["steps"]]
    assert steps == [["/shop/cache", "/shop/db"], ["/shop/web"]]
    assert deployment["currentStep"] == 1 and deployment["totalSteps"] == 2
    # step 1: db and cache are placed; web waits for db to be ready
    await converge(control)
    assert control.state.app_tasks("/shop/web") == []
    assert len(control.state.app_tasks("/shop/db")) == 1
    await agents_run_everything(api, control)
    await _settle(api, control)
    assert (_running(control, "/shop/db"), _running(control, "/shop/web")) == (1, 2)
    assert (await api.get("/v2/deployments")).json() == []

    group = (await api.get("/v2/groups/shop")).json()
    assert sorted(a["id"] for a in group["apps"]) == ["/shop/cache", "/shop/db", "/shop/web"]
    assert group["groups"] == [] and group["pods"] == []
    root = (await api.get("/v2/groups", params={"embed": "group.groups"})).json()
    assert [g["id"] for g in root["groups"]] == ["/shop"] and "apps" not in root
    versions = (await api.get("/v2/groups/shop/versions")).json()
    assert len(versions) == 1

    # scale the whole group: instances x 2, rounded up
    r = await api.put("/v2/groups/shop", json={"scaleBy": 2})
    assert r.status_code == 200, r.text
    assert control.state.apps["/shop/web"].instances == 4
    assert control.state.apps["/shop/db"].instances == 2
    await _settle(api, control)

    # a dry run of removing web: the step, and nothing changed
    r = await api.put(
        "/v2/groups/shop?dryRun=true&force=true",
        json={"apps": [_app("db", instances=2), _app("cache", instances=2)]},
    )
    assert r.json()["steps"] == [{"actions": [{"action": "StopApplication", "app": "/shop/web"}]}]
    assert "/shop/web" in control.state.apps

    # deleting the group stops web (the dependent) before db
    r = await api.delete("/v2/groups/shop")
    assert r.status_code == 200, r.text
    (deployment,) = (await api.get("/v2/deployments")).json()
    first = [a["app"] for a in deployment["steps"][0]["actions"]]
    assert first == ["/shop/web"]
    await control.controller.reconcile()
    assert all(t.goal.value == "kill" for t in control.state.app_tasks("/shop/web"))
    assert all(t.goal.value == "run" for t in control.state.app_tasks("/shop/db"))
    assert (await api.get("/v2/groups/shop")).status_code == 404  # forgotten


@pytest.mark.parametrize(
    ("body", "path"),
    [
        # a dependency on nothing
        (
            {"id": "/bad", "apps": [_app("a"), _app("b", dependencies=["/nowhere"])]},
            "/apps(1)/dependencies(0)",
        ),
        # a cycle
        (
            {"id": "/bad", "apps": [_app("a", dependencies=["b"]), _app("b", dependencies=["a"])]},
            "/dependencies",
        ),
        # a bad app inside: its path under /apps(i)
        ({"id": "/bad", "apps": [_app("a"), _app("b", cpus=-1)]}, "/apps(1)/cpus"),
        # an unknown field of a group
        ({"id": "/bad", "apps": [], "colour": "red"}, "/colour"),
    ],
)
async def test_bad_groups_are_refused_and_nothing_is_stored(
    api: httpx.AsyncClient, control: Control, body: dict[str, Any], path: str
) -> None:
    r = await api.post("/v2/groups", json=body)
    assert r.status_code == 422, r.text
    assert path in [d["path"] for d in r.json()["details"]]
    assert not control.state.apps and not control.state.deployments


async def test_app_dependencies_must_exist(api: httpx.AsyncClient, control: Control) -> None:
    r = await api.post("/v2/apps", json=_app("/web", dependencies=["/db"]))
    assert r.status_code == 422
    assert r.json()["details"][0]["path"] == "/dependencies(0)"
    assert (await api.post("/v2/apps", json=_app("/db"))).status_code == 201
    assert (await api.post("/v2/apps", json=_app("/web", dependencies=["/db"]))).status_code == 201
    # a group id that is an app's: refused
    r = await api.post("/v2/groups", json={"id": "/web/x", "apps": [_app("y")]})
    assert r.status_code == 422 and "which is an app" in r.text
    r = await api.put("/v2/groups/db", json={"apps": [_app("z")]})
    assert r.status_code == 422, r.text
    assert (await api.get("/v2/groups/nope")).status_code == 404


async def test_rolling_back_a_group_deployment(api: httpx.AsyncClient, control: Control) -> None:
    await register(api, 3)
    assert (await api.post("/v2/groups", json=SHOP)).status_code == 201
    await _settle(api, control, 4)
    r = await api.put(
        "/v2/groups/shop",
        json={"apps": [_app("db", cmd="sleep 601"), _app("web", dependencies=["db"], instances=2)]},
    )
    assert r.status_code == 200, r.text
    (deployment,) = (await api.get("/v2/deployments")).json()
    r = await api.delete(f"/v2/deployments/{deployment['id']}")
    assert r.status_code == 200, r.text
    assert control.state.apps["/shop/db"].spec.cmd == "sleep 600"
    assert "/shop/cache" in control.state.apps  # stopped by the change, back with the rollback
