"""The agent protocol under ``/v1/agent``: register, long-poll the desired task set, post
status updates (acknowledged by task id and seq) and heartbeat with usage; does I/O.

    POST /v1/agent/register                      Registration -> {"node_id", "revision"}
    GET  /v1/agent/nodes/{id}/desired?after=&wait=         -> DesiredSet
    POST /v1/agent/nodes/{id}/status             StatusBatch  -> Acks
    POST /v1/agent/nodes/{id}/heartbeat          Heartbeat    -> {"state"}

The message types and their one JSON encoding are ``pallet.model.messages``, shared
with the agent.

An unknown node answers 404: the agent registers again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TypeVar

from fastapi import APIRouter, Request
from starlette.responses import Response

from pallet.api.context import context
from pallet.api.http import json_response, read_json
from pallet.api.marathon import MarathonApiError
from pallet.model import (
    Acks,
    DesiredSet,
    Heartbeat,
    Registration,
    StatusBatch,
    TaskSpec,
    ValidationError,
)
from pallet.model.net import agent_address

__all__ = ["router"]

router = APIRouter()

_MAX_WAIT = 60.0
M = TypeVar("M")


def _parse(reader: Callable[[object], M], body: object) -> M:
    """A message from its JSON; a field that does not read is a 422 naming it."""
    try:
        return reader(body)
    except ValidationError as e:
        details = [{"path": e.field, "errors": [e.message]}]
        raise MarathonApiError(
            422, {"message": "Invalid agent message", "details": details}
        ) from None


@router.post("/v1/agent/register")
async def register(request: Request) -> Response:
    ctx = context(request)
    body = _parse(Registration.from_json, await read_json(request))
    peer = request.client.host if request.client is not None else None
    address = _parse(lambda a: agent_address(str(a), peer), body.address)
    record = await ctx.control.nodes.register(body.node, address, body.boot_id)
    revision = ctx.control.state.desired_revision.get(record.id, 0)
    interval = ctx.control.nodes.grant(record.id)
    return json_response(
        {"node_id": record.id, "revision": revision, "heartbeat_interval": interval}
    )


@router.get("/v1/agent/nodes/{node_id}/desired")
async def desired(node_id: str, request: Request) -> Response:
    ctx = context(request)
    q = request.query_params
    try:
        after = int(q.get("after", "0"))
        wait = min(_MAX_WAIT, max(0.0, float(q.get("wait", "0"))))
    except ValueError:
        raise MarathonApiError(422, {"message": "after and wait must be numbers"}) from None
    revision, tasks = await ctx.control.nodes.desired(node_id, after, wait)
    volumes = ctx.control.state.node_volumes(node_id)
    return Response(desired_body(DesiredSet(revision, tuple(tasks), volumes)), 200, None, _JSON)


_JSON = "application/json"
_SPEC_BYTES: dict[str, tuple[TaskSpec, bytes]] = {}
"""Each task's launch spec as sent last, by task id; used while it is the same object. A
node's answer holds every task it should run, so without it each change re-encoded them
all (about 32 µs a spec)."""


def desired_body(desired: DesiredSet) -> bytes:
    """``json_response(desired.to_json())``'s body, byte for byte, encoding only the specs
    not sent before (a spec is frozen: a changed one is a new object)."""
    if len(_SPEC_BYTES) > 500_000:
        _SPEC_BYTES.clear()
    parts = []
    for spec in desired.tasks:
        cached = _SPEC_BYTES.get(spec.task_id)
        if cached is None or cached[0] is not spec:
            cached = (spec, _dumps(spec.to_json()))
            _SPEC_BYTES[spec.task_id] = cached
        parts.append(cached[1])
    body = b'{"revision":' + str(desired.revision).encode() + b',"tasks":[' + b",".join(parts)
    if desired.volumes is not None:
        body += b'],"volumes":' + _dumps(list(desired.volumes))
    else:
        body += b"]"
    return body + b"}"


def _dumps(doc: object) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


@router.post("/v1/agent/nodes/{node_id}/status")
async def status(node_id: str, request: Request) -> Response:
    ctx = context(request)
    body = _parse(StatusBatch.from_json, await read_json(request))
    acks = await ctx.control.nodes.statuses(node_id, body.statuses)
    return json_response(Acks(tuple(acks)).to_json())


@router.post("/v1/agent/nodes/{node_id}/heartbeat")
async def heartbeat(node_id: str, request: Request) -> Response:
    ctx = context(request)
    body = _parse(Heartbeat.from_json, await read_json(request))
    state = await ctx.control.nodes.heartbeat(node_id, body.usage)
    interval = ctx.control.nodes.grant(node_id)
    return json_response({"state": state.value, "heartbeat_interval": interval})


@router.post("/v1/agent/nodes/{node_id}/drain")
async def drain(node_id: str, request: Request) -> Response:
    """The agent is leaving and kills its tasks (``kill -USR1``): the node takes no new
    tasks, so their replacements go elsewhere at once rather than after the grace."""
    state = await context(request).control.nodes.drain(node_id)
    return json_response({"state": state.value})
