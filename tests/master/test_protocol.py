"""The master's HTTP protocol on a real socket: a client that stalls in its headers or its
body gets a 408 and loses the connection, one with too many connections a 429, one with
endless headers a 431 (``master.protocol``); an answer goes out in one write."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send
from uvicorn.server import ServerState

from pallet.api.limits import LimitSettings
from pallet.bench.cluster import free_port
from pallet.master.protocol import guarded_protocol

LIMITS = LimitSettings(header_timeout=0.5, body_timeout=0.5, connections=3, header_bytes=4096)


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    body = body or b"empty"
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    port = free_port()
    config = uvicorn.Config(
        echo, host="127.0.0.1", port=port, http=guarded_protocol(LIMITS), log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    yield port
    server.should_exit = True
    thread.join(10)


def answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Everything the server sends until it closes (generous timeout: a loaded machine)."""
    sock.settimeout(20)
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers, body


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=20)


def test_a_normal_request_is_answered(port: int) -> None:
    with connect(port) as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")
        assert answer(s)[::2] == (200, b"hi")


def test_headers_that_never_end_get_408_and_the_connection_closes(port: int) -> None:
    with connect(port) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and nothing more
        status, headers, body = answer(s)
    assert status == 408 and headers["connection"] == "close"
    assert json.loads(body) == {"message": "the request did not send its headers within 0.5 s"}
    with connect(port) as s:  # a connection that never says anything is closed too
        assert answer(s)[0] == 408


def test_a_body_shorter_than_its_length_gets_408(port: int) -> None:
    with connect(port) as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly ten b")
        status, _, body = answer(s)
    assert status == 408
    assert json.loads(body)["message"] == "the request did not send its body within 0.5 s"


def test_endless_headers_get_431(port: int) -> None:
    with connect(port) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"a" * 8000 + b"\r\n")
        status, _, body = answer(s)
    assert status == 431 and "exceed 4096 bytes" in json.loads(body)["message"]


def test_connections_past_the_cap_get_429(port: int) -> None:
    held = [connect(port) for _ in range(3)]
    try:
        time.sleep(0.1)  # let the server count them (it answers the fourth at once)
        with connect(port) as s:
            status, _, body = answer(s)
        assert status == 429 and "too many connections" in json.loads(body)["message"]
    finally:
        for s in held:
            s.close()


def test_a_stalled_second_request_on_a_kept_alive_connection_gets_408(port: int) -> None:
    # The header deadline is armed per request, from the chunk its first byte came in,
    # not only once per connection.
    with connect(port) as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
        time.sleep(0.8)  # past the header deadline: the first request did not leave one
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and nothing more
        data = answer_raw(s)
    assert data.startswith(b"HTTP/1.1 200 ") and b"\r\n\r\nhi" in data
    assert b"HTTP/1.1 408 " in data and data.count(b"HTTP/1.1 ") == 2


def answer_raw(sock: socket.socket) -> bytes:
    sock.settimeout(20)
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


class _Transport:
    """What a protocol writes, write by write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 80)}.get(name, default)

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


async def _protocol_writes(request: bytes) -> list[bytes]:
    config = uvicorn.Config(echo, http=guarded_protocol(LIMITS), log_level="warning")
    protocol = guarded_protocol(LIMITS)(config=config, server_state=ServerState(), app_state={})
    transport = _Transport()
    protocol.connection_made(transport)
    protocol.data_received(request)
    for _ in range(20):  # the request's task, then the held head's flush
        await asyncio.sleep(0)
    protocol.connection_lost(None)
    return transport.writes


@pytest.mark.anyio
async def test_an_answer_goes_out_in_one_write() -> None:
    writes = await _protocol_writes(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
    assert len(writes) == 1  # uvicorn alone: the head, then the body
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n") and writes[0].endswith(b"\r\n\r\nhello")


@pytest.mark.anyio
async def test_a_head_without_a_body_write_still_goes_out() -> None:
    # HEAD: uvicorn writes no body, so the held head goes at the end of the loop's turn.
    writes = await _protocol_writes(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert len(writes) == 1 and writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert writes[0].endswith(b"\r\n\r\n")


@pytest.mark.anyio
async def test_a_held_head_goes_out_before_the_connection_closes() -> None:
    writes = await _protocol_writes(b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert len(writes) == 1 and writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"connection: close\r\n" in writes[0]
