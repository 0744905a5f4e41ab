"""Mesos's maintenance endpoints: ``/maintenance/schedule`` (GET, POST),
``/maintenance/status`` (GET), ``/machine/down`` and ``/machine/up`` (POST), each also
under ``/master/`` as a Mesos master serves them; does I/O.

Bodies and answers are Mesos's JSON (``maintenance::Schedule``, lists of ``MachineID``,
``maintenance::ClusterStatus``). Mesos answers bad input 400 with a line of text; Pallet
answers 400 with ``{"message", "details": [{"path", "errors"}]}`` naming the field, and
changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from starlette.responses import Response

from pallet.api.context import context
from pallet.api.http import json_response, read_json
from pallet.api.marathon import MarathonApiError
from pallet.model import ValidationError
from pallet.model.maintenance import (
    MachineId,
    Maintenance,
    machines_from_json,
    schedule_from_json,
)

__all__ = ["maintenance_status", "router"]

router = APIRouter()

_PREFIXES = ("", "/master")
_T = TypeVar("_T")


def _bad(e: ValidationError) -> MarathonApiError:
    return MarathonApiError(
        400, {"message": e.message, "details": [{"path": e.field, "errors": [e.message]}]}
    )


def _parse(parse: Callable[[object], _T], doc: object) -> _T:
    try:
        return parse(doc)
    except ValidationError as e:
        raise _bad(e) from None


def maintenance_status(m: Maintenance) -> dict[str, Any]:
    """Mesos's ``maintenance::ClusterStatus``. Pallet's own scheduler is the only
    framework and answers no inverse offer (it always moves the tasks away), so each
    draining machine has no ``statuses``."""
    down = {d.key for d in m.down}
    draining = [
        {"id": mid.to_json(), "statuses": []}
        for w in m.windows
        for mid in w.machine_ids
        if mid.key not in down
    ]
    doc: dict[str, Any] = {}
    if draining:
        doc["draining_machines"] = draining
    if m.down:
        doc["down_machines"] = [d.to_json() for d in m.down]
    return doc


async def get_schedule(request: Request) -> Response:
    return json_response(context(request).control.state.maintenance.schedule_json())


async def post_schedule(request: Request) -> Response:
    """Replace the schedule: its machines become DRAINING, those left out UP."""
    ctx = context(request)
    windows = _parse(schedule_from_json, await read_json(request))
    try:
        await ctx.control.nodes.update_schedule(windows)
    except ValidationError as e:
        raise _bad(e) from None
    return json_response({})


async def get_status(request: Request) -> Response:
    return json_response(maintenance_status(context(request).control.state.maintenance))


async def _machines(request: Request, call: Callable[[tuple[MachineId, ...]], Any]) -> Response:
    machines = _parse(machines_from_json, await read_json(request))
    try:
        await call(machines)
    except ValidationError as e:
        raise _bad(e) from None
    return json_response({})


async def machine_down(request: Request) -> Response:
    """Start maintenance on scheduled machines: DOWN, their tasks killed."""
    return await _machines(request, context(request).control.nodes.machines_down)


async def machine_up(request: Request) -> Response:
    """End maintenance on DOWN machines: UP, out of the schedule."""
    return await _machines(request, context(request).control.nodes.machines_up)


for _prefix in _PREFIXES:
    router.add_api_route(f"{_prefix}/maintenance/schedule", get_schedule, methods=["GET"])
    router.add_api_route(f"{_prefix}/maintenance/schedule", post_schedule, methods=["POST"])
    router.add_api_route(f"{_prefix}/maintenance/status", get_status, methods=["GET"])
    router.add_api_route(f"{_prefix}/machine/down", machine_down, methods=["POST"])
    router.add_api_route(f"{_prefix}/machine/up", machine_up, methods=["POST"])
