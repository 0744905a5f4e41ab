"""Pallet's own ``/v1``: nodes (list, detail, drain, undrain, remove, what their service
manager reports) and task logs proxied from the agents; does I/O.

The node JSON is a contract with the CLI and the web UI: keep its fields as they are.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import httpx
import pydantic
from fastapi import APIRouter, Request
from starlette.responses import Response

from pallet.api.context import ApiContext, context
from pallet.api.convert import marathon_task
from pallet.api.http import json_response, read_json
from pallet.api.marathon import MarathonApiError, task_json
from pallet.api.marathon.errors import shape_error
from pallet.control import NodeRecord, iso
from pallet.control.state import node_ip
from pallet.core.maintenance import node_maintenance
from pallet.model import ValidationError, check_task_id
from pallet.model.net import agent_address
from pallet.model.pods import CONTAINER_NAME

__all__ = ["node_json", "router"]

router = APIRouter()

_MAX_DEADLINE = 30 * 86400.0
"""The longest drain deadline, in seconds (30 days)."""


def node_json(ctx: ApiContext, record: NodeRecord) -> dict[str, Any]:
    state = ctx.control.state
    view = state.view
    row = view.row[record.id]
    n = record.node
    cap = n.capacity
    live = state.liveness.get(record.id)
    tasks = sorted(state.tasks_by_node.get(record.id, ()))
    return {
        "id": n.id,
        "hostname": n.hostname,
        "state": n.state.value,
        "attributes": dict(n.attributes),
        "role": n.role,
        "gpu_model": n.gpu_model,
        "networks": list(n.networks),
        "disks": [
            {**d.to_json(), "allocated": view.disk_used[row].get(d.root, 0)} for d in n.disks
        ],
        "capacity": {
            "cpus": cap.cpu_milli / 1000,
            "mem": cap.mem_mib,
            "disk": cap.disk_mib,
            "gpus": cap.gpu_milli / 1000,
            "ports": [str(r) for r in n.ports],
        },
        "allocated": {
            "cpus": int(cap.cpu_milli - view.free_cpu[row]) / 1000,
            "mem": int(cap.mem_mib - view.free_mem[row]),
            "disk": int(cap.disk_mib - view.free_disk[row]),
            "gpus": int(cap.gpu_milli - view.free_gpu[row]) / 1000,
        },
        "used": {
            "cpus": round(live.cpu_rate, 3) if live else 0.0,
            "mem": round(live.rss_bytes / (1 << 20), 1) if live else 0.0,
            "disk": round(live.disk_bytes / (1 << 20), 1) if live else 0.0,
        },
        "tasks": tasks,
        "last_heartbeat": iso(live.last_heartbeat) if live and live.last_heartbeat else None,
        "drain": {
            "started_at": iso(record.drain.started_at),
            "deadline": iso(record.drain.deadline) if record.drain.deadline is not None else None,
        }
        if record.drain is not None
        else None,
        "maintenance": _maintenance(ctx, record),
        "supervisor": _supervisor(live.supervisor) if live and live.supervisor else None,
    }


def _supervisor(doc: dict[str, Any]) -> dict[str, Any]:
    """How the agent's service manager keeps it running, times as ISO 8601."""
    out = dict(doc)
    for key in ("backing_off_until", "last_exit", "reported_at"):
        if out.get(key) is not None:
            out[key] = iso(out[key])
    return out


def _maintenance(ctx: ApiContext, record: NodeRecord) -> dict[str, Any] | None:
    """The node's machine in the maintenance schedule: its mode, its window in Mesos's
    ``unavailability`` shape and where now stands in it (None: not scheduled)."""
    m = ctx.control.state.maintenance
    if not m.windows:
        return None
    at = node_maintenance(m, record.node.hostname, node_ip(record.address), ctx.control.clock())
    if at.window is None:
        return None
    return {
        "mode": at.mode.value,
        "unavailability": at.window.to_json()["unavailability"],
        "phase": at.phase,
    }


def _not_found(what: str) -> MarathonApiError:
    return MarathonApiError(404, {"message": what})


@router.get("/v1/nodes")
async def list_nodes(request: Request) -> Response:
    ctx = context(request)
    nodes = sorted(ctx.control.state.nodes.values(), key=lambda r: (r.node.hostname, r.id))
    return json_response({"nodes": [node_json(ctx, r) for r in nodes]})


@router.get("/v1/nodes/{node_id}")
async def show_node(node_id: str, request: Request) -> Response:
    ctx = context(request)
    record = ctx.control.state.nodes.get(node_id)
    if record is None:
        raise _not_found(f"Node '{node_id}' does not exist")
    doc = node_json(ctx, record)
    details = []
    for tid in doc["tasks"]:
        task = ctx.control.state.tasks[tid]
        app = ctx.control.state.apps.get(task.app_id)
        ports = ctx.renderer.service_ports(app) if app is not None else ()
        details.append(task_json(marathon_task(task, ports, ctx.control.state.reservations)))
    doc["task_details"] = details
    return json_response(doc)


class DrainBody(pydantic.BaseModel):
    """``POST /v1/nodes/{id}/drain``: seconds until what has not moved is killed."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)
    deadline: float | None = pydantic.Field(
        default=None, ge=0, le=_MAX_DEADLINE, allow_inf_nan=False
    )


def _record(ctx: ApiContext, node_id: str) -> NodeRecord:
    record = ctx.control.state.nodes.get(node_id)
    if record is None:
        raise _not_found(f"Node '{node_id}' does not exist")
    return record


@router.post("/v1/nodes/{node_id}/drain")
async def drain_node(node_id: str, request: Request) -> Response:
    """An operator's drain: the node takes no new task, its tasks move elsewhere as each
    app's upgrade strategy allows, and those left at ``deadline`` seconds are killed. It
    holds across agent restarts until ``/undrain``."""
    ctx = context(request)
    _record(ctx, node_id)
    doc: object = {}  # no body: no deadline
    sized = request.headers.get("content-length", "0") != "0"
    if sized or "chunked" in request.headers.get("transfer-encoding", ""):
        doc = await read_json(request)
    try:
        body = DrainBody.model_validate(doc)
    except pydantic.ValidationError as exc:
        raise shape_error(exc) from None
    record = await ctx.control.nodes.drain_node(node_id, body.deadline)
    return json_response(node_json(ctx, record))


class SupervisorBody(pydantic.BaseModel):
    """``PUT /v1/nodes/{id}/supervisor``: what the agent's service manager (``pallet up``)
    says of its restarts; times in epoch seconds."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)
    supervisor: str = pydantic.Field(min_length=1, max_length=64)
    restarts: int = pydantic.Field(ge=0)
    exits_last_minute: int = pydantic.Field(ge=0)
    backing_off_until: float | None = pydantic.Field(default=None, ge=0, allow_inf_nan=False)
    last_exit: float | None = pydantic.Field(default=None, ge=0, allow_inf_nan=False)
    last_line: str = pydantic.Field(default="", max_length=500)


@router.put("/v1/nodes/{node_id}/supervisor")
async def report_supervisor(node_id: str, request: Request) -> Response:
    """Kept in memory with the node's liveness (the service manager sends it again while
    it matters), shown as the node's ``supervisor``."""
    ctx = context(request)
    _record(ctx, node_id)
    try:
        body = SupervisorBody.model_validate(await read_json(request))
    except pydantic.ValidationError as exc:
        raise shape_error(exc) from None
    doc = body.model_dump()
    doc["reported_at"] = ctx.control.clock()
    ctx.control.state.liveness[node_id].supervisor = doc
    return json_response(node_json(ctx, _record(ctx, node_id)))


@router.post("/v1/nodes/{node_id}/undrain")
async def undrain_node(node_id: str, request: Request) -> Response:
    ctx = context(request)
    _record(ctx, node_id)
    record = await ctx.control.nodes.undrain_node(node_id)
    return json_response(node_json(ctx, record))


@router.delete("/v1/nodes/{node_id}")
async def remove_node(node_id: str, request: Request) -> Response:
    """Forget a node that is down (UNREACHABLE, GONE, DOWN) or drained (DRAINING, no task left);
    409 for any other."""
    ctx = context(request)
    doc = node_json(ctx, _record(ctx, node_id))
    await ctx.control.nodes.remove_node(node_id)
    return json_response(doc)


# ASCII digits only: str.isdigit() also takes "²" and "١٢", which the agent then
# refused with a raw message or read as another number.
_OFFSET = re.compile(r"-?[0-9]{1,18}")
_LENGTH = re.compile(r"[0-9]{1,18}")


@router.get("/v1/tasks/{task_id}/logs")
async def task_logs(task_id: str, request: Request) -> Response:
    """A byte range of a task's ``stdout`` or ``stderr``, read by its agent:
    ``{"task_id", "stream", "offset", "size", "next_offset", "data"}``. A negative
    ``offset`` counts from the end; tasks that ended recently can still be read.
    ``container``: that container's log of a pod instance (the instance's own is its
    executor's)."""
    ctx = context(request)
    q = request.query_params
    stream = q.get("stream", "stdout")
    if stream not in ("stdout", "stderr"):
        raise MarathonApiError(422, {"message": "stream must be stdout or stderr"})
    params: dict[str, str] = {"stream": stream}
    for name, pattern in (("offset", _OFFSET), ("length", _LENGTH)):
        value = q.get(name)
        if value is not None:
            if not pattern.fullmatch(value):
                raise MarathonApiError(422, {"message": f"{name} must be a whole number"})
            params[name] = value
    state = ctx.control.state
    task = state.tasks.get(task_id) or state.recently_ended.get(task_id)
    if task is None:
        raise _not_found(f"Task '{task_id}' does not exist")
    container = q.get("container")
    if container is not None:
        if not CONTAINER_NAME.match(container):
            raise MarathonApiError(422, {"message": "container must be a container's name"})
        app = state.apps.get(task.app_id)
        names = [c.name for c in app.run.containers] if app is not None else []
        if container not in names:
            raise _not_found(
                f"Task '{task_id}' has no container '{container}'"
                + (f" (it has {', '.join(names)})" if names else " (it is not a pod instance)")
            )
        params["container"] = container
    record = state.nodes.get(task.node_id)
    if record is None or not record.address:
        raise _not_found(f"the node of task '{task_id}' is gone")
    try:
        # Checked again here (a record stored before registration checked it), and the
        # path is ours: the agent's log route and a task id, nothing the agent chose.
        base = agent_address(record.address, None)
        url = f"{base}/v1/logs/{quote(check_task_id(task_id), safe='')}"
    except ValidationError as e:
        raise MarathonApiError(
            502, {"message": f"node {record.id} registered an address Pallet will not call: {e}"}
        ) from None
    headers = {"Authorization": f"token={ctx.auth.master_token()}"} if ctx.auth else {}
    verify: Any = ctx.agent_tls if ctx.agent_tls is not None else True
    try:
        async with httpx.AsyncClient(
            timeout=ctx.log_timeout, follow_redirects=False, verify=verify
        ) as client:
            answer = await client.get(url, params=params, headers=headers)
    except httpx.HTTPError as e:
        raise MarathonApiError(
            502, {"message": f"cannot reach the agent of node {record.id} at {record.address}: {e}"}
        ) from None
    return json_response(*_log_answer(record.id, task_id, answer))


_CHUNK_FIELDS = {"task_id": str, "stream": str, "offset": int, "size": int, "next_offset": int}


def _log_answer(node_id: str, task_id: str, answer: httpx.Response) -> tuple[object, int]:
    """The agent's answer, passed on only as what a log server says: a log chunk of this
    task, or an error message; anything else is a 502 and its body is not shown."""
    try:
        doc = answer.json()
    except ValueError:
        doc = None
    if answer.status_code == 200 and isinstance(doc, dict):
        fields_ok = all(isinstance(doc.get(k), t) for k, t in _CHUNK_FIELDS.items())
        if fields_ok and isinstance(doc.get("data"), str) and doc["task_id"] == task_id:
            return {k: doc[k] for k in (*_CHUNK_FIELDS, "data")}, 200
    elif 400 <= answer.status_code < 500 and isinstance(doc, dict):
        return {"message": str(doc.get("message", ""))[:1000]}, answer.status_code
    return {"message": f"the agent of node {node_id} answered what is not a log"}, 502
