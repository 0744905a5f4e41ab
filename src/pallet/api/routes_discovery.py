"""Pallet's ``/v1/discovery``: where the DNS server and the load balancers are, what each
app is reachable as, and the ``lb_reloaded`` event; I/O.

The DNS server and each load balancer report themselves here every few seconds (soft
state, as heartbeats: kept in memory, never stored; one silent for 30 s is dropped).
An LB report that says it reloaded is published on the event bus as ``lb_reloaded``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

import pydantic
from fastapi import APIRouter, Request
from starlette.responses import Response

from pallet.api.context import ApiContext, context
from pallet.api.http import json_response, read_json
from pallet.api.marathon.errors import app_not_found, shape_error
from pallet.api.marathon.events import MarathonEvent
from pallet.api.marathon.params import AppEmbed
from pallet.api.marathon.pathid import canonical_path
from pallet.discovery import lb_services, mesos_names, services_from_apps, vip_targets

__all__ = ["LbReloadedEvent", "router"]

router = APIRouter()
STALE_AFTER = 30.0


class LbReloadedEvent(MarathonEvent):
    """A load balancer loaded a new configuration (or refused one: ``ok`` false)."""

    type_name: ClassVar[str] = "lb_reloaded"
    event_type: Literal["lb_reloaded"]
    lb_id: str
    kind: str
    ok: bool
    config_version: int
    error: str | None = None


class _Report(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow", frozen=True)


class LbReport(_Report):
    id: str = pydantic.Field(min_length=1, max_length=200)
    kind: Literal["edge", "vip"]
    address: str = pydantic.Field(min_length=1, max_length=200)
    groups: list[str] = []
    http_port: int | None = pydantic.Field(None, ge=1, le=65535)
    https_port: int | None = pydantic.Field(None, ge=1, le=65535)
    stats_port: int | None = pydantic.Field(None, ge=1, le=65535)
    config_version: int = pydantic.Field(0, ge=0)
    reloaded: bool = False
    ok: bool = True
    error: str | None = None


class DnsReport(_Report):
    address: str = pydantic.Field(min_length=1, max_length=200)
    server: str = ""


async def _read(request: Request, model: type[_Report]) -> dict[str, Any]:
    body = await read_json(request, limit=1 << 20)
    try:
        return model.model_validate(body).model_dump()
    except pydantic.ValidationError as e:
        raise shape_error(e) from None


def _fresh(reports: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    now = time.time()
    for key in [k for k, r in reports.items() if now - r["seen"] > STALE_AFTER]:
        del reports[key]
    return [reports[k] for k in sorted(reports)]


@router.post("/v1/discovery/dns")
async def report_dns(request: Request) -> Response:
    ctx = context(request)
    doc = await _read(request, DnsReport)
    ctx.discovery["dns"] = {**doc, "seen": time.time()}
    return json_response({"ok": True})


@router.post("/v1/discovery/lbs")
async def report_lb(request: Request) -> Response:
    ctx = context(request)
    doc = await _read(request, LbReport)
    lbs: dict[str, dict[str, Any]] = ctx.discovery.setdefault("lbs", {})
    lbs[doc["id"]] = {**doc, "seen": time.time()}
    if doc["reloaded"]:
        ctx.control.bus.publish(
            LbReloadedEvent(
                timestamp=datetime.now(UTC),
                lb_id=doc["id"],
                kind=doc["kind"],
                ok=doc["ok"],
                config_version=doc["config_version"],
                error=doc["error"],
            )
        )
    return json_response({"ok": True})


def _dns(ctx: ApiContext) -> dict[str, Any] | None:
    dns = ctx.discovery.get("dns")
    if dns is not None and time.time() - dns["seen"] > STALE_AFTER:
        ctx.discovery.pop("dns", None)
        return None
    return dns


@router.get("/v1/discovery")
async def discovery(request: Request) -> Response:
    ctx = context(request)
    return json_response({"dns": _dns(ctx), "lbs": _fresh(ctx.discovery.setdefault("lbs", {}))})


def app_discovery(ctx: ApiContext, app_json: dict[str, Any]) -> dict[str, Any]:
    """The names, VIPs and load-balancer endpoints of one app (its Marathon JSON)."""
    (service,) = services_from_apps([app_json])
    names = mesos_names(service.app_id)
    vips = [{"name": v.fqdn, "address": v.address, "port": v.port} for v in vip_targets([service])]
    endpoints = []
    for lb in _fresh(ctx.discovery.setdefault("lbs", {})):
        if lb["kind"] != "edge":
            continue
        for s in lb_services([service], lb["groups"]):
            host = s.bind_addr or lb["address"]
            entry: dict[str, Any] = {"lb": lb["id"], "mode": s.mode, "port_index": s.index}
            if s.port:
                entry["address"] = f"{host}:{s.port}"
            if s.vhosts and lb.get("http_port"):
                entry["urls"] = [f"http://{v}{s.path or '/'}" for v in s.vhosts]
                entry["via"] = f"{host}:{lb['http_port']}"
            endpoints.append(entry)
    return {"app": service.app_id, "dns": names, "vips": vips, "lb": endpoints}


@router.get("/v1/discovery/apps/{app_id:path}")
async def discovery_of_app(app_id: str, request: Request) -> Response:
    ctx = context(request)
    app = ctx.control.state.apps.get(canonical_path(app_id))
    if app is None or app.is_pod:
        raise app_not_found(canonical_path(app_id))
    doc = ctx.renderer.app(app, frozenset({AppEmbed.TASKS}))
    return json_response(app_discovery(ctx, doc))
