"""The master calls an agent only at the address it registered from, on the log route it
builds itself, and passes on only a log chunk (server-side request forgery, issue 14)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from pallet.api import create_api
from pallet.control import Control

from .conftest import INFO, node_body
from .test_lifecycle import converge

pytestmark = pytest.mark.anyio


async def test_an_agent_cannot_register_someone_elses_address(control: Control) -> None:
    app = create_api(control, INFO, manage_control=False)
    transport = httpx.ASGITransport(app=app, client=("10.250.0.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://master") as api:
        for address in ("http://169.254.169.254:80", "http://10.250.0.7:5051/latest/meta-data?"):
            body = node_body(0) | {"address": address}
            r = await api.post("/v1/agent/register", json=body)
            assert r.status_code == 422, r.text
            assert r.json()["details"][0]["path"] == "/address"
        assert control.state.nodes == {}
        r = await api.post(
            "/v1/agent/register", json=node_body(0) | {"address": "http://0.0.0.0:5051"}
        )
        assert r.status_code == 200
        assert control.state.nodes["node-0"].address == "http://10.250.0.7:5051"


class FakeAgent:
    """A log server that answers whatever the test sets, and records what it was asked."""

    def __init__(self) -> None:
        self.answer: tuple[int, bytes] = (200, b"{}")
        self.requests: list[str] = []
        self.port = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.requests.append(head.split(b"\r\n", 1)[0].decode())
        status, body = self.answer
        writer.write(
            b"HTTP/1.1 %d X\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
            % (status, len(body), body)
        )
        await writer.drain()
        writer.close()


@pytest.fixture
async def fake_agent() -> AsyncIterator[FakeAgent]:
    agent = FakeAgent()
    server = await asyncio.start_server(agent.serve, "127.0.0.1", 0)
    agent.port = server.sockets[0].getsockname()[1]
    yield agent
    server.close()


async def test_the_log_proxy_passes_on_only_a_log_chunk(
    api: httpx.AsyncClient, control: Control, fake_agent: FakeAgent
) -> None:
    body = node_body(0) | {"address": f"http://127.0.0.1:{fake_agent.port}"}
    assert (await api.post("/v1/agent/register", json=body)).status_code == 200
    r = await api.post("/v2/apps", json={"id": "/web", "cmd": "sleep 60", "mem": 32, "cpus": 0.1})
    assert r.status_code == 201
    await converge(control)
    (task_id,) = control.state.tasks

    chunk = {"task_id": task_id, "stream": "stdout", "offset": 0, "size": 2, "next_offset": 2}
    fake_agent.answer = (200, json.dumps(chunk | {"data": "hi", "extra": "dropped"}).encode())
    r = await api.get(f"/v1/tasks/{task_id}/logs", params={"offset": "-10"})
    assert r.status_code == 200 and r.json() == chunk | {"data": "hi"}
    assert fake_agent.requests[-1] == f"GET /v1/logs/{task_id}?stream=stdout&offset=-10 HTTP/1.1"

    for answer in [
        (200, b"root:$6$secret-hash:19000:0:99999:7:::\n"),  # what an SSRF would relay
        (200, json.dumps({"task_id": "other.1", "data": "x"}).encode()),
        (302, b""),
        (500, b"<html>internal</html>"),
    ]:
        fake_agent.answer = answer
        r = await api.get(f"/v1/tasks/{task_id}/logs")
        assert r.status_code == 502, r.text
        assert "secret" not in r.text and "html" not in r.text
    fake_agent.answer = (404, b'{"message": "no stdout for that task"}')
    r = await api.get(f"/v1/tasks/{task_id}/logs")
    assert r.status_code == 404 and r.json() == {"message": "no stdout for that task"}


async def test_a_pod_containers_log_is_asked_for_by_name(
    api: httpx.AsyncClient, control: Control, fake_agent: FakeAgent
) -> None:
    body = node_body(0) | {"address": f"http://127.0.0.1:{fake_agent.port}"}
    assert (await api.post("/v1/agent/register", json=body)).status_code == 200
    pod = {
        "id": "/duo",
        "containers": [
            {
                "name": "a",
                "exec": {"command": {"shell": "sleep 60"}},
                "resources": {"cpus": 0.1, "mem": 32},
            },
            {
                "name": "b",
                "exec": {"command": {"shell": "sleep 60"}},
                "resources": {"cpus": 0.1, "mem": 32},
            },
        ],
    }
    assert (await api.post("/v2/pods", json=pod)).status_code == 201
    await converge(control)
    (task_id,) = control.state.tasks
    chunk = {"task_id": task_id, "stream": "stderr", "offset": 0, "size": 2, "next_offset": 2}
    fake_agent.answer = (200, json.dumps(chunk | {"data": "hi"}).encode())
    r = await api.get(f"/v1/tasks/{task_id}/logs", params={"container": "b", "stream": "stderr"})
    assert r.status_code == 200 and r.json()["data"] == "hi"
    assert fake_agent.requests[-1] == (f"GET /v1/logs/{task_id}?stream=stderr&container=b HTTP/1.1")
    asked = len(fake_agent.requests)
    r = await api.get(f"/v1/tasks/{task_id}/logs", params={"container": "c"})
    assert r.status_code == 404 and "(it has a, b)" in r.json()["message"]
    r = await api.get(f"/v1/tasks/{task_id}/logs", params={"container": "../x"})
    assert r.status_code == 422
    assert len(fake_agent.requests) == asked  # neither reached the agent
