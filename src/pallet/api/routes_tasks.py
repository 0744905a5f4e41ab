"""``/v2/tasks``, ``/v2/deployments`` and ``/v2/queue``; does I/O through ``Control``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from pallet.api import visible
from pallet.api.context import context
from pallet.api.convert import marathon_task, moment
from pallet.api.guard import permissions_of
from pallet.api.http import json_response, read_json
from pallet.api.marathon import (
    MarathonApiError,
    Violation,
    deployment_result_json,
    not_valid,
    parse_bool,
    task_json,
)
from pallet.api.marathon.pathid import canonical_path
from pallet.control import TaskState

__all__ = ["router"]

router = APIRouter()

_STATUS = {
    "running": {TaskState.RUNNING},
    "staging": {TaskState.STAGING, TaskState.STARTING},
}


@router.get("/v2/tasks")
async def list_tasks(request: Request) -> Response:
    ctx = context(request)
    wanted = request.query_params.getlist("status")
    states = set().union(*(_STATUS.get(s.lower(), set()) for s in wanted)) if wanted else None
    docs = []
    perms = permissions_of(request.scope)
    for app_id in sorted(ctx.control.state.tasks_by_app):
        if not visible.may_read(perms, app_id):
            continue
        app = ctx.control.state.apps.get(app_id)
        ports = ctx.renderer.service_ports(app) if app is not None else ()
        tasks = sorted(ctx.control.state.app_tasks(app_id), key=lambda t: (t.staged_at, t.id))
        docs += [
            task_json(marathon_task(t, ports, ctx.control.state.reservations))
            for t in tasks
            if states is None or t.state in states
        ]
    return json_response({"tasks": docs})


@router.post("/v2/tasks/delete")
async def kill_tasks(request: Request) -> Response:
    """Kill the tasks named in ``{"ids": [...]}``; ``scale=true`` shrinks their apps,
    ``wipe=true`` destroys their persistent volumes."""
    ctx = context(request)
    body = await read_json(request)
    ids = body.get("ids") if isinstance(body, dict) else None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise not_valid([Violation("/ids", "give the task ids to kill as a list of strings")])
    scale = parse_bool(request.query_params.get("scale"))
    force = parse_bool(request.query_params.get("force"))
    wipe = parse_bool(request.query_params.get("wipe"))
    if scale and wipe:
        raise MarathonApiError(400, {"message": "You cannot use scale and wipe at the same time."})
    known = [i for i in ids if i in ctx.control.state.tasks]
    killed, change = await ctx.control.apps.kill_tasks(known, scale=scale, force=force, wipe=wipe)
    if change is not None:
        doc = deployment_result_json(change.deployment.id, moment(change.deployment.version))
        return json_response(doc, 200, {"Marathon-Deployment-Id": change.deployment.id})
    return json_response(
        {"tasks": [task_json(marathon_task(t, (), ctx.control.state.reservations)) for t in killed]}
    )


@router.get("/v2/deployments")
async def list_deployments(request: Request) -> Response:
    docs = context(request).renderer.deployments()
    return json_response(visible.deployments(permissions_of(request.scope), docs))


@router.delete("/v2/deployments/{deployment_id}")
async def cancel_deployment(deployment_id: str, request: Request) -> Response:
    ctx = context(request)
    force = parse_bool(request.query_params.get("force"))
    change = await ctx.control.apps.cancel_deployment(deployment_id, force=force)
    if change is None:
        return Response(status_code=202)
    doc = deployment_result_json(change.deployment.id, moment(change.deployment.version))
    return json_response(doc, 200, {"Marathon-Deployment-Id": change.deployment.id})


@router.post("/v2/deployments/{deployment_id}/promote")
async def promote_deployment(deployment_id: str, request: Request) -> Response:
    """Pallet's: a deployment holding at its canaries goes on to replace every task."""
    ctx = context(request)
    deployment = await ctx.control.apps.promote(deployment_id)
    return json_response(ctx.renderer.deployment_model(deployment).to_json())


@router.get("/v2/queue")
async def queue(request: Request) -> Response:
    ctx = context(request)
    embeds = request.query_params.getlist("embed")
    doc = ctx.renderer.queue(ctx.control.clock(), embed_offers="lastUnusedOffers" in embeds)
    return json_response(visible.queue(permissions_of(request.scope), doc))


@router.delete("/v2/queue/{rest:path}")
async def reset_delay(rest: str, request: Request) -> Response:
    """``DELETE /v2/queue/{app id}/delay``: launch again without waiting out the backoff."""
    ctx = context(request)
    if not rest.endswith("/delay"):
        raise MarathonApiError(404, {"message": "use DELETE /v2/queue/<app id>/delay"})
    await ctx.control.apps.reset_delay(canonical_path(rest[: -len("/delay")]))
    return Response(status_code=204)
