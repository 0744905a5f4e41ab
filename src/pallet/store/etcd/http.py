"""A small HTTP/1.1 client for etcd's JSON gateway, on asyncio streams with httptools'
parser: keep-alive connections per member, and streaming answers read line by line; does I/O.

httpx (which the rest of Pallet uses) costs about 5 ms of CPU per request here, four
times what etcd takes to answer, and slows down further under concurrency; the gateway
needs only POST with a JSON body and answers with a length or chunks, which this covers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
from collections import deque

import httptools

__all__ = ["ConnectFailed", "HttpPool", "HttpStream", "ResponseLost"]

_READ = 65536


class ConnectFailed(Exception):
    """No connection could be made: the request was not sent."""


class ResponseLost(Exception):
    """The request was sent (or may have been) but no whole answer came back."""


class _Answer:
    """httptools' callbacks: collects one answer's body; ``complete`` at its end."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.headers_done = False
        self.complete = False
        self.status = 0
        self.keep_alive = False
        self.body = bytearray()

    def on_headers_complete(self) -> None:
        # read here: once the answer is complete the parser has reset both
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.complete = True


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @property
    def alive(self) -> bool:
        """Whether an idle connection can carry a request. The server sends nothing on an
        idle connection, so anything to read there means it closed (maybe just now, before
        the event loop noticed): asking the socket saves a write sent into a dead member."""
        if self.reader.at_eof() or self.writer.is_closing():
            return False
        sock = self.writer.get_extra_info("socket")
        try:
            readable, _, _ = select.select([sock.fileno()], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable

    def close(self) -> None:
        self.writer.close()

    async def send(self, member: str, path: str, body: bytes) -> _Answer:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {member}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode("ascii")
        self.writer.write(head + body)
        await self.writer.drain()
        return _Answer()

    async def feed(self, answer: _Answer) -> None:
        """Read once more into ``answer``; ``ResponseLost`` if the connection ended."""
        data = await self.reader.read(_READ)
        if not data:
            raise ResponseLost("the connection closed before the answer was complete")
        try:
            answer.parser.feed_data(data)
        except httptools.HttpParserError as e:
            raise ResponseLost(f"not HTTP: {e}") from None


class HttpPool:
    """Keep-alive connections to etcd members (``host:port``), reused one request at a time."""

    def __init__(self, *, connect_timeout: float, max_idle: int = 32) -> None:
        self.connect_timeout = connect_timeout
        self.max_idle = max_idle
        self._idle: dict[str, deque[_Connection]] = {}
        self._closed = False

    async def _connect(self, member: str) -> _Connection:
        host, _, port = member.rpartition(":")
        try:
            async with asyncio.timeout(self.connect_timeout):
                reader, writer = await asyncio.open_connection(
                    host.strip("[]"), int(port), limit=1 << 24
                )
        except TimeoutError:
            raise ConnectFailed(f"no connection within {self.connect_timeout:g} s") from None
        except ConnectionRefusedError:
            raise ConnectFailed("connection refused") from None
        except OSError as e:
            raise ConnectFailed(os.strerror(e.errno) if e.errno else str(e)) from None
        return _Connection(reader, writer)

    async def _take(self, member: str) -> _Connection:
        idle = self._idle.get(member)
        while idle:
            connection = idle.pop()
            if connection.alive:
                return connection
            connection.close()
        return await self._connect(member)

    def _give_back(self, member: str, connection: _Connection) -> None:
        idle = self._idle.setdefault(member, deque())
        if self._closed or len(idle) >= self.max_idle or not connection.alive:
            connection.close()
        else:
            idle.append(connection)

    async def post(self, member: str, path: str, body: bytes, timeout: float) -> tuple[int, bytes]:
        """POST ``body`` (JSON) to ``member``; the status and body of the answer."""
        connection = await self._take(member)
        try:
            async with asyncio.timeout(timeout):
                answer = await connection.send(member, path, body)
                while not answer.complete:
                    await connection.feed(answer)
        except TimeoutError:
            connection.close()
            raise ResponseLost(f"no answer within {timeout:g} s") from None
        except OSError as e:
            connection.close()
            raise ResponseLost(e.strerror or str(e)) from None
        except BaseException:
            connection.close()
            raise
        if answer.keep_alive:
            self._give_back(member, connection)
        else:
            connection.close()
        return answer.status, bytes(answer.body)

    async def stream(self, member: str, path: str, body: bytes) -> HttpStream:
        """POST on a connection of its own, returning once the answer's headers are in."""
        connection = await self._connect(member)
        try:
            async with asyncio.timeout(self.connect_timeout * 5):
                answer = await connection.send(member, path, body)
                while not answer.headers_done:
                    await connection.feed(answer)
        except TimeoutError:
            connection.close()
            raise ResponseLost("no answer to a watch") from None
        except OSError as e:
            connection.close()
            raise ResponseLost(e.strerror or str(e)) from None
        except BaseException:
            connection.close()
            raise
        return HttpStream(connection, answer)

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            while idle:
                idle.pop().close()


class HttpStream:
    """A streaming answer: ``status``, then its body line by line."""

    def __init__(self, connection: _Connection, answer: _Answer) -> None:
        self._connection = connection
        self._answer = answer
        self.status = answer.status

    async def line(self) -> bytes | None:
        """The next line of the body (without its newline); None at its end."""
        body = self._answer.body
        while True:
            end = body.find(b"\n")
            if end >= 0:
                line = bytes(body[:end])
                del body[: end + 1]
                return line
            if self._answer.complete:
                rest = bytes(body)
                body.clear()
                return rest or None
            try:
                await self._connection.feed(self._answer)
            except OSError as e:
                raise ResponseLost(e.strerror or str(e)) from None

    async def read_all(self) -> bytes:
        lines = []
        while (line := await self.line()) is not None:
            lines.append(line)
        return b"\n".join(lines)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._connection.close()
