"""``pallet lb``: follow the master and keep one HAProxy configured — the edge LB from
Marathon-LB's labels, or an agent's VIP proxy; asyncio, I/O.

    /v2/events ──▶ client.follow_apps ──▶ discovery: lb_services / vip_targets,
                                          edge_config / vip_config (pure)
                                                 │ only when the text changed
                                                 ▼
                              Haproxy.load: haproxy -c, then a seamless reload
                                                 │
                        POST /v1/discovery/lbs (the master publishes lb_reloaded)

One load runs at a time; pictures that arrive meanwhile collapse into the newest. A
configuration HAProxy refuses is never loaded: the previous one keeps serving and the
error goes to the log, the report and the ``lb_reloaded`` event (``ok`` false).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from pallet.client.follow import follow_apps
from pallet.client.transport import env_credentials
from pallet.discovery import lb_services, services_from_apps, vip_targets
from pallet.discovery.haproxy import (
    EdgeSettings,
    edge_config,
    edge_servers,
    split_servers,
    vip_config,
    vip_servers,
)
from pallet.lb.haproxy import Haproxy

__all__ = ["LbConfig", "LbService", "serve_lb"]

log = logging.getLogger(__name__)
REPORT_EVERY = 5.0


@dataclass(frozen=True, slots=True)
class LbConfig:
    master: str
    kind: str = "edge"
    """``edge`` (Marathon-LB) or ``vip`` (an agent's VIP proxy)."""
    bind: str = "127.0.0.1"
    groups: tuple[str, ...] = ("external",)
    http_port: int = 80
    https_port: int = 443
    stats_port: int = 9090
    ssl_certs: tuple[str, ...] = ()
    state_dir: Path = Path("pallet-lb")
    id: str = ""

    @property
    def name(self) -> str:
        return self.id or f"{self.kind}-{self.bind}"


@dataclass
class _Status:
    version: int = 0
    loaded_at: float = 0.0
    error: str = ""
    backends: int = 0
    services: list[dict[str, Any]] = field(default_factory=list)


class LbService:
    def __init__(self, config: LbConfig) -> None:
        self.config = config
        self.haproxy = Haproxy(config.state_dir)
        self.stop_event = asyncio.Event()
        self.status = _Status()
        self._apps: list[dict[str, Any]] | None = None
        self._servers: set[tuple[str, str]] = set()
        """(backend, server) of the running configuration."""
        self.runtime_changes = 0
        self._wake = asyncio.Event()
        self._client: httpx.AsyncClient | None = None

    def render(
        self, apps: list[dict[str, Any]], version: int
    ) -> tuple[str, int, list[dict[str, Any]]]:
        services = services_from_apps(apps)
        c = self.config
        if c.kind == "vip":
            vips = vip_targets(services)
            text = vip_config(vips, str(c.state_dir), version)
            summary = [
                {
                    "name": v.fqdn,
                    "address": v.key,
                    "apps": list(v.apps),
                    "backends": len(v.backends),
                }
                for v in vips
            ]
            return text, sum(len(v.backends) for v in vips), summary
        served = lb_services(services, c.groups)
        settings = EdgeSettings(
            bind=c.bind,
            state_dir=str(c.state_dir),
            http_port=c.http_port,
            https_port=c.https_port,
            stats_port=c.stats_port,
            ssl_certs=c.ssl_certs,
            version=version,
        )
        summary = [
            {
                "app": s.app_id,
                "backend": s.name,
                "port": s.port or None,
                "mode": s.mode,
                "vhosts": list(s.vhosts),
                "path": s.path or None,
                "backends": len(s.backends),
            }
            for s in served
        ]
        return edge_config(served, settings), sum(len(s.backends) for s in served), summary

    def servers(self, apps: list[dict[str, Any]]) -> set[tuple[str, str]]:
        services = services_from_apps(apps)
        if self.config.kind == "vip":
            return vip_servers(vip_targets(services))
        return edge_servers(lb_services(services, self.config.groups))

    async def on_apps(self, apps: list[dict[str, Any]], seen_at: float) -> None:
        drained = _drainable(self._servers, self.servers(apps))
        if drained:
            log.info("out of rotation now: %s", ", ".join(sorted(f"{b}/{s}" for b, s in drained)))
            await self.haproxy.drain(drained)
        self._apps = apps  # only the newest picture is loaded
        self._wake.set()

    async def _loader(self) -> None:
        structure = ""  # the running configuration without its servers
        running: dict[tuple[str, str], str] = {}  # its servers
        while not self.stop_event.is_set():
            await self._wake.wait()
            self._wake.clear()
            apps = self._apps
            if apps is None:
                continue
            text0, backends, summary = self.render(apps, 0)
            wanted_structure, wanted = split_servers(text0)
            if self.haproxy.running and wanted_structure == structure:
                if wanted == running:
                    continue
                if await self._change_servers(running, wanted):
                    running = wanted
                    self._servers = set(wanted)
                    self.status = _Status(self.status.version, time.time(), "", backends, summary)
                    # the file on disk says what runs (HAProxy reads it at the next reload)
                    self.haproxy.config_path.write_text(self.render(apps, self.status.version)[0])
                    continue
            version = self.status.version + 1
            text = self.render(apps, version)[0]
            result = await self.haproxy.load(text)
            if result.ok:
                structure, running = wanted_structure, wanted
                self._servers = set(wanted)
                self.status = _Status(version, time.time(), "", backends, summary)
                log.info(
                    "configuration %d loaded in %.3f s: %d servers",
                    version,
                    result.seconds,
                    len(wanted),
                )
            else:
                self.status.error = result.error
                log.error("configuration refused, the previous one stays: %s", result.error)
            await self._report(reloaded=True, ok=result.ok, version=version, error=result.error)

    async def _change_servers(
        self, running: dict[tuple[str, str], str], wanted: dict[tuple[str, str], str]
    ) -> bool:
        """Only servers changed: apply that through the runtime API, in milliseconds. False
        when it cannot (a server's address changed, a sticky backend: HAProxy 2.6 takes
        no cookie on a server added at run time) or HAProxy refused: then reload."""
        removed = set(running) - set(wanted)
        added = {k: v for k, v in wanted.items() if k not in running}
        if any(running[k] != v for k, v in wanted.items() if k in running):
            return False
        if any(" cookie " in f" {args} " for args in added.values()):
            return False
        problem = await self.haproxy.change_servers(removed, added)
        if problem:
            log.warning("the runtime API refused a change (%s); reloading instead", problem)
            return False
        self.runtime_changes += 1
        log.info("servers changed at run time: %d out, %d in", len(removed), len(added))
        return True

    def report(self) -> dict[str, Any]:
        c = self.config
        doc: dict[str, Any] = {
            "id": c.name,
            "kind": c.kind,
            "address": c.bind,
            "groups": list(c.groups),
            "config_version": self.status.version,
            "loaded_at": self.status.loaded_at,
            "backends": self.status.backends,
            "services": self.status.services,
            "reloads": self.haproxy.reloads,
            "runtime_changes": self.runtime_changes,
            "running": self.haproxy.running,
        }
        if c.kind == "edge":
            doc |= {"http_port": c.http_port, "stats_port": c.stats_port}
            if c.ssl_certs:
                doc["https_port"] = c.https_port
        return doc

    async def _report(
        self, reloaded: bool = False, ok: bool = True, version: int = 0, error: str = ""
    ) -> None:
        if self._client is None:
            return
        doc = self.report() | {
            "reloaded": reloaded,
            "ok": ok,
            "error": error or self.status.error or None,
        }
        if reloaded:
            doc["config_version"] = version
        with contextlib.suppress(httpx.HTTPError):
            await self._client.post("/v1/discovery/lbs", json=doc)

    async def _reporter(self) -> None:
        while not self.stop_event.is_set():
            await self._report()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), REPORT_EVERY)

    async def run(self) -> None:
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        async with httpx.AsyncClient(
            base_url=self.config.master, timeout=5.0, **env_credentials(self.config.master)
        ) as client:
            self._client = client
            tasks = [asyncio.create_task(self._loader()), asyncio.create_task(self._reporter())]
            try:
                await follow_apps(self.config.master, self.on_apps, self.stop_event)
            finally:
                for t in tasks:
                    t.cancel()
                for t in tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await t
                await self.haproxy.stop()


def _drainable(loaded: set[tuple[str, str]], ready: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """The running servers no longer ready (being killed, unhealthy) that can leave rotation
    at once, through the runtime API, before the reload that drops them: those of a
    backend that keeps at least one running server that is still ready. The others stay
    until the reload brings their replacements (a task being killed still finishes
    what it gets)."""
    gone = loaded - ready
    keeps = {backend for backend, _ in loaded & ready}
    return {(b, s) for b, s in gone if b in keeps}


def serve_lb(config: LbConfig) -> None:
    """Serve until SIGINT/SIGTERM (HAProxy is stopped with it)."""
    import signal

    async def main() -> None:
        service = LbService(config)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, service.stop_event.set)
        await service.run()

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:  # pragma: no cover
        asyncio.run(main())
