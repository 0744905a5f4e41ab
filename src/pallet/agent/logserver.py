"""The agent's own small HTTP server: task log reads for the master to proxy; asyncio I/O.

    GET /v1/logs/<task id>?stream=stdout|stderr&offset=N&length=N[&container=NAME]
        -> {"task_id", "stream", "offset", "size", "next_offset", "data"}

``container`` reads that container of a pod instance instead of the instance's own.
    GET /ping -> pong

HTTP/1.1 with one request per connection and GET only: the master is its one client.
On a secured cluster it serves TLS with the agent's certificate and answers only a
request whose token the master signed (``authorize``); else it is open, and binds
loopback by default.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from pallet.agent.logs import LogChunk, LogNotFound
from pallet.model import ValidationError, check_task_id
from pallet.model.pods import check_container_name

__all__ = ["LogServer"]

log = logging.getLogger(__name__)

ReadLog = Callable[[str, str, int, int | None, str | None], LogChunk]
Authorize = Callable[[str | None], bool]

_MAX_HEADER = 16 * 1024


class LogServer:
    def __init__(
        self,
        read_log: ReadLog,
        host: str,
        port: int,
        *,
        authorize: Authorize | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.read_log = read_log
        self.host = host
        self.port = port
        self.authorize = authorize
        self.tls = tls
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> int:
        """Listen; the port bound (useful with port 0)."""
        tls: dict[str, Any] = (
            {} if self.tls is None else {"ssl": self.tls, "ssl_handshake_timeout": 10}
        )
        self._server = await asyncio.start_server(self._serve, self.host, self.port, **tls)
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
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            authorization = next(
                (
                    value.strip()
                    for name, _, value in (line.partition(":") for line in lines[1:])
                    if name.strip().lower() == "authorization"
                ),
                None,
            )
            body: object
            if self.authorize is not None and not self.authorize(authorization):
                status, body = 401, {"message": "only the master may read logs here"}
            else:
                status, body = await self._answer(method, target)
        except (
            ValueError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            TimeoutError,
            ConnectionError,
            ssl.SSLError,
        ):
            status, body = 400, {"message": "bad request"}
        payload = json.dumps(body).encode() if not isinstance(body, bytes) else body
        ctype = b"application/json" if not isinstance(body, bytes) else b"text/plain"
        reason = {
            200: b"OK",
            400: b"Bad Request",
            401: b"Unauthorized",
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
        container = q.get("container")
        try:
            check_task_id(task_id)
            if container is not None:
                check_container_name(container)
            if stream not in ("stdout", "stderr"):
                raise ValidationError("/stream", "stream must be stdout or stderr")
            offset = int(q.get("offset", "0"))
            length = int(q["length"]) if "length" in q else None
            if length is not None and length < 0:
                raise ValidationError("/length", "length must be >= 0")
        except (ValidationError, ValueError) as e:
            return 422, {"message": str(e)}
        try:
            chunk = await asyncio.to_thread(
                self.read_log, task_id, stream, offset, length, container
            )
        except LogNotFound:
            what = stream if container is None else f"{stream} of container {container}"
            return 404, {"message": f"no {what} for task {task_id} on this node"}
        return 200, {
            "task_id": task_id,
            "stream": stream,
            "offset": chunk.offset,
            "size": chunk.size,
            "next_offset": chunk.next_offset,
            "data": chunk.data.decode("utf-8", errors="replace"),
        }
