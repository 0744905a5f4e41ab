"""Mesos's maintenance endpoints: ``/maintenance/schedule`` (GET, POST),
``/maintenance/status`` (GET), ``/machine/down`` and ``/machine/up`` (POST), each also
under ``/master/`` as a Mesos master serves them, and under ``/v1/maintenance/``
(``schedule``, ``status``, ``down``, ``up``) beside Pallet's other ``/v1`` routes; and the
five maintenance calls of Mesos's v1 operator API (``POST /api/v1``, also
``/master/api/v1``); does I/O.

Bodies and answers are Mesos's JSON (``maintenance::Schedule``, lists of ``MachineID``,
``maintenance::ClusterStatus``; the operator API's ``Call`` and ``Response`` with their
snake_case fields). Mesos answers bad input 400 with a line of text; Pallet answers 400
with ``{"message", "details": [{"path", "errors"}]}`` naming the field, and changes
nothing. Every route is in ``authz``'s table: reading needs ``pallet:node`` read,
changing it update (for ``/api/v1``, by the call's ``type``).
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

__all__ = ["OPERATOR_CALLS", "maintenance_status", "router"]

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


# -- Mesos's v1 operator API: the maintenance calls -----------------------------------

OPERATOR_CALLS = (
    "GET_MAINTENANCE_STATUS",
    "GET_MAINTENANCE_SCHEDULE",
    "UPDATE_MAINTENANCE_SCHEDULE",
    "START_MAINTENANCE",
    "STOP_MAINTENANCE",
)
"""The ``Call.type`` values Pallet's ``/api/v1`` answers; any other is refused, 400."""


def _under(field: str, e: ValidationError) -> MarathonApiError:
    """``e`` with its path under ``field`` (``/start_maintenance/machines``)."""
    if e.field.startswith(field):
        return _bad(e)
    return _bad(ValidationError(field + ("" if e.field == "/" else e.field), e.message))


def _part(call: dict[str, Any], name: str) -> dict[str, Any]:
    """The call's ``name`` message (``start_maintenance``), which must be an object."""
    part = call.get(name)
    if not isinstance(part, dict):
        raise _bad(ValidationError(f"/{name}", f"is required by a {call['type']} call"))
    return part


async def operator_call(request: Request) -> Response:
    """``POST /api/v1``: one ``mesos.v1.master.Call`` in JSON."""
    if "protobuf" in request.headers.get("content-type", ""):
        raise MarathonApiError(415, {"message": "Pallet's /api/v1 reads JSON calls only"})
    doc = await read_json(request)
    if not isinstance(doc, dict):
        raise _bad(ValidationError("/", "must be a JSON object (a mesos.v1.master.Call)"))
    kind = doc.get("type")
    if kind not in OPERATOR_CALLS:
        raise _bad(
            ValidationError(
                "/type",
                f"{kind!r} is not a call Pallet answers; it answers {', '.join(OPERATOR_CALLS)}",
            )
        )
    ctx = context(request)
    maintenance = ctx.control.state.maintenance
    if kind == "GET_MAINTENANCE_STATUS":
        status = {"status": maintenance_status(maintenance)}
        return json_response({"type": kind, "get_maintenance_status": status})
    if kind == "GET_MAINTENANCE_SCHEDULE":
        schedule = {"schedule": maintenance.schedule_json()}
        return json_response({"type": kind, "get_maintenance_schedule": schedule})
    if kind == "UPDATE_MAINTENANCE_SCHEDULE":
        where = "/update_maintenance_schedule/schedule"
        schedule_doc = _part(doc, "update_maintenance_schedule").get("schedule")
        try:
            await ctx.control.nodes.update_schedule(schedule_from_json(schedule_doc))
        except ValidationError as e:
            raise _under(where, e) from None
    else:
        name = "start_maintenance" if kind == "START_MAINTENANCE" else "stop_maintenance"
        machines_doc = _part(doc, name).get("machines")
        change = (
            ctx.control.nodes.machines_down
            if kind == "START_MAINTENANCE"
            else ctx.control.nodes.machines_up
        )
        try:
            await change(machines_from_json(machines_doc))
        except ValidationError as e:
            raise _under(f"/{name}/machines", e) from None
    return Response(status_code=200)  # Mesos's answer to a call without a Response


for _prefix in _PREFIXES:
    router.add_api_route(f"{_prefix}/maintenance/schedule", get_schedule, methods=["GET"])
    router.add_api_route(f"{_prefix}/maintenance/schedule", post_schedule, methods=["POST"])
    router.add_api_route(f"{_prefix}/maintenance/status", get_status, methods=["GET"])
    router.add_api_route(f"{_prefix}/machine/down", machine_down, methods=["POST"])
    router.add_api_route(f"{_prefix}/machine/up", machine_up, methods=["POST"])
    router.add_api_route(f"{_prefix}/api/v1", operator_call, methods=["POST"])
router.add_api_route("/v1/maintenance/schedule", get_schedule, methods=["GET"])
router.add_api_route("/v1/maintenance/schedule", post_schedule, methods=["POST"])
router.add_api_route("/v1/maintenance/status", get_status, methods=["GET"])
router.add_api_route("/v1/maintenance/down", machine_down, methods=["POST"])
router.add_api_route("/v1/maintenance/up", machine_up, methods=["POST"])
