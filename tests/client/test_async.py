"""``AsyncClient`` speaks the same calls as ``Client`` and maps errors the same way, against
the master's real API (logs against the fake: serving them needs a real agent)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import httpx
import pytest

from client.fake_master import FakeMaster
from client.real_master import RealMaster
from pallet.client import AsyncClient, Client, InvalidRequest, MasterUnreachable, NotFound

T = TypeVar("T")


def run(body: Callable[[AsyncClient], Awaitable[T]], master: FakeMaster | RealMaster) -> T:
    async def main() -> T:
        async with AsyncClient("http://m:8080", transport=master.async_transport()) as client:
            return await body(client)

    return asyncio.run(main())


@pytest.fixture
def real() -> Iterator[RealMaster]:
    master = RealMaster()
    yield master
    master.close()


def test_the_same_answers_as_the_sync_client(real: RealMaster) -> None:
    async def body(client: AsyncClient) -> None:
        app = await client.create_app(
            {"id": "/web", "cmd": "x", "instances": 2, "cpus": 0.1, "mem": 32}
        )
        assert app.deployment_ids == ("0001",)
        assert [d.id for d in await client.list_deployments()] == ["0001"]
        await asyncio.to_thread(real.step)
        assert await client.list_deployments() == []
        tasks = await client.list_tasks("/web")
        assert len(tasks) == 2
        ref = await client.scale_app("/web", 1, force=True)
        assert ref.deployment_id not in ("", "0001")
        node = await client.get_node(tasks[0].node_id)
        assert tasks[0].id in [t.id for t in node.tasks]

    run(body, real)
    sync = Client("http://m:8080", transport=real.transport())
    assert [a.id for a in sync.list_apps()] == ["/web"]
    assert sync.get_app("/web").instances == 1
    assert [r.url.path for r in real.requests[:2]] == ["/v2/apps", "/v2/deployments"]


def test_errors_are_the_same_tree(real: RealMaster) -> None:
    async def invalid(client: AsyncClient) -> None:
        await client.create_app({"id": "/web", "cpus": -1, "cmd": "x"})

    with pytest.raises(InvalidRequest) as caught:
        run(invalid, real)
    assert [d.describe() for d in caught.value.details] == ["cpus: is below its minimum"]

    async def missing(client: AsyncClient) -> None:
        await client.get_app("/nope")

    with pytest.raises(NotFound, match="App '/nope' does not exist"):
        run(missing, real)


def test_an_unreachable_master() -> None:
    async def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    async def main() -> None:
        async with AsyncClient("m:1", transport=httpx.MockTransport(refuse)) as client:
            await client.list_nodes()

    with pytest.raises(MasterUnreachable, match=r"cannot reach the master at http://m:1 \("):
        asyncio.run(main())


def test_follow_log_stops_after_the_task_ends() -> None:
    fake = FakeMaster()
    task_id = fake.start_task("/web")
    fake.logs[(task_id, "stderr")] = b"1\n"
    fake.log_growth[task_id] = [b"2\n"]
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def body(client: AsyncClient) -> bytes:
        chunks = [c async for c in client.follow_log(task_id, "stderr", sleep=sleep)]
        everything = [c async for c in client.read_log(task_id, "stderr")]
        assert everything == [b"1\n2\n"]
        return b"".join(chunks)

    assert run(body, fake) == b"1\n2\n"
