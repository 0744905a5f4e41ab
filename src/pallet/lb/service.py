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
from pallet.discovery import lb_services, services_from_apps, vip_targets
from pallet.discovery.haproxy import EdgeSettings, edge_config, vip_config
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

    async def on_apps(self, apps: list[dict[str, Any]], seen_at: float) -> None:
        self._apps = apps  # only the newest picture is loaded
        self._wake.set()

    async def _loader(self) -> None:
        last_rendered = ""
        while not self.stop_event.is_set():
            await self._wake.wait()
            self._wake.clear()
            apps = self._apps
            if apps is None:
                continue
            text0 = self.render(apps, 0)[0]  # the version is part of the text: compare without
            if text0 == last_rendered and self.haproxy.running:
                continue
            version = self.status.version + 1
            text, backends, summary = self.render(apps, version)
            result = await self.haproxy.load(text)
            if result.ok:
                last_rendered = text0
                self.status = _Status(version, time.time(), "", backends, summary)
                log.info(
                    "configuration %d loaded in %.3f s (%d backends)",
                    version,
                    result.seconds,
                    backends,
                )
            else:
                self.status.error = result.error
                log.error("configuration refused, the previous one stays: %s", result.error)
            await self._report(reloaded=True, ok=result.ok, version=version, error=result.error)

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
        async with httpx.AsyncClient(base_url=self.config.master, timeout=5.0) as client:
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
