"""``AsyncClient`` speaks the same calls as ``Client`` and maps errors the same way."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
import pytest

from client.fake_master import FakeMaster
from pallet.client import AsyncClient, Client, InvalidRequest, MasterUnreachable, NotFound

T = TypeVar("T")


def run(body: Callable[[AsyncClient], Awaitable[T]], fake: FakeMaster) -> T:
    async def main() -> T:
        async with AsyncClient("http://m:8080", transport=fake.async_transport()) as client:
            return await body(client)

    return asyncio.run(main())


def test_the_same_answers_as_the_sync_client() -> None:
    fake = FakeMaster()

    async def body(client: AsyncClient) -> None:
        app = await client.create_app({"id": "/web", "cmd": "x", "instances": 2})
        assert app.deployment_ids == ("dep-1",)
        assert [d.id for d in await client.list_deployments()] == ["dep-1"]
        await client.list_deployments()
        assert len(await client.list_tasks("/web")) == 2
        ref = await client.scale_app("/web", 1, force=True)
        assert ref.deployment_id == "dep-2"
        node = await client.get_node("node-1")
        assert len(node.tasks) == 2

    run(body, fake)
    sync = Client("http://m:8080", transport=fake.transport())
    assert [a.id for a in sync.list_apps()] == ["/web"]
    assert sync.get_app("/web").instances == 1
    assert [r.url.path for r in fake.requests[:2]] == ["/v2/apps", "/v2/deployments"]


def test_errors_are_the_same_tree() -> None:
    fake = FakeMaster()

    async def invalid(client: AsyncClient) -> None:
        await client.create_app({"id": "/web", "cpus": 0, "cmd": "x"})

    with pytest.raises(InvalidRequest) as caught:
        run(invalid, fake)
    assert [d.describe() for d in caught.value.details] == ["cpus: is below its minimum"]

    async def missing(client: AsyncClient) -> None:
        await client.get_app("/nope")

    with pytest.raises(NotFound, match="App '/nope' does not exist"):
        run(missing, fake)


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
    fake.apps["/web"] = {"id": "/web"}
    fake._start_task("/web")
    (task_id,) = fake.tasks
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
