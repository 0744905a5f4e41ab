"""The master's HTTP/1.1 protocol: uvicorn's httptools protocol with what uvicorn lacks,
connections per client and deadlines for a request's headers and body; does I/O.

uvicorn (0.55) arms no timer until a first response is sent: a client that connects and
says nothing, sends half its headers, or declares a body longer than it sends holds a
connection (and, for the body, a route awaiting it) for as long as it likes. Here:

    connection made ─▶ over its address's cap? 429 and close
                    ─▶ header deadline (from the connection, then from each request's
                       first byte) ─▶ headers complete ─▶ body deadline ─▶ body complete
    a deadline passing ─▶ 408 {"message"} and close (once an answer started: close)
    a request line and headers past ``header_bytes`` ─▶ 431 and close (httptools, unlike
    h11, has no bound of its own: ten seconds of headers would all be kept)

A deadline's timer is armed only when a chunk of data leaves a request's headers or body
incomplete: an agent's request nearly always comes in one chunk, and a timer armed and
cancelled per request was paid thousands of times a second at 12,500 agents. The answer
goes out in one write: uvicorn writes a response's status line and headers, then its
body, two sends (two system calls, two wake-ups of the client) for an answer of a few
hundred bytes; ``_OneWrite`` holds the head until the body's first write joins it.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from pallet.api.limits import LimitSettings

__all__ = ["guarded_protocol"]


class _OneWrite:
    """A response's transport as its cycle sees it: the cycle's first write (the status
    line and headers) is held and sent with the next one (the body), in one send. A head
    with no write after it in the same turn of the loop (a HEAD request, an answer that
    failed) goes out at the end of that turn, or when the transport closes."""

    __slots__ = ("_head", "_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._head: bytes | None = None
        self._held = False

    def write(self, data: bytes) -> None:
        if not self._held:
            self._held = True
            self._head = data
            self._loop.call_soon(self._flush)
            return
        head, self._head = self._head, None
        self._transport.write(data if head is None else head + data)

    def _flush(self) -> None:
        head, self._head = self._head, None
        if head is not None and not self._transport.is_closing():
            self._transport.write(head)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _raw(status: int, reason: str, message: str) -> bytes:
    body = json.dumps({"message": message}, separators=(",", ":")).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


def guarded_protocol(settings: LimitSettings) -> type[HttpToolsProtocol]:
    """A protocol class for ``uvicorn.Config(http=...)`` enforcing ``settings``' limits on
    connections and slow requests; one table of connections per server."""
    open_from: dict[str, int] = {}

    class GuardedProtocol(HttpToolsProtocol):
        _deadline: asyncio.TimerHandle | None = None
        _counted: str | None = None
        _head_bytes = 0
        _in_head = True
        """Bytes have come since the last request's headers, and not all of this one's."""
        _in_body = False
        """A request's headers have come and declared a body, not all of which has."""

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            host = self.client[0] if self.client else ""
            cap = settings.connections
            if cap > 0 and open_from.get(host, 0) >= cap:
                message = f"too many connections from this client (at most {cap}); close some"
                transport.write(_raw(429, "Too Many Requests", message))
                transport.close()
                return
            open_from[host] = open_from.get(host, 0) + 1
            self._counted = host
            self._arm(settings.header_timeout, "its headers")

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            host, self._counted = self._counted, None
            if host is not None:
                left = open_from.get(host, 1) - 1
                if left > 0:
                    open_from[host] = left
                else:
                    open_from.pop(host, None)
            super().connection_lost(exc)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._head_bytes, self._in_head = 0, True

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.transport.is_closing():
                return
            if self._in_body:  # (the deadline counts from the chunk with the headers' end)
                if self._deadline is None:
                    self._arm(settings.body_timeout, "its body")
                return
            if not self._in_head:  # (its headers ended in this chunk: the rest is body)
                return
            self._head_bytes += len(data)
            cap = settings.header_bytes
            if cap > 0 and self._head_bytes > cap:
                message = f"the request's line and headers exceed {cap} bytes"
                self._refuse(431, "Request Header Fields Too Large", message)
            elif self._deadline is None:  # (from the chunk with the request's first byte)
                self._arm(settings.header_timeout, "its headers")

        def on_headers_complete(self) -> None:
            self._disarm()
            self._head_bytes, self._in_head = 0, False
            cycle = getattr(self, "cycle", None)
            super().on_headers_complete()
            self._in_body = self._has_body()
            new = getattr(self, "cycle", None)
            if new is not None and new is not cycle:  # (not an upgrade)
                new.transport = _OneWrite(self.transport, self.loop)

        def on_message_complete(self) -> None:
            self._disarm()
            self._in_body = False
            super().on_message_complete()

        def _has_body(self) -> bool:
            for name, value in self.headers:
                if name == b"content-length":
                    return value.strip() not in (b"", b"0")
                if name == b"transfer-encoding":
                    return True
            return False

        def _arm(self, seconds: float, what: str) -> None:
            self._disarm()
            if seconds > 0:
                self._deadline = self.loop.call_later(seconds, self._expired, seconds, what)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expired(self, seconds: float, what: str) -> None:
            self._deadline = None
            if self.transport.is_closing():
                return
            self._refuse(
                408, "Request Timeout", f"the request did not send {what} within {seconds:g} s"
            )

        def _refuse(self, status: int, reason: str, message: str) -> None:
            """Answer ``status`` unless an answer started, and close the connection."""
            cycle: Any = getattr(self, "cycle", None)
            if cycle is None or not cycle.response_started or cycle.response_complete:
                # (a complete one is the last request's, on a connection kept alive)
                self.transport.write(_raw(status, reason, message))
            if cycle is not None:
                cycle.disconnected = True  # the route sees a disconnect; its answer is dropped
            self.transport.close()

    return GuardedProtocol
