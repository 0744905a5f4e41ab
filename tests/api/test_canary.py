"""Pallet's upgradeStrategy additions through the routes: shown only when set, bad values
refused with the path, canaries shown in /v2/deployments and promoted over HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from marathon.models import MarathonApp, MarathonDeployment

from pallet.control import Control

from .conftest import register
from .test_lifecycle import agents_run_everything, converge

pytestmark = pytest.mark.anyio

APP: dict[str, Any] = {"id": "/web", "cmd": "sleep 600", "cpus": 0.1, "mem": 32, "instances": 2}


@pytest.mark.parametrize(
    ("strategy", "path"),
    [
        ({"canaryInstances": 3}, "/upgradeStrategy/canaryInstances"),
        ({"canaryInstances": -1}, "/upgradeStrategy/canaryInstances"),
        ({"progressDeadlineSeconds": 0}, "/upgradeStrategy/progressDeadlineSeconds"),
        ({"progressDeadlineSeconds": -5}, "/upgradeStrategy/progressDeadlineSeconds"),
        ({"autoPromoteAfterSeconds": 10}, "/upgradeStrategy/autoPromoteAfterSeconds"),
        ({"autoRollback": "sometimes"}, "/upgradeStrategy/autoRollback"),
    ],
)
async def test_bad_rollout_fields_are_refused(
    api: httpx.AsyncClient, strategy: dict[str, Any], path: str
) -> None:
    full = {"minimumHealthCapacity": 1, "maximumOverCapacity": 1, **strategy}
    r = await api.post("/v2/apps", json={**APP, "upgradeStrategy": full})
    assert r.status_code == 422, r.text
    assert [d["path"] for d in r.json()["details"]] == [path]
    assert (await api.get("/v2/apps/web")).status_code == 404


async def test_canaries_over_http(api: httpx.AsyncClient, control: Control) -> None:
    await register(api, 3)
    assert (await api.post("/v2/apps", json=APP)).status_code == 201
    app = (await api.get("/v2/apps/web")).json()["app"]
    # Marathon's fields only, unless Pallet's are set (the Marathon client refuses others)
    assert app["upgradeStrategy"] == {"minimumHealthCapacity": 1.0, "maximumOverCapacity": 1.0}
    MarathonApp.from_json(app)
    await converge(control)
    await agents_run_everything(api, control)

    strategy = {
        "minimumHealthCapacity": 1,
        "maximumOverCapacity": 1,
        "canaryInstances": 1,
        "progressDeadlineSeconds": 600,
    }
    r = await api.put("/v2/apps/web", json={"cmd": "sleep 601", "upgradeStrategy": strategy})
    assert r.status_code == 200, r.text
    deployment_id = r.json()["deploymentId"]
    app = (await api.get("/v2/apps/web")).json()["app"]
    assert app["upgradeStrategy"]["canaryInstances"] == 1
    assert app["upgradeStrategy"]["progressDeadlineSeconds"] == 600

    for _ in range(2):
        await converge(control)
        await agents_run_everything(api, control)
    assert len(control.state.tasks) == 3  # one canary beside the two old tasks
    (shown,) = (await api.get("/v2/deployments")).json()
    assert shown["canary"] == {"instances": 1, "paused": True, "promoted": False}

    r = await api.post(f"/v2/deployments/{deployment_id}/promote")
    assert r.status_code == 200, r.text
    assert r.json()["canary"]["promoted"] is True
    MarathonDeployment.from_json({k: v for k, v in r.json().items() if k != "canary"})
    r = await api.post(f"/v2/deployments/{deployment_id}/promote")
    assert r.status_code == 409 and "no canaries" in r.json()["message"]
    r = await api.post("/v2/deployments/nope/promote")
    assert r.status_code == 404
