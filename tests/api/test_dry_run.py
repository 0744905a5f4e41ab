"""``?dryRun=true`` shows what a change would do and changes nothing: no record, no
version, no event, no deployment, nothing learned by the live policy."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from pallet.control import Control

from .conftest import register
from .test_lifecycle import agents_run_everything, converge

pytestmark = pytest.mark.anyio

WEB = {"id": "/web", "cmd": "sleep 600", "cpus": 0.1, "mem": 32, "instances": 2}


async def _untouched(
    control: Control, api: httpx.AsyncClient, request: httpx.Request
) -> dict[str, Any]:
    """Send ``request`` and check that nothing anywhere changed."""
    revision = await control.store.revision()
    apps = dict(control.state.apps)
    tasks = dict(control.state.tasks)
    deployments = dict(control.state.deployments)
    counted = len(getattr(control.policy, "_counted", ()))
    sub = control.bus.subscribe()
    r = await api.send(request)
    assert r.status_code == 200, r.text
    assert await control.store.revision() == revision
    assert control.state.apps == apps
    assert control.state.tasks == tasks
    assert control.state.deployments == deployments
    assert len(getattr(control.policy, "_counted", ())) == counted
    assert sub._queue.empty()
    sub.close()
    return r.json()


async def test_create_dry_run_places_without_creating(
    api: httpx.AsyncClient, control: Control
) -> None:
    await register(api, 3)
    body = {**WEB, "constraints": [["hostname", "UNIQUE"]], "instances": 3}
    plan = await _untouched(
        control, api, api.build_request("POST", "/v2/apps?dryRun=true", json=body)
    )
    assert plan["steps"] == [
        {"actions": [{"action": "StartApplication", "app": "/web"}]},
        {"actions": [{"action": "ScaleApplication", "app": "/web"}]},
    ]
    hosts = [launch["host"] for launch in plan["launches"]]
    assert len(hosts) == 3 and len(set(hosts)) == 3  # UNIQUE: one per node
    assert plan["unplaced"] is None and plan["kills"] == []
    assert {d["path"] for d in plan["diff"]} >= {"/id", "/cmd", "/instances"}
    assert (await api.get("/v2/apps/web")).status_code == 404

    # one more instance than nodes: the fourth waits, with the nodes' reasons
    body["instances"] = 4
    plan = await _untouched(
        control, api, api.build_request("POST", "/v2/apps?dryRun=true", json=body)
    )
    assert len(plan["launches"]) == 3
    assert plan["unplaced"]["instances"] == 1
    assert plan["unplaced"]["reasons"] == [{"reason": "constraint hostname UNIQUE", "nodes": 3}]
    # a PUT that would create is a dry run too
    plan = await _untouched(
        control, api, api.build_request("PUT", "/v2/apps/web?dryRun=true", json=body)
    )
    assert len(plan["launches"]) == 3


async def test_update_dry_run_shows_the_rollout(api: httpx.AsyncClient, control: Control) -> None:
    await register(api, 2)
    assert (await api.post("/v2/apps", json=WEB)).status_code == 201
    await converge(control)
    await agents_run_everything(api, control)
    await converge(control)
    old = sorted(control.state.tasks)

    for method in ("PUT", "PATCH"):
        request = api.build_request(method, "/v2/apps/web?dryRun=true", json={"cmd": "sleep 601"})
        plan = await _untouched(control, api, request)
        assert plan["steps"] == [{"actions": [{"action": "RestartApplication", "app": "/web"}]}]
        assert plan["diff"] == [{"path": "/cmd", "from": "sleep 600", "to": "sleep 601"}]
        # every old task replaced, none kept
        assert sorted(k["taskId"] for k in plan["kills"]) == old
        assert len(plan["launches"]) == 2

    # a scale only: no task replaced
    request = api.build_request("PUT", "/v2/apps/web?dryRun=true", json={"instances": 3})
    plan = await _untouched(control, api, request)
    assert plan["steps"] == [{"actions": [{"action": "ScaleApplication", "app": "/web"}]}]
    assert plan["kills"] == [] and len(plan["launches"]) == 1
    assert plan["diff"] == [{"path": "/instances", "from": 2, "to": 3}]

    # bad input is refused as the change would be
    r = await api.put("/v2/apps/web?dryRun=true", json={"cpus": -1})
    assert r.status_code == 422
    r = await api.post("/v2/apps?dryRun=true", json=WEB)
    assert r.status_code == 409
