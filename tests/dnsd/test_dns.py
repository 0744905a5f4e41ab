"""Answers from a record table (pure), then the real servers: Pallet's Python one and
Debian's unbound fed at run time, asked over UDP and TCP."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path
from typing import Any

import pytest
from dnslib import QTYPE, DNSRecord

from pallet.discovery import build_records, services_from_apps
from pallet.dns.answers import Answers
from pallet.dns.server import PythonDns
from pallet.dns.unbound import Unbound, unbound_available


def _apps(*hosts: str) -> list[dict[str, Any]]:
    """One task per host; the task on 127.0.x.y listens on 31000 + y."""
    tasks = [
        {
            "id": f"web.t{h}",
            "host": h,
            "ports": [31000 + int(h.rsplit(".", 1)[1])],
            "state": "TASK_RUNNING",
            "slaveId": f"n{h}",
        }
        for h in hosts
    ]
    return [{"id": "/prod/web", "portDefinitions": [{"port": 0}], "tasks": tasks}]


def _table(*hosts: str) -> dict[str, Any]:
    return build_records(services_from_apps(_apps(*hosts)))


def _ask(answers: Answers, name: str, qtype: str = "A") -> DNSRecord | None:
    reply = answers.respond(bytes(DNSRecord.question(name, qtype).pack()))
    return None if reply is None else DNSRecord.parse(reply)


def test_answers_echo_the_question_and_know_their_zones() -> None:
    answers = Answers(_table("127.0.0.2", "127.0.0.3"))
    reply = _ask(answers, "WEB-prod.Marathon.mesos")
    assert reply is not None
    assert str(reply.q.qname) == "WEB-prod.Marathon.mesos."  # 0x20: case as asked
    assert sorted(str(rr.rdata) for rr in reply.rr) == ["127.0.0.2", "127.0.0.3"]
    assert reply.header.aa and reply.header.rcode == 0
    srv = _ask(answers, "_web-prod._tcp.marathon.mesos", "SRV")
    assert srv is not None and sorted(rr.rdata.port for rr in srv.rr) == [31002, 31003]
    missing = _ask(answers, "nope.marathon.mesos")
    assert missing is not None and missing.header.rcode == 3 and not missing.rr  # NXDOMAIN
    nodata = _ask(answers, "web-prod.pallet", "SRV")
    assert nodata is not None and nodata.header.rcode == 0 and not nodata.rr
    assert _ask(answers, "example.com") is None  # not ours: forwarded
    assert _ask(answers, "notmesos") is None


def test_a_big_answer_is_truncated_over_udp_and_whole_over_tcp() -> None:
    hosts = [f"127.0.{i // 250}.{i % 250 + 2}" for i in range(60)]
    answers = Answers(_table(*hosts))
    query = bytes(DNSRecord.question("web-prod.marathon.mesos").pack())
    udp = DNSRecord.parse(answers.respond(query) or b"")
    assert udp.header.tc and not udp.rr
    tcp = DNSRecord.parse(answers.respond_tcp(query) or b"")
    assert len(tcp.rr) == 60


def _free_port() -> int:
    """A loopback port free for UDP and for TCP both (a DNS server binds the two)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port: int = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue  # its TCP twin is taken: another
                return port


def _lookup(port: int, name: str, qtype: str = "A", tcp: bool = False) -> DNSRecord:
    raw = DNSRecord.question(name, qtype).send("127.0.0.1", port, tcp=tcp, timeout=3)
    return DNSRecord.parse(raw)


async def _lookup_async(port: int, name: str, qtype: str = "A", tcp: bool = False) -> DNSRecord:
    return await asyncio.to_thread(_lookup, port, name, qtype, tcp)


async def _serves_and_follows(server: PythonDns | Unbound, apply: Any, port: int) -> None:
    await apply(_table("127.0.0.2"))
    reply = await _lookup_async(port, "web-prod.marathon.mesos")
    assert [str(r.rdata) for r in reply.rr] == ["127.0.0.2"]
    await apply(_table("127.0.0.2", "127.0.0.3"))  # a task more: a name gains a record
    reply = await _lookup_async(port, "web-prod.marathon.mesos", tcp=True)
    assert sorted(str(r.rdata) for r in reply.rr) == ["127.0.0.2", "127.0.0.3"]
    await apply(_table("127.0.0.3"))  # one killed: the name loses one
    reply = await _lookup_async(port, "_web-prod._tcp.marathon.mesos", "SRV")
    assert [r.rdata.port for r in reply.rr if r.rtype == QTYPE.SRV] == [31003]
    await apply({})  # the app is gone: NXDOMAIN
    reply = await _lookup_async(port, "web-prod.marathon.mesos")
    assert reply.header.rcode == 3 and not reply.rr


@pytest.mark.anyio
async def test_the_python_server_serves_and_follows() -> None:
    port = _free_port()
    server = PythonDns("127.0.0.1", port, [])
    await server.start()
    try:

        async def apply(table: dict[str, Any]) -> None:
            server.update(Answers(table))

        await _serves_and_follows(server, apply, port)
    finally:
        await server.stop()


@pytest.mark.anyio
@pytest.mark.skipif(not unbound_available(), reason="Debian's unbound is not installed")
async def test_unbound_fed_at_run_time_serves_and_follows(tmp_path: Path) -> None:
    port = _free_port()
    server = Unbound(tmp_path / "unbound", "127.0.0.1", port)
    await server.start()
    try:
        await _serves_and_follows(server, server.apply, port)
        # names outside Pallet's zones are not answered from local data
        assert "local-zone" in (tmp_path / "unbound" / "unbound.conf").read_text()
    finally:
        await server.stop()
    assert server.process is not None and server.process.poll() is not None


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
@pytest.mark.skipif(not unbound_available(), reason="Debian's unbound is not installed")
async def test_the_service_stops_when_unbound_dies(tmp_path: Path) -> None:
    from pallet.dns.service import DnsConfig, DnsService

    # No master listens on port 9: the follower keeps retrying; unbound still serves.
    config = DnsConfig("http://127.0.0.1:9", port=_free_port(), work_dir=tmp_path, upstreams=())
    service = DnsService(config)
    run = asyncio.create_task(service.run())
    backend = service.backend
    assert isinstance(backend, Unbound)
    for _ in range(200):  # until unbound answers, and the service saw it start (unbound
        # may answer lookups before its control socket, which the service waits for)
        with contextlib.suppress(OSError):
            if backend.process is not None and service.started:
                await asyncio.to_thread(_lookup, config.port, "x.mesos")
                break
        await asyncio.sleep(0.05)
    assert backend.process is not None and service.started
    backend.process.kill()
    await asyncio.wait_for(run, 30)
    assert service.failed
