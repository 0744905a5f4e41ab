"""Persistent volumes of type path and mount through the API: placed only on agents
whose operator disks have room (a mount disk used whole), the chosen disk in the slot
and in the agent's desired set, and the queue saying why an instance waits."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from pallet.control import Control

from .conftest import node_body
from .test_lifecycle import converge

pytestmark = pytest.mark.anyio


def app(kind: str, size: int, instances: int = 1) -> dict[str, Any]:
    volume = {"containerPath": "data", "mode": "RW", "persistent": {"type": kind, "size": size}}
    return {
        "id": f"/{kind}db",
        "cmd": "sleep 600",
        "cpus": 0.1,
        "mem": 32,
        "instances": instances,
        "container": {"type": "MESOS", "volumes": [volume]},
    }


async def register(api: httpx.AsyncClient, i: int, disks: list[dict[str, Any]]) -> None:
    body = node_body(i)
    body["node"]["disks"] = disks
    r = await api.post("/v1/agent/register", json=body)
    assert r.status_code == 200, r.text


async def desired_volumes(api: httpx.AsyncClient, node_id: str) -> list[dict[str, Any]]:
    r = await api.get(f"/v1/agent/nodes/{node_id}/desired", params={"after": 0, "wait": 0})
    return [v for t in r.json()["tasks"] for v in t["persistent_volumes"]]


async def test_path_volumes_share_a_disk_while_it_has_room(
    api: httpx.AsyncClient, control: Control
) -> None:
    await register(api, 0, [])
    await register(api, 1, [{"type": "path", "root": "/mnt/ssd1", "size": 100}])
    r = await api.post("/v2/apps", json=app("path", 40, instances=3))
    assert r.status_code == 201, r.text
    assert r.json()["container"]["volumes"][0]["persistent"]["type"] == "path"
    await converge(control)
    # two 40 MiB volumes fit the 100 MiB disk; the third instance waits
    tasks = list(control.state.tasks.values())
    assert len(tasks) == 2 and {t.node_id for t in tasks} == {"node-1"}
    volumes = await desired_volumes(api, "node-1")
    assert [(v["type"], v["source"], v["size"]) for v in volumes] == [("path", "/mnt/ssd1", 40)] * 2
    assert len({v["id"] for v in volumes}) == 2
    assert list(control.state.queue["/pathdb"].reasons) == [("no path or mount disk with room", 2)]
    (item,) = (await api.get("/v2/queue")).json()["queue"]
    summary = item["processedOffersSummary"]["rejectSummaryLastOffers"]
    assert {s["reason"]: s["declined"] for s in summary}["InsufficientDisk"] == 2
    (shown,) = [n for n in (await api.get("/v1/nodes")).json()["nodes"] if n["id"] == "node-1"]
    assert shown["disks"] == [{"type": "path", "root": "/mnt/ssd1", "size": 100, "allocated": 80}]
    # the node's own disk is not used for them
    (node,) = [n for n in control.state.view.nodes if n.id == "node-1"]
    row = control.state.view.row["node-1"]
    assert control.state.view.free_disk[row] == node.capacity.disk_mib
    # a slot dropped frees its disk
    slot = next(iter(control.state.reservations))
    control.state.drop_reservation(slot, control.state.revision)
    assert control.state.view.disk_used[row]["/mnt/ssd1"] == 40


async def test_a_mount_disk_takes_one_volume_whole(
    api: httpx.AsyncClient, control: Control
) -> None:
    mounts = [{"type": "mount", "root": "/mnt/m1", "size": 500}]
    await register(api, 0, mounts)
    await register(api, 1, [*mounts, {"type": "mount", "root": "/mnt/m2", "size": 50}])
    r = await api.post("/v2/apps", json=app("mount", 100, instances=3))
    assert r.status_code == 201, r.text
    await converge(control)
    # each 500 MiB mount disk takes one; the 50 MiB one is too small: one waits
    where = []
    for t in control.state.tasks.values():
        slot = control.state.reservations[t.reservation or ""]
        where += [(t.node_id, v.source) for v in slot.volumes]
        (shown,) = [
            v for v in await desired_volumes(api, t.node_id) if v["id"] == slot.volumes[0].id
        ]
        assert (shown["type"], shown["source"]) == ("mount", slot.volumes[0].source)
    where.sort()
    assert where == [("node-0", "/mnt/m1"), ("node-1", "/mnt/m1")]
    assert list(control.state.queue["/mountdb"].reasons) == [("no path or mount disk with room", 2)]


async def test_an_agent_registering_a_bad_disk_is_refused(api: httpx.AsyncClient) -> None:
    body = node_body(0)
    body["node"]["disks"] = [{"type": "tape", "root": "/mnt/t", "size": 5}]
    r = await api.post("/v1/agent/register", json=body)
    assert r.status_code == 422, r.text
    assert "must be path or mount" in r.text


async def test_max_size_bounds_the_mount_disk(api: httpx.AsyncClient, control: Control) -> None:
    await register(api, 0, [{"type": "mount", "root": "/mnt/big", "size": 5000}])
    await register(api, 1, [{"type": "mount", "root": "/mnt/small", "size": 200}])
    body = app("mount", 100)
    body["container"]["volumes"][0]["persistent"]["maxSize"] = 1000
    r = await api.post("/v2/apps", json=body)
    assert r.status_code == 201, r.text
    await converge(control)
    (slot,) = control.state.reservations.values()
    assert (slot.node_id, slot.volumes[0].source) == ("node-1", "/mnt/small")
    assert slot.volumes[0].max_size == 1000


@pytest.mark.parametrize(
    ("persistent", "message"),
    [
        (
            {"type": "path", "size": 10, "maxSize": 20},
            "is only for persistent volumes of type mount",
        ),
        ({"type": "mount", "size": 10, "maxSize": 5}, "must be a whole number of MiB >= size"),
        ({"type": "tape", "size": 10}, "must be root, path or mount"),
    ],
)
async def test_bad_disk_volumes_are_422_with_the_path(
    api: httpx.AsyncClient, persistent: dict[str, Any], message: str
) -> None:
    body = app("mount", 10)
    body["container"]["volumes"][0]["persistent"] = persistent
    r = await api.post("/v2/apps", json=body)
    assert r.status_code == 422, r.text
    paths = {d["path"]: d["errors"] for d in r.json()["details"]}
    field = "maxSize" if "maxSize" in persistent else "type"
    assert paths[f"/container/volumes(0)/persistent/{field}"] == [message]
