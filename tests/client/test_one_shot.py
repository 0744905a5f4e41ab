"""``OneShotSender`` (the CLI fast path's GET) reads what ``StdlibSender`` reads from the
same bytes on the wire, fails as it fails, and hands what it does not plainly understand
to it."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from pallet.client.wire import Answer, OneShotSender, StdlibSender, TransportFailure


@contextmanager
def canned(reply: bytes) -> Iterator[tuple[str, list[bytes]]]:
    """A server that reads one request per connection and answers ``reply``, then closes;
    yields its URL and the requests it read."""
    listener = socket.create_server(("127.0.0.1", 0))
    requests: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    part = conn.recv(65536)
                    if not part:
                        break
                    data += part
                requests.append(data)
                conn.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", requests
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def _read(sender: OneShotSender | StdlibSender) -> Answer | str:
    try:
        got = sender.send("GET", "/v2/apps", {"embed": ["a", "b"]})
        return repr((got.status, dict(got.headers), got.content, got.reason))
    except TransportFailure as exc:
        return f"failure: {exc.reason}"
    finally:
        sender.close()


JSON = b'{"apps": []}'


@pytest.mark.parametrize(
    "reply",
    [
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n" + JSON,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n" + JSON[:5] + b"\r\n"
        b"7;x=y\r\n" + JSON[5:] + b"\r\n0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + JSON,  # to the close
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found",
        b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.2:8080/v2/apps\r\n"
        b"Content-Length: 0\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\n\r\n",
        # not plain: handed to http.client, which has the last word
        b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n" + JSON,  # cut short
        b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 12\r\n\r\n"
        + JSON,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\n X: folded\r\nContent-Length: 12\r\n\r\n" + JSON,
        b"ICY 200 OK\r\n\r\n",
        b"HTTP/1.1 20 OK\r\n\r\n",
        b"",  # closed without a word
        b"garbage without an end of headers",
    ],
)
def test_it_reads_what_http_client_reads(reply: bytes) -> None:
    with canned(reply) as (url, requests):
        quick = _read(OneShotSender(url, 5, {"Authorization": "token=t"}))
        first = len(requests)
        slow = _read(StdlibSender(url, 5, {"Authorization": "token=t"}))
    assert quick == slow
    # the same request line and headers, but for closing the connection
    one, other = requests[0], requests[first]
    assert one.replace(b"Connection: close\r\n", b"") == other


def test_a_refused_connection_fails_alike() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        url = f"http://127.0.0.1:{taken.getsockname()[1]}"
    assert (
        _read(OneShotSender(url, 5))
        == _read(StdlibSender(url, 5))
        == ("failure: connection refused")
    )


def test_silence_fails_alike() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:  # accepts, never answers
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        assert (
            _read(OneShotSender(url, 0.3))
            == _read(StdlibSender(url, 0.3))
            == ("failure: no answer within 0.3 s")
        )
