"""A small HTTP/1.1 client over asyncio streams for the simulated agents: keep-alive
connections to one master, requests written by hand, answers read with httptools (the
parser uvicorn uses); does network I/O.

httpx costs about a millisecond of CPU a request in the client (its transports, pools and
models): thousands of simulated agents sharing two cores with the master then measure
themselves more than the master (``bench scale``: the agents used 2.7 times the
master's CPU). This one sends the same bytes on the wire (JSON bodies, ``content-length``,
keep-alive) for a tenth of that; it is not a general client: no redirects, no chunked
request bodies, no TLS, one host.
"""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import urlsplit

import httptools

__all__ = ["HttpError", "RawHttp"]


class HttpError(Exception):
    """The request did not get an answer (connection refused or lost, timeout, bad reply);
    ``kind`` names which, as the bench's error counts do."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class _Answer:
    """httptools' callbacks for one response."""

    __slots__ = ("body", "close", "done", "status")

    def __init__(self) -> None:
        self.body: list[bytes] = []
        self.done = False
        self.close = False
        self.status = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"connection" and value.lower() == b"close":
            self.close = True

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.done = True


class _Conn:
    __slots__ = ("idle_since", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.idle_since = time.monotonic()

    def close(self) -> None:
        self.writer.close()


class RawHttp:
    """Up to ``size`` keep-alive connections to ``url``'s host; a connection idle longer
    than ``keepalive`` seconds is closed rather than reused (well inside the server's own
    keep-alive, so the server never closes one just as a request goes out)."""

    def __init__(self, url: str, size: int, keepalive: float = 2.0) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self._host_header = f"host: {parts.netloc}\r\n".encode()
        self.keepalive = keepalive
        self._idle: list[_Conn] = []
        self._slots = asyncio.Semaphore(size)

    async def request(
        self, method: str, path: str, doc: object = None, timeout: float = 60.0
    ) -> tuple[int, bytes]:
        """(status, body) of ``method path`` with ``doc`` as its JSON body (None: no
        body); waiting for a free connection is not timed."""
        body = b"" if doc is None else json.dumps(doc, separators=(",", ":")).encode()
        head = (
            f"{method} {path} HTTP/1.1\r\n".encode()
            + self._host_header
            + b"content-type: application/json\r\ncontent-length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
        )
        async with self._slots:
            conn = self._take()
            try:
                async with asyncio.timeout(timeout):
                    if conn is None:
                        reader, writer = await asyncio.open_connection(self.host, self.port)
                        conn = _Conn(reader, writer)
                    conn.writer.write(head + body)
                    answer = _Answer()
                    parser = httptools.HttpResponseParser(answer)
                    while not answer.done:
                        chunk = await conn.reader.read(65536)
                        if not chunk:
                            raise HttpError("RemoteProtocolError")
                        parser.feed_data(chunk)
                    answer.status = parser.get_status_code()
            except TimeoutError:
                if conn is not None:
                    conn.close()
                raise HttpError("Timeout") from None
            except HttpError:
                if conn is not None:
                    conn.close()
                raise
            except (OSError, httptools.HttpParserError) as e:
                if conn is not None:
                    conn.close()
                raise HttpError(type(e).__name__) from None
            if answer.close:
                conn.close()
            else:
                conn.idle_since = time.monotonic()
                self._idle.append(conn)
        return answer.status, b"".join(answer.body)

    def _take(self) -> _Conn | None:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if now - conn.idle_since < self.keepalive and not conn.reader.at_eof():
                return conn
            conn.close()
        return None

    def close(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()
