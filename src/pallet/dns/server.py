"""Pallet's own DNS server: UDP and TCP on asyncio, replies from ``answers.Answers``,
other names forwarded to the upstream resolvers; I/O.

``update`` swaps the whole answer table at once, so a query never sees half a change.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import struct
import time
from collections.abc import Sequence

from pallet.dns.answers import Answers

__all__ = ["PythonDns", "read_resolv_conf"]

log = logging.getLogger(__name__)
_SERVFAIL = 2
FORWARD_TIMEOUT = 3.0


def read_resolv_conf(path: str = "/etc/resolv.conf") -> list[str]:
    """The nameservers of ``path`` (IPv4 and IPv6 addresses, in order)."""
    out = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver":
                    out.append(parts[1])
    except OSError:
        pass
    return out


def _servfail(query: bytes) -> bytes:
    if len(query) < 12:
        return b""
    flags = 0x8080 | _SERVFAIL | (query[2] << 8 & 0x0100)
    return query[:2] + struct.pack("!H", flags) + query[4:6] + b"\0\0\0\0\0\0" + _question(query)


def _question(query: bytes) -> bytes:
    if query[4:6] != b"\x00\x01":
        return b""
    i = 12
    while i < len(query) and query[i]:
        i += 1 + query[i]
    return query[12 : i + 5]


class _Forwarder(asyncio.DatagramProtocol):
    """Relays queries that are not ours to the first upstream, under fresh ids."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: dict[int, tuple[asyncio.Future[bytes], bytes]] = {}
        self._ids = itertools.cycle(range(1, 65536))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) < 12:
            return
        entry = self.pending.pop(struct.unpack_from("!H", data)[0], None)
        if entry is not None and not entry[0].done():
            entry[0].set_result(entry[1] + data[2:])

    async def ask(self, query: bytes) -> bytes:
        assert self.transport is not None
        qid = next(self._ids)
        while qid in self.pending:
            qid = next(self._ids)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.pending[qid] = (future, query[:2])
        self.transport.sendto(struct.pack("!H", qid) + query[2:])
        try:
            return await asyncio.wait_for(future, FORWARD_TIMEOUT)
        except TimeoutError:
            return _servfail(query)
        finally:
            self.pending.pop(qid, None)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: PythonDns) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = self.server.answers.respond(data)
        if reply is None:
            self.server.forward(data, lambda r: self._send(r, addr))
        elif reply:
            assert self.transport is not None
            self.transport.sendto(reply, addr)

    def _send(self, reply: bytes, addr: tuple[str, int]) -> None:
        if self.transport is not None and reply:
            self.transport.sendto(reply, addr)


class PythonDns:
    """Serves ``answers`` on ``host:port`` (UDP and TCP) until ``stop``."""

    def __init__(
        self, host: str, port: int, upstreams: Sequence[str] = (), answers: Answers | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.upstreams = [u for u in upstreams if u not in (host,)]
        self.answers = answers or Answers({})
        self.updated_at = 0.0
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._forwarder: _Forwarder | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def update(self, answers: Answers) -> None:
        self.answers = answers
        self.updated_at = time.time()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._udp, _ = await loop.create_datagram_endpoint(
            lambda: _Udp(self), local_addr=(self.host, self.port)
        )
        if self.port == 0:
            self.port = self._udp.get_extra_info("sockname")[1]
        self._tcp = await asyncio.start_server(self._serve_tcp, self.host, self.port)
        if self.upstreams:
            _, proto = await loop.create_datagram_endpoint(
                _Forwarder, remote_addr=(self.upstreams[0], 53)
            )
            self._forwarder = proto

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()
        if self._forwarder is not None and self._forwarder.transport is not None:
            self._forwarder.transport.close()
        for task in list(self._tasks):
            task.cancel()

    def forward(self, query: bytes, reply: object) -> None:
        """Ask the upstream resolver, then call ``reply(bytes)``; SERVFAIL without one."""
        send = reply  # a callable taking the reply bytes

        async def go() -> None:
            answer = await self._forwarder.ask(query) if self._forwarder else _servfail(query)
            send(answer)  # type: ignore[operator]

        task = asyncio.get_running_loop().create_task(go())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                size = struct.unpack("!H", await reader.readexactly(2))[0]
                query = await reader.readexactly(size)
                reply = self.answers.respond_tcp(query)
                if reply is None:
                    reply = (
                        await self._forwarder.ask(query) if self._forwarder else _servfail(query)
                    )
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()
