"""The client against the master's real API (``pallet.api.create_api`` over a memory store,
through httpx's ASGI transport): every answer the master gives must read into the
client's models, and its errors into the ``ClientError`` tree. Control's loops are run
by hand; the agents' side is played over the agent protocol."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from pallet.api import create_api
from pallet.api.marathon import InfoSettings
from pallet.client import AsyncClient, Conflict, InvalidRequest, NotFound
from pallet.control import Control, ControlConfig
from pallet.model.clock import FakeClock
from pallet.store import open_store

pytestmark = pytest.mark.anyio

INFO = InfoSettings(
    version="0.1.0",
    leader="127.0.0.1:8080",
    elected=True,
    cluster_id="test",
    hostname="127.0.0.1",
    http_port=8080,
    store_url="memory://",
)


def node_body(i: int) -> dict[str, Any]:
    """What an agent registers (the agent protocol): 2 cpus, 1 GiB, 100 ports."""
    return {
        "node": {
            "id": f"node-{i}",
            "hostname": f"127.0.0.{i + 2}",
            "capacity": [2000, 1024, 1000, 0],
            "ports": [f"{31000 + 100 * i}-{31099 + 100 * i}"],
            "attributes": {"rack": f"r{i}"},
        },
        "address": f"http://127.0.0.{i + 2}:5051",
        "boot_id": "boot-1",
    }


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def control() -> AsyncIterator[Control]:
    clock = FakeClock()
    store = await open_store("memory://", clock=clock, expiry_interval=None)
    counter = itertools.count()
    ctl = Control(
        store,
        ControlConfig(heartbeat_grace=5.0, seed=3),
        clock=clock,
        new_id=lambda: f"id{next(counter)}",
    )
    await ctl.load()
    yield ctl
    await ctl.stop()
    await store.close()


@pytest.fixture
async def pallet(control: Control) -> AsyncIterator[AsyncClient]:
    transport = httpx.ASGITransport(app=create_api(control, INFO, manage_control=False))
    async with AsyncClient("http://master", transport=transport) as client:
        for i in range(2):
            r = await client._http.post("/v1/agent/register", json=node_body(i))
            assert r.status_code == 200, r.text
        yield client


async def converge(pallet: AsyncClient, control: Control) -> None:
    """Schedule, then let every agent report its new tasks STARTING and RUNNING."""
    for _ in range(3):
        await control.controller.reconcile()
        await control.scheduler.run_once()
    for node_id in control.state.nodes:
        r = await pallet._http.get(f"/v1/agent/nodes/{node_id}/desired", params={"wait": 0})
        statuses = [
            {"task_id": spec["task_id"], "state": state, "seq": seq}
            for spec in r.json()["tasks"]
            if control.state.tasks[spec["task_id"]].seq == 0
            for seq, state in ((1, "TASK_STARTING"), (2, "TASK_RUNNING"))
        ]
        if statuses:
            await pallet._http.post(
                f"/v1/agent/nodes/{node_id}/status", json={"statuses": statuses}
            )
    await control.controller.reconcile()


async def test_an_apps_life_reads_into_the_models(pallet: AsyncClient, control: Control) -> None:
    app = await pallet.create_app(
        {"id": "/prod/web", "cmd": "sleep 600", "cpus": 0.1, "mem": 32, "instances": 2}
    )
    assert app.id == "/prod/web" and app.instances == 2 and len(app.deployment_ids) == 1
    (deployment,) = await pallet.list_deployments()
    assert deployment.id == app.deployment_ids[0] and deployment.affected_apps == ("/prod/web",)

    await converge(pallet, control)
    shown = await pallet.get_app("prod/web")
    assert (shown.tasks_running, shown.deployment_ids) == (2, ())
    assert {t.state for t in shown.tasks} == {"TASK_RUNNING"}
    (listed,) = await pallet.list_apps()
    assert listed.tasks_running == 2 and listed.cpus == pytest.approx(0.1)
    tasks = await pallet.list_tasks()
    assert {t.id for t in tasks} == {t.id for t in shown.tasks}
    assert all(t.node_id in control.state.nodes and t.ports for t in tasks)

    nodes = await pallet.list_nodes()
    assert sorted(n.id for n in nodes) == sorted(control.state.nodes)
    busy = next(n for n in nodes if n.task_ids)
    assert busy.capacity.cpus == 2.0 and busy.capacity.ports
    assert busy.allocated.cpus == pytest.approx(0.1 * len(busy.task_ids))
    detail = await pallet.get_node(busy.id)
    assert [t.id for t in detail.tasks] == list(busy.task_ids)

    ref = await pallet.scale_app("/prod/web", 3)
    assert [d.id for d in await pallet.list_deployments()] == [ref.deployment_id]
    with pytest.raises(Conflict) as locked:
        await pallet.restart_app("/prod/web")
    assert locked.value.deployment_ids == (ref.deployment_id,)
    await converge(pallet, control)
    assert (await pallet.get_app("/prod/web")).tasks_running == 3

    killed = await pallet.kill_tasks([tasks[0].id])
    assert [t.id for t in killed.tasks] == [tasks[0].id] and killed.deployment is None
    scaled = await pallet.kill_tasks([tasks[1].id], scale=True)
    assert scaled.deployment is not None
    assert len(await pallet.app_versions("/prod/web")) >= 3

    gone = await pallet.delete_app("/prod/web", force=True)
    assert gone.deployment_id
    with pytest.raises(NotFound, match="App '/prod/web' does not exist"):
        await pallet.get_app("/prod/web")


async def test_the_queue_says_why_nothing_fits(pallet: AsyncClient, control: Control) -> None:
    await pallet.create_app({"id": "/big", "cmd": "sleep 1", "mem": 4096, "cpus": 0.1})
    await converge(pallet, control)
    (item,) = await pallet.list_queue()
    assert item.app_id == "/big" and item.count == 1 and item.nodes_considered == 2
    assert [(r.reason, r.declined) for r in item.reasons] == [("InsufficientMemory", 2)]


async def test_bad_input_carries_marathons_details(pallet: AsyncClient) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await pallet.create_app({"id": "/web", "cmd": "x", "cpus": -1, "mem": "lots"})
    labels = {d.label for d in caught.value.details}
    assert {"cpus", "mem"} <= labels
    await pallet.create_app({"id": "/web", "cmd": "x"})
    with pytest.raises(Conflict, match="already exists"):
        await pallet.create_app({"id": "/web", "cmd": "x"})
    with pytest.raises(NotFound):
        await pallet.get_node("node-9")
    info = await pallet.info()
    assert info.elected and info.leader == "127.0.0.1:8080"
    assert await pallet.ping() == "pong"
