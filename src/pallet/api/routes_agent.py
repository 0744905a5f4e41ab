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

from collections.abc import Callable
from typing import TypeVar

from fastapi import APIRouter, Request
from starlette.responses import Response

from pallet.api.context import context
from pallet.api.http import json_response, read_json
from pallet.api.marathon import MarathonApiError
from pallet.model import Acks, DesiredSet, Heartbeat, Registration, StatusBatch, ValidationError
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
    return json_response({"node_id": record.id, "revision": revision})


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
    return json_response(DesiredSet(revision, tuple(tasks), volumes).to_json())


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
    return json_response({"state": state.value})


@router.post("/v1/agent/nodes/{node_id}/drain")
async def drain(node_id: str, request: Request) -> Response:
    """The agent is leaving and kills its tasks (``kill -USR1``): the node takes no new
    tasks, so their replacements go elsewhere at once rather than after the grace."""
    state = await context(request).control.nodes.drain(node_id)
    return json_response({"state": state.value})
