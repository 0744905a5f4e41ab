"""Resident apps (local persistent volumes) through the API: accepted, their volumes in
the desired set of the agent they landed on, updates that would strand their data
refused as Marathon refuses them, wipe=true."""

from __future__ import annotations

import httpx
import pytest

from pallet.control import Control

from .conftest import register
from .test_lifecycle import converge

pytestmark = pytest.mark.anyio

VOLUME = {"containerPath": "data", "mode": "RW", "persistent": {"type": "root", "size": 64}}
APP = {
    "id": "/db",
    "cmd": "sleep 600",
    "cpus": 0.1,
    "mem": 32,
    "container": {"type": "MESOS", "volumes": [VOLUME]},
}


async def test_a_resident_app_and_the_updates_marathon_refuses(
    api: httpx.AsyncClient, control: Control
) -> None:
    await register(api, 2)
    r = await api.post("/v2/apps", json=APP)
    assert r.status_code == 201, r.text
    app = r.json()
    assert app["residency"] == {
        "relaunchEscalationTimeoutSeconds": 3600,
        "taskLostBehavior": "WAIT_FOREVER",
    }
    assert app["upgradeStrategy"] == {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.0}
    assert app["unreachableStrategy"] == "disabled"
    await converge(control)
    (task,) = control.state.tasks.values()
    r = await api.get(f"/v1/agent/nodes/{task.node_id}/desired")
    doc = r.json()
    (volume_id,) = doc["volumes"]
    assert doc["tasks"][0]["persistent_volumes"] == [
        {"container_path": "data", "size": 64, "id": volume_id}
    ]
    # Marathon's task JSON names the volume (LocalVolumeId), in every listing
    expected = [
        {
            "runSpecId": "/db",
            "containerPath": "data",
            "uuid": task.reservation,
            "persistenceId": volume_id,
        }
    ]
    (shown,) = (await api.get("/v2/apps/db/tasks")).json()["tasks"]
    assert shown["localVolumes"] == expected
    (listed,) = (await api.get("/v2/tasks")).json()["tasks"]
    assert listed["localVolumes"] == expected
    embedded = (await api.get("/v2/apps/db", params={"embed": "app.tasks"})).json()
    assert embedded["app"]["tasks"][0]["localVolumes"] == expected
    bigger = {**VOLUME, "persistent": {"type": "root", "size": 128}}
    for change, message in (
        (
            {"container": {"type": "MESOS", "volumes": [bigger]}},
            "Persistent volumes can not be changed!",
        ),
        ({"mem": 64}, "Resident Tasks may not change resource requirements!"),
    ):
        r = await api.put("/v2/apps/db", json=change, params={"force": "true"})
        assert r.status_code == 422, r.text
        assert r.json()["details"] == [{"path": "/", "errors": [message]}]
    r = await api.put("/v2/apps/db", json={"cmd": "sleep 700"}, params={"force": "true"})
    assert r.status_code == 200, r.text
    r = await api.delete(f"/v2/apps/db/tasks/{task.id}", params={"wipe": "true", "scale": "true"})
    assert r.status_code == 400
    assert r.json() == {"message": "You cannot use scale and wipe at the same time."}
    r = await api.delete(f"/v2/apps/db/tasks/{task.id}", params={"wipe": "true"})
    assert r.status_code == 200, r.text
    assert not control.state.reservations
