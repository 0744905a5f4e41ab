"""The agent's own small HTTP server: task log reads for the master to proxy; asyncio I/O.

    GET /v1/logs/<task id>?stream=stdout|stderr&offset=N&length=N
        -> {"task_id", "stream", "offset", "size", "next_offset", "data"}
    GET /ping -> pong

HTTP/1.1 with one request per connection and GET only: the master is its one client.
It is unauthenticated, like the rest of Pallet for now, and binds loopback by default.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from urllib.parse import parse_qs, unquote, urlsplit

from pallet.agent.logs import LogChunk, LogNotFound
from pallet.model import ValidationError, check_task_id

__all__ = ["LogServer"]

log = logging.getLogger(__name__)

ReadLog = Callable[[str, str, int, int | None], LogChunk]

_MAX_HEADER = 16 * 1024


class LogServer:
    def __init__(self, read_log: ReadLog, host: str, port: int) -> None:
        self.read_log = read_log
        self.host = host
        self.port = port
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> int:
        """Listen; the port bound (useful with port 0)."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            if len(head) > _MAX_HEADER:
                raise ValueError("request head too large")
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            method, target, _ = request_line.split(" ", 2)
            status, body = await self._answer(method, target)
        except (ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            status, body = 400, {"message": "bad request"}
        payload = json.dumps(body).encode() if not isinstance(body, bytes) else body
        ctype = b"application/json" if not isinstance(body, bytes) else b"text/plain"
        reason = {
            200: b"OK",
            400: b"Bad Request",
            404: b"Not Found",
            405: b"Method Not Allowed",
            422: b"Unprocessable Entity",
        }.get(status, b"Error")
        writer.write(
            b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
            % (status, reason, ctype, len(payload))
        )
        writer.write(payload)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    async def _answer(self, method: str, target: str) -> tuple[int, object]:
        if method != "GET":
            return 405, {"message": "only GET"}
        url = urlsplit(target)
        path = unquote(url.path)
        if path == "/ping":
            return 200, b"pong"
        if not path.startswith("/v1/logs/"):
            return 404, {"message": f"no such path {path}"}
        task_id = path[len("/v1/logs/") :]
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        stream = q.get("stream", "stdout")
        try:
            check_task_id(task_id)
            if stream not in ("stdout", "stderr"):
                raise ValidationError("/stream", "stream must be stdout or stderr")
            offset = int(q.get("offset", "0"))
            length = int(q["length"]) if "length" in q else None
            if length is not None and length < 0:
                raise ValidationError("/length", "length must be >= 0")
        except (ValidationError, ValueError) as e:
            return 422, {"message": str(e)}
        try:
            chunk = await asyncio.to_thread(self.read_log, task_id, stream, offset, length)
        except LogNotFound:
            return 404, {"message": f"no {stream} for task {task_id} on this node"}
        return 200, {
            "task_id": task_id,
            "stream": stream,
            "offset": chunk.offset,
            "size": chunk.size,
            "next_offset": chunk.next_offset,
            "data": chunk.data.decode("utf-8", errors="replace"),
        }
