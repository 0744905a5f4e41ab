"""The agent protocol under ``/v1/agent``: register, long-poll the desired task set, post
status updates (acknowledged by task id and seq) and heartbeat with usage; does I/O.

    POST /v1/agent/register                     {"node", "address", "boot_id"} -> {"node_id", "revision"}
    GET  /v1/agent/nodes/{id}/desired?after=&wait=          -> {"revision", "tasks": [TaskSpec fields]}
    POST /v1/agent/nodes/{id}/status            {"statuses": [...]} -> {"acks": [[task id, seq], ...]}
        (a status may carry "healthy" and "health": [{alive, consecutive_failures, ...}])
    POST /v1/agent/nodes/{id}/heartbeat         {"usage": {task id: {"cpu_seconds", "rss_bytes", "disk_bytes"}}}

An unknown node answers 404: the agent registers again.
"""

from __future__ import annotations

from typing import Annotated

import pydantic
from fastapi import APIRouter, Request
from starlette.responses import Response

from pallet.api.context import context
from pallet.api.http import json_response, read_json
from pallet.api.marathon import MarathonApiError
from pallet.control import StatusUpdate, TaskState, node_from_json
from pallet.model.roles import role_messages

__all__ = ["router"]

router = APIRouter()

_MAX_WAIT = 60.0


class _Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore", frozen=True)


class NodeBody(_Model):
    id: str = pydantic.Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$")
    hostname: str = pydantic.Field(min_length=1)
    capacity: tuple[int, int, int, int]
    gpu_count: int = 0
    gpu_model: str = ""
    ports: list[str] = []
    attributes: dict[str, str] = {}
    role: str = "*"

    @pydantic.field_validator("role")
    @classmethod
    def _valid_role(cls, role: str) -> str:
        problems = role_messages(role)
        if problems:
            raise ValueError(" ".join(problems))
        return role


class RegisterBody(_Model):
    node: NodeBody
    address: str = ""
    boot_id: str = ""


# Health times are rendered as datetimes on every read of the task, so one out of
# datetime's range (year 1..9999) made GET /v2/tasks and /v2/apps/{id} 500 until the task ended.
_Epoch = Annotated[float, pydantic.Field(ge=0.0, le=253_402_300_799.0)]  # 9999-12-31T23:59:59Z


class HealthBody(_Model):
    """One health check's result (Marathon's ``Health``; times in epoch seconds)."""

    alive: bool
    consecutive_failures: int = pydantic.Field(default=0, ge=0)
    first_success: _Epoch | None = None
    last_success: _Epoch | None = None
    last_failure: _Epoch | None = None
    last_failure_cause: str | None = pydantic.Field(default=None, max_length=1000)


class StatusBody(_Model):
    task_id: str
    state: TaskState
    seq: int = pydantic.Field(ge=1)
    reason: str | None = None
    message: str = ""
    exit_code: int | None = None
    signal: int | None = None
    healthy: bool | None = None
    health: list[HealthBody] | None = pydantic.Field(default=None, max_length=64)


class StatusesBody(_Model):
    statuses: list[StatusBody]


class UsageBody(_Model):
    cpu_seconds: float = 0.0
    rss_bytes: int = 0
    disk_bytes: int = 0


class HeartbeatBody(_Model):
    usage: dict[str, UsageBody] = {}


def _parse(model: type[_Model], body: object) -> _Model:
    try:
        return model.model_validate(body)
    except pydantic.ValidationError as e:
        details = [
            {"path": "/" + "/".join(str(p) for p in err["loc"]), "errors": [err["msg"]]}
            for err in e.errors(include_url=False)
        ]
        raise MarathonApiError(
            422, {"message": "Invalid agent message", "details": details}
        ) from None


@router.post("/v1/agent/register")
async def register(request: Request) -> Response:
    ctx = context(request)
    body = _parse(RegisterBody, await read_json(request))
    assert isinstance(body, RegisterBody)
    node = node_from_json(body.node.model_dump())
    record = await ctx.control.nodes.register(node, body.address, body.boot_id)
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
    return json_response({"revision": revision, "tasks": tasks})


@router.post("/v1/agent/nodes/{node_id}/status")
async def status(node_id: str, request: Request) -> Response:
    ctx = context(request)
    body = _parse(StatusesBody, await read_json(request))
    assert isinstance(body, StatusesBody)
    updates = [
        StatusUpdate(
            **(s.model_dump(exclude={"health"}))
            | {"health": None if s.health is None else tuple(h.model_dump() for h in s.health)}
        )
        for s in body.statuses
    ]
    acks = await ctx.control.nodes.statuses(node_id, updates)
    return json_response({"acks": [list(a) for a in acks]})


@router.post("/v1/agent/nodes/{node_id}/heartbeat")
async def heartbeat(node_id: str, request: Request) -> Response:
    ctx = context(request)
    body = _parse(HeartbeatBody, await read_json(request))
    assert isinstance(body, HeartbeatBody)
    usage = {tid: (u.cpu_seconds, u.rss_bytes, u.disk_bytes) for tid, u in body.usage.items()}
    state = await ctx.control.nodes.heartbeat(node_id, usage)
    return json_response({"state": state.value})


@router.post("/v1/agent/nodes/{node_id}/drain")
async def drain(node_id: str, request: Request) -> Response:
    """The agent is leaving and kills its tasks (``kill -USR1``): the node takes no new
    tasks, so their replacements go elsewhere at once rather than after the grace."""
    state = await context(request).control.nodes.drain(node_id)
    return json_response({"state": state.value})
