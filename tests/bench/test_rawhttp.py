"""The simulated agents' HTTP client against a plain asyncio server: JSON bodies and
answers, keep-alive reuse, ``connection: close``, and every failure an ``HttpError``."""

from __future__ import annotations

import asyncio
import json

import pytest

from pallet.bench.rawhttp import HttpError, RawHttp

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _server(answer: bytes) -> tuple[asyncio.Server, list[bytes], list[int]]:
    """Echoes each request's body length and answers ``answer``'s status line onwards;
    ``seen`` holds each request's head, ``conns`` counts connections."""
    seen: list[bytes] = []
    conns: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conns.append(1)
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            seen.append(head)
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            body = await reader.readexactly(length)
            doc = b'{"n":%d}' % len(body)
            writer.write(answer.replace(b"{len}", b"%d" % len(doc)).replace(b"{doc}", doc))
            await writer.drain()
            if b"connection: close" in answer or b"truncated" in answer:
                break
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, seen, conns


def _url(server: asyncio.Server) -> str:
    return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len}\r\n\r\n{doc}"


async def test_json_round_trip_and_keep_alive() -> None:
    server, seen, conns = await _server(OK)
    client = RawHttp(_url(server), 4)
    try:
        for doc in ({"a": 1}, {"b": [1, 2]}, None):
            status, body = await client.request("POST", "/x?y=1", doc)
            expected = 0 if doc is None else len(json.dumps(doc, separators=(",", ":")))
            assert status == 200 and json.loads(body) == {"n": expected}
        assert len(conns) == 1  # one connection, reused
        assert seen[0].startswith(b"POST /x?y=1 HTTP/1.1\r\n")
        assert b"content-type: application/json" in seen[0]
    finally:
        client.close()
        server.close()


async def test_a_closed_connection_is_not_reused() -> None:
    answer = b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 2\r\n\r\n{}"
    server, _seen, conns = await _server(answer)
    client = RawHttp(_url(server), 4)
    try:
        for _ in range(2):
            status, body = await client.request("GET", "/", None)
            assert status == 408 and body == b"{}"
        assert len(conns) == 2
    finally:
        client.close()
        server.close()


async def test_failures_are_http_errors() -> None:
    truncated = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\ntruncated"
    server, _seen, _conns = await _server(truncated)
    url = _url(server)
    client = RawHttp(url, 4)
    try:
        with pytest.raises(HttpError) as e:
            await client.request("GET", "/", None)
        assert e.value.kind == "RemoteProtocolError"
    finally:
        client.close()
        server.close()
    await server.wait_closed()
    refused = RawHttp(url, 1)
    with pytest.raises(HttpError) as e:
        await refused.request("GET", "/", None)
    assert e.value.kind in ("ConnectionRefusedError", "OSError")

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1 << 16)
        await asyncio.sleep(5)
        writer.close()

    quiet = await asyncio.start_server(silent, "127.0.0.1", 0)
    client = RawHttp(_url(quiet), 1)
    try:
        with pytest.raises(HttpError) as e:
            await client.request("GET", "/", None, timeout=0.2)
        assert e.value.kind == "Timeout"
    finally:
        quiet.close()
