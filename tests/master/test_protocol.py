"""The master's HTTP protocol on a real socket: a client that stalls in its headers or its
body gets a 408 and loses the connection, one with too many connections a 429, one with
endless headers a 431 (``master.protocol``)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

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
