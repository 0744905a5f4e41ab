"""The async client against the master's real API (``RealMaster``: ``create_api`` over a
memory store): every answer the master gives must read into the client's models, and its
errors into the ``ClientError`` tree. Control's loops are run by hand; the agents' side
is played over the agent protocol."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from client.real_master import RealMaster
from pallet.client import AsyncClient, Conflict, InvalidRequest, NotFound

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def real() -> Iterator[RealMaster]:
    master = RealMaster()
    yield master
    master.close()


@pytest.fixture
async def pallet(real: RealMaster) -> AsyncIterator[AsyncClient]:
    async with AsyncClient("http://master", transport=real.async_transport()) as client:
        yield client


async def converge(real: RealMaster) -> None:
    """Control's loops run and every agent starts what it was given (in the master's
    thread: its loop is not this test's)."""
    await asyncio.to_thread(real.step)


async def test_an_apps_life_reads_into_the_models(pallet: AsyncClient, real: RealMaster) -> None:
    app = await pallet.create_app(
        {"id": "/prod/web", "cmd": "sleep 600", "cpus": 0.1, "mem": 32, "instances": 2}
    )
    assert app.id == "/prod/web" and app.instances == 2 and len(app.deployment_ids) == 1
    (deployment,) = await pallet.list_deployments()
    assert deployment.id == app.deployment_ids[0] and deployment.affected_apps == ("/prod/web",)

    await converge(real)
    shown = await pallet.get_app("prod/web")
    assert (shown.tasks_running, shown.deployment_ids) == (2, ())
    assert {t.state for t in shown.tasks} == {"TASK_RUNNING"}
    (listed,) = await pallet.list_apps()
    assert listed.tasks_running == 2 and listed.cpus == pytest.approx(0.1)
    tasks = await pallet.list_tasks()
    assert {t.id for t in tasks} == {t.id for t in shown.tasks}
    assert all(t.node_id in real.control.state.nodes and t.ports for t in tasks)

    nodes = await pallet.list_nodes()
    assert sorted(n.id for n in nodes) == sorted(real.control.state.nodes)
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
    await converge(real)
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


async def test_the_queue_says_why_nothing_fits(pallet: AsyncClient, real: RealMaster) -> None:
    await pallet.create_app({"id": "/big", "cmd": "sleep 1", "mem": 4096, "cpus": 0.1})
    await converge(real)
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
