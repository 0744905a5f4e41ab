"""``pallet dns serve``: follow the master, turn apps into records, keep the server in step;
asyncio, I/O.

    /v2/events ──▶ client.follow_apps ──▶ discovery (services, VIPs, records; pure)
                                                │ the whole table, each time
                                                ▼
                             unbound (local_datas over its control socket)
                             or PythonDns (the answer table swapped at once)

The DNS server reports itself to the master (``POST /v1/discovery/dns``) at start and
every few seconds, so ``pallet dns lookup`` and the dashboard know where it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from pallet.client.follow import follow_apps
from pallet.client.transport import env_credentials
from pallet.discovery import build_records, services_from_apps, vip_targets
from pallet.discovery.records import RecordTable
from pallet.dns.answers import Answers
from pallet.dns.server import PythonDns, read_resolv_conf
from pallet.dns.unbound import Unbound

__all__ = ["DnsConfig", "DnsService", "serve_dns"]

log = logging.getLogger(__name__)
REPORT_EVERY = 5.0


@dataclass(frozen=True, slots=True)
class DnsConfig:
    master: str
    host: str = "127.0.0.1"
    port: int = 8053
    server: str = "unbound"
    """``unbound`` (Debian's, fed at run time) or ``python`` (Pallet's own)."""
    work_dir: Path = Path("pallet-dns")
    ttl: int = 1
    upstreams: tuple[str, ...] = field(default_factory=lambda: tuple(read_resolv_conf()))


class _Addresses:
    """Agent hostname -> address, resolved once (agents usually register by address)."""

    def __init__(self) -> None:
        self.cache: dict[str, str] = {}

    def __call__(self, host: str) -> str:
        if host in self.cache:
            return self.cache[host]
        try:
            ipaddress.ip_address(host)
            address = host
        except ValueError:
            try:
                address = socket.gethostbyname(host)
            except OSError:
                address = ""
        self.cache[host] = address
        return address


class DnsService:
    def __init__(self, config: DnsConfig) -> None:
        self.config = config
        upstreams = [u for u in config.upstreams if u != config.host]
        self.backend: Unbound | PythonDns
        if config.server == "unbound":
            self.backend = Unbound(
                config.work_dir / "unbound",
                config.host,
                config.port,
                upstreams,
                config.ttl,
                threads=2,  # measured: 12,700 queries/s against 10,300 with one
            )
        elif config.server == "python":
            self.backend = PythonDns(config.host, config.port, upstreams)
        else:
            raise ValueError(f"unknown DNS server {config.server!r}: unbound or python")
        self.table: RecordTable = {}
        self.addresses = _Addresses()
        self.stop_event = asyncio.Event()
        self.applied = 0
        self.last_error = ""
        self.failed = False
        self.started = False
        """True once the backend is up (unbound answers its control socket)."""

    async def on_apps(self, apps: list[dict[str, Any]], seen_at: float) -> None:
        services = services_from_apps(apps)
        table = build_records(services, vip_targets(services), self.addresses)
        if table == self.table:
            return
        try:
            if isinstance(self.backend, Unbound):
                await self.backend.apply(table)
            else:
                self.backend.update(Answers(table, self.config.ttl))
            self.table = table
            self.applied += 1
            self.last_error = ""
        except Exception as e:  # keep serving the previous records, say why
            self.last_error = str(e)
            log.error("could not apply %d names: %s", len(table), e)

    def report(self) -> dict[str, Any]:
        return {
            "address": f"{self.config.host}:{self.config.port}",
            "server": self.config.server,
            "names": len(self.table),
            "updates": self.applied,
            "error": self.last_error or None,
            "at": time.time(),
        }

    async def _reporter(self) -> None:
        async with httpx.AsyncClient(
            base_url=self.config.master, timeout=5.0, **env_credentials(self.config.master)
        ) as client:
            last = 0.0
            while not self.stop_event.is_set():
                process = self.backend.process if isinstance(self.backend, Unbound) else None
                if process is not None and process.poll() is not None:
                    # Exit, so whoever runs this (pallet up) starts it again, unbound too.
                    log.error("unbound exited with %s; stopping", process.returncode)
                    self.failed = True
                    self.stop_event.set()
                    return
                if time.monotonic() - last >= REPORT_EVERY:
                    last = time.monotonic()
                    with contextlib.suppress(httpx.HTTPError):
                        await client.post("/v1/discovery/dns", json=self.report())
                with contextlib.suppress(TimeoutError):  # unbound is looked at every second
                    await asyncio.wait_for(self.stop_event.wait(), 1.0)

    async def run(self) -> None:
        await self.backend.start()
        self.started = True
        log.info(
            "DNS (%s) on %s:%d for %s",
            self.config.server,
            self.config.host,
            self.config.port,
            self.config.master,
        )
        reporter = asyncio.create_task(self._reporter())
        try:
            await follow_apps(self.config.master, self.on_apps, self.stop_event)
        finally:
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
            await self.backend.stop()


def serve_dns(config: DnsConfig) -> None:
    """Serve until SIGINT/SIGTERM."""
    import signal

    async def main() -> bool:
        service = DnsService(config)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, service.stop_event.set)
        await service.run()
        return service.failed

    try:
        import uvloop

        failed = uvloop.run(main())
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        failed = asyncio.run(main())
    if failed:
        raise SystemExit(1)
