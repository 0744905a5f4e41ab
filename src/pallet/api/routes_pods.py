"""``/v2/pods``: Marathon's pods — list, create, show, replace, delete, status, versions and
killing instances; does I/O through ``Control``.

A pod is kept by control as an app whose ``RunSpec`` has containers (one id space, as in
Marathon, where an app and a pod cannot share an id): deployments, the capacity rule,
backoff and placement are the apps'. Marathon writes the sub-resources with ``::``
(``/v2/pods/web::status``), so one catch-all route per method reads the rest of the path.
A change publishes Marathon's ``pod_created_event``/``pod_updated_event``/
``pod_deleted_event``; ``?dryRun=true`` on POST and PUT (Pallet's, as for apps) answers
the plan and placement and changes nothing.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from pallet.api.context import ApiContext, context
from pallet.api.convert import moment
from pallet.api.dryrun import preview_json
from pallet.api.http import json_response, read_json
from pallet.api.marathon import MarathonApiError, Violation, not_valid, parse_bool
from pallet.api.marathon.events import PodCreatedEvent, PodDeletedEvent, PodUpdatedEvent
from pallet.api.marathon.jsontypes import format_timestamp, parse_timestamp
from pallet.api.marathon.pathid import canonical_path
from pallet.api.pod_spec import ParsedPod, parse_pod
from pallet.api.render_pods import killed_json, pod_definition, pod_json, pod_status_json
from pallet.control import AppExists, AppRecord, Change

__all__ = ["router"]

router = APIRouter()


def pod_not_found(pod_id: str) -> MarathonApiError:
    return MarathonApiError(404, {"message": f"Pod '{pod_id}' does not exist"})


def _pod(ctx: ApiContext, pod_id: str) -> AppRecord:
    pod = ctx.control.state.apps.get(pod_id)
    if pod is None or not pod.is_pod:
        raise pod_not_found(pod_id)
    return pod


def _pods(ctx: ApiContext) -> list[AppRecord]:
    return sorted((a for a in ctx.control.state.apps.values() if a.is_pod), key=lambda a: a.id)


def _headers(change: Change, pod_id: str | None = None) -> dict[str, str]:
    headers = {"Marathon-Deployment-Id": change.deployment.id}
    if pod_id is not None:
        headers["Location"] = f"/v2/pods{pod_id}"
    return headers


def _publish(
    ctx: ApiContext,
    request: Request,
    change: Change,
    kind: type[PodCreatedEvent | PodUpdatedEvent | PodDeletedEvent],
) -> None:
    event = kind(
        timestamp=moment(change.deployment.version),
        client_ip=request.client.host if request.client else "",
        uri=str(request.url.path),
    )
    ctx.control.bus.publish(event)


def _exists(pod_id: str) -> MarathonApiError:
    return MarathonApiError(409, {"message": f"An app or pod with id [{pod_id}] already exists."})


async def _dry_run(ctx: ApiContext, parsed: ParsedPod, create: bool, force: bool) -> Response:
    """What the change would do; nothing is stored or published."""
    try:
        result = await ctx.control.apps.preview(
            parsed.id, parsed.stored_definition, parsed.run, create, force
        )
    except AppExists:
        raise _exists(parsed.id) from None
    current = ctx.control.state.apps.get(parsed.id)
    before = pod_definition(current) if current is not None and not create else None
    doc = preview_json(parsed.id, result, before, parsed.definition, frozenset({parsed.id}))
    return json_response(doc)


async def _create(
    ctx: ApiContext, request: Request, body: object, pod_id: str | None = None
) -> Response:
    parsed = parse_pod(body, pod_id, default_role=ctx.info.default_role, allow=ctx.allowances)
    if parsed.id in ctx.control.groups.groups:
        raise not_valid([Violation("/id", f"{parsed.id} is a group; a pod needs its own id")])
    if parse_bool(request.query_params.get("dryRun")):
        return await _dry_run(ctx, parsed, create=True, force=False)
    try:
        change = await ctx.control.apps.create(parsed.id, parsed.stored_definition, parsed.run)
    except AppExists:
        raise _exists(parsed.id) from None
    assert change.app is not None
    _publish(ctx, request, change, PodCreatedEvent)
    return json_response(pod_json(change.app), 201, _headers(change, parsed.id))


# ------------------------------------------------------------------ the collection


@router.head("/v2/pods")
async def pods_supported() -> Response:
    return Response(status_code=200)


@router.get("/v2/pods")
async def list_pods(request: Request) -> Response:
    ctx = context(request)
    return json_response([pod_json(p) for p in _pods(ctx)])


@router.post("/v2/pods")
async def create_pod(request: Request) -> Response:
    ctx = context(request)
    return await _create(ctx, request, await read_json(request))


# ------------------------------------------------------------------ one pod


@router.get("/v2/pods/{rest:path}")
async def get_pod(rest: str, request: Request) -> Response:
    ctx = context(request)
    if rest in ("::status", "/::status"):
        return json_response([pod_status_json(ctx.control.state, p) for p in _pods(ctx)])
    path, _, sub = rest.partition("::")
    pod = _pod(ctx, canonical_path(path))
    if sub == "":
        return json_response(pod_json(pod))
    if sub == "status":
        return json_response(pod_status_json(ctx.control.state, pod))
    if sub == "versions":
        versions = await ctx.control.apps.versions(pod.id)
        texts = sorted((format_timestamp(moment(v.version)) for v in versions), reverse=True)
        return json_response(texts)
    if sub.startswith("versions/"):
        wanted = _moment_or_none(sub[len("versions/") :])
        for record in await ctx.control.apps.versions(pod.id):
            if wanted is not None and moment(record.version) == wanted:
                return json_response(pod_json(record))
        raise MarathonApiError(404, {"message": f"Pod '{pod.id}' has no version {sub[9:]}"})
    raise pod_not_found(pod.id)


def _moment_or_none(text: str) -> Any:
    try:
        return parse_timestamp(text)
    except ValueError:
        return None


@router.put("/v2/pods/{rest:path}")
async def put_pod(rest: str, request: Request) -> Response:
    ctx = context(request)
    pod_id = canonical_path(rest)
    q = request.query_params
    body = await read_json(request)
    current = ctx.control.state.apps.get(pod_id)
    if current is None:
        return await _create(ctx, request, body, pod_id)
    if not current.is_pod:
        raise pod_not_found(pod_id)
    parsed = parse_pod(body, pod_id, default_role=ctx.info.default_role, allow=ctx.allowances)
    force = parse_bool(q.get("force"))
    if parse_bool(q.get("dryRun")):
        return await _dry_run(ctx, parsed, create=False, force=force)
    change = await ctx.control.apps.update(
        pod_id, parsed.stored_definition, parsed.run, force=force
    )
    assert change.app is not None
    _publish(ctx, request, change, PodUpdatedEvent)
    return json_response(pod_json(change.app), 200, _headers(change))


@router.delete("/v2/pods/{rest:path}")
async def delete_pod(rest: str, request: Request) -> Response:
    ctx = context(request)
    q = request.query_params
    force = parse_bool(q.get("force"))
    path, _, sub = rest.partition("::")
    pod = _pod(ctx, canonical_path(path))
    if sub == "":
        change = await ctx.control.apps.delete(pod.id, force=force)
        _publish(ctx, request, change, PodDeletedEvent)
        return Response(status_code=202, headers=_headers(change))
    if parse_bool(q.get("wipe")):
        raise not_valid([Violation("/wipe", "wipe is not supported by Pallet yet")])
    if sub.startswith("instances/"):
        ids = [sub[len("instances/") :]]
        one = True
    elif sub == "instances":
        body = await read_json(request)
        if not isinstance(body, list) or not all(isinstance(i, str) for i in body):
            raise not_valid([Violation("/", "must be a list of instance ids")])
        ids, one = list(body), False
    else:
        raise pod_not_found(pod.id)
    state = ctx.control.state
    for instance in ids:
        task = state.tasks.get(instance)
        if task is None or task.app_id != pod.id:
            raise MarathonApiError(
                404, {"message": f"Instance '{instance}' of pod '{pod.id}' does not exist"}
            )
    killed, _ = await ctx.control.apps.kill_tasks(ids, scale=False, force=force)
    shown = {t.id: t for t in killed}
    tasks = [state.tasks.get(i) or shown.get(i) for i in ids]  # as it is now: goal KILL
    doc = killed_json(state, pod, [t for t in tasks if t is not None])
    return json_response(doc[0] if one and doc else doc)
