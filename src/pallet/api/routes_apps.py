"""``/v2/apps``: list, create, show, update (PUT/PATCH), delete, restart, the app's tasks and
versions, Marathon field for field; does I/O through ``Control``.

App ids are paths (``/prod/web``), and the Marathon client doubles the slash
(``/v2/apps//web``), so one catch-all route per method reads the rest of the path and
splits off ``/restart``, ``/tasks[/<task id>]`` and ``/versions[/<version>]``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from pallet.api.context import ApiContext, context
from pallet.api.convert import (
    app_document,
    check_runnable,
    marathon_task,
    moment,
    resident_update_violations,
    stored_app,
)
from pallet.api.dryrun import preview_json
from pallet.api.guard import permissions_of
from pallet.api.http import json_response, read_json
from pallet.api.marathon import (
    ApiPostEvent,
    AppSpec,
    MarathonApiError,
    app_not_found,
    apply_update,
    deployment_result_json,
    normalize_app,
    not_valid,
    parse_bool,
    parse_embed,
    read_app,
    read_update,
    rollback_version,
    task_json,
    task_not_found,
)
from pallet.api.marathon.jsontypes import parse_timestamp
from pallet.api.marathon.params import INDEX_EMBEDS, SHOW_EMBEDS
from pallet.api.marathon.pathid import canonical_path
from pallet.api.secretrefs import check_secret_refs
from pallet.api.serviceports import may_claim_service_ports, service_port_violations
from pallet.api.visible import may_read
from pallet.control import AppRecord, Change, RunSpec

__all__ = ["router"]

router = APIRouter()

_TASK = re.compile(r"^(?P<app>.*)/tasks/(?P<task>[^/]+)$")
_VERSION = re.compile(r"^(?P<app>.*)/versions/(?P<version>[^/]+)$")


def _deployment_response(change: Change, status: int = 200) -> Response:
    doc = deployment_result_json(change.deployment.id, moment(change.deployment.version))
    return json_response(doc, status, {"Marathon-Deployment-Id": change.deployment.id})


def _publish_post(ctx: ApiContext, request: Request, spec: AppSpec, app: AppRecord) -> None:
    if not ctx.control.bus.subscribers:
        # Only ``/v2/events`` streams read it (the bus's own listeners are control's and
        # never take an API event): with none open, rendering the app is wasted.
        return
    event = ApiPostEvent(
        timestamp=moment(app.version),
        client_ip=request.client.host if request.client else "",
        uri=str(request.url.path),
        app_definition=ctx.renderer.app(app, frozenset()),
    )
    ctx.control.bus.publish(event)


async def _spec_and_record(
    ctx: ApiContext, request: Request, spec: AppSpec
) -> tuple[AppSpec, RunSpec]:
    check_runnable(spec, ctx.allowances)
    await check_secret_refs(
        request, ((f"/secrets/{name}/source", name, src) for name, src in spec.secrets.items())
    )
    ctx.control.groups.check_dependencies(spec.id, spec.dependencies)
    if may_claim_service_ports(spec):
        others = ((a.id, a.version, a) for a in ctx.control.state.apps.values())
        document = app_document(spec)
        clashes = service_port_violations(spec.id, document, others, ctx.renderer.definition)
        if clashes:
            raise not_valid(clashes)
    return stored_app(spec)


def _app(ctx: ApiContext, app_id: str) -> AppRecord:
    app = ctx.control.state.apps.get(app_id)
    if app is None or app.is_pod:  # a pod shares the id space, not the app routes
        raise app_not_found(app_id)
    return app


# ------------------------------------------------------------------ the collection


@router.get("/v2/apps")
async def list_apps(request: Request) -> Response:
    ctx = context(request)
    q = request.query_params
    embeds = parse_embed(q.getlist("embed"), INDEX_EMBEDS)
    cmd, id_filter, label = q.get("cmd"), q.get("id"), q.get("label")
    gzipped = "gzip" in request.headers.get("accept-encoding", "")
    headers = {"Vary": "Accept-Encoding"}
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    key: tuple[object, ...] = (embeds, cmd, id_filter, label)
    perms = permissions_of(request.scope)
    everything = perms.sees_all("service")
    body = ctx.renderer.cached_list(key, gzipped) if everything else None
    if body is None and everything and not (cmd or id_filter or label):
        # Every app: the renderer keeps that list and updates it from what changed.
        body = ctx.renderer.app_list(None, embeds, key, gzipped)
    elif body is None:
        apps = _filtered(ctx.renderer.every_app(), cmd, id_filter, label)
        if not everything:  # only what the caller may read, cached by exactly that
            apps = [a for a in apps if may_read(perms, a.id)]
            key = ("visible", tuple(a.id for a in apps), *key)
        body = ctx.renderer.app_list(apps, embeds, key, gzipped)
    return Response(body, 200, headers, media_type="application/json")


def _filtered(
    apps: list[AppRecord], cmd: str | None, id_filter: str | None, label: str | None
) -> list[AppRecord]:
    """Marathon's ``cmd``, ``id`` (substring) and ``label`` (``name`` or ``name==value``) filters."""
    if cmd:
        apps = [a for a in apps if cmd in (a.run.cmd or "")]
    if id_filter:
        apps = [a for a in apps if id_filter in a.id]
    if label:
        name, _, value = label.partition("==")
        name, value = name.strip(), value.strip()
        apps = [
            a for a in apps if name in a.run.labels and (not value or a.run.labels[name] == value)
        ]
    return apps


@router.post("/v2/apps")
async def create_app(request: Request) -> Response:
    ctx = context(request)
    body = await read_json(request)
    spec = normalize_app(read_app(body), default_role=ctx.info.default_role)
    return await _create(ctx, request, spec)


async def _dry_run(
    ctx: ApiContext, request: Request, spec: AppSpec, create: bool, force: bool = False
) -> Response:
    """What the change would do; nothing is stored or published."""
    definition, run = await _spec_and_record(ctx, request, spec)
    result = await ctx.control.apps.preview(spec.id, definition, run, create, force)
    current = ctx.control.state.apps.get(spec.id)
    before = ctx.renderer.definition(current) if current is not None and not create else None
    return json_response(preview_json(spec.id, result, before, app_document(spec)))


async def _create(ctx: ApiContext, request: Request, spec: AppSpec) -> Response:
    if parse_bool(request.query_params.get("dryRun")):
        return await _dry_run(ctx, request, spec, create=True)
    definition, run = await _spec_and_record(ctx, request, spec)
    change = await ctx.control.apps.create(spec.id, definition, run)
    assert change.app is not None
    _publish_post(ctx, request, spec, change.app)
    doc = ctx.renderer.created(change.app)
    headers = {"Location": f"/v2/apps{spec.id}", "Marathon-Deployment-Id": change.deployment.id}
    return json_response(doc, 201, headers)


# ------------------------------------------------------------------ one app and its parts


@router.get("/v2/apps/{rest:path}")
async def get_app(rest: str, request: Request) -> Response:
    ctx = context(request)
    if m := _TASK.match(rest):
        raise task_not_found(m.group("task"))
    if rest.endswith("/tasks"):
        app = _app(ctx, canonical_path(rest[: -len("/tasks")]))
        return json_response({"tasks": [task_json(t) for t in ctx.renderer.task_json_records(app)]})
    if rest.endswith("/versions"):
        app_id = _app(ctx, canonical_path(rest[: -len("/versions")])).id
        versions = await ctx.control.apps.versions(app_id)
        return json_response({"versions": sorted((v.version for v in versions), reverse=True)})
    if m := _VERSION.match(rest):
        app_id = _app(ctx, canonical_path(m.group("app"))).id
        version = m.group("version")
        for record in await ctx.control.apps.versions(app_id):
            if record.version == version or _same_moment(record.version, version):
                return json_response(ctx.renderer.app(record, frozenset(), version_info=False))
        raise app_not_found(app_id, _parse_or_none(version))
    app = _app(ctx, canonical_path(rest))
    embeds = parse_embed(request.query_params.getlist("embed"), SHOW_EMBEDS)
    return json_response({"app": ctx.renderer.app(app, embeds)})


def _parse_or_none(version: str) -> datetime | None:
    """The moment a version in a URL names, or None for text that names none (the
    parse also rejects times an offset carries out of datetime's range)."""
    try:
        return parse_timestamp(version)
    except ValueError:
        return None


def _same_moment(stored: str, version: str) -> bool:
    wanted = _parse_or_none(version)
    return wanted is not None and moment(stored) == wanted


@router.put("/v2/apps/{rest:path}")
async def put_app(rest: str, request: Request) -> Response:
    return await _update(rest, request, create_missing=True)


@router.patch("/v2/apps/{rest:path}")
async def patch_app(rest: str, request: Request) -> Response:
    return await _update(rest, request, create_missing=False)


async def _update(rest: str, request: Request, create_missing: bool) -> Response:
    ctx = context(request)
    app_id = canonical_path(rest)
    force = parse_bool(request.query_params.get("force"))
    dry_run = parse_bool(request.query_params.get("dryRun"))
    body = await read_json(request)
    current = ctx.control.state.apps.get(app_id)
    if current is not None and current.is_pod:
        raise app_not_found(app_id)
    if current is None:
        if not create_missing:
            raise app_not_found(app_id)
        spec = normalize_app(read_app(body, app_id), default_role=ctx.info.default_role)
        if dry_run:
            return await _dry_run(ctx, request, spec, create=True)
        definition, run = await _spec_and_record(ctx, request, spec)
        change = await ctx.control.apps.create(app_id, definition, run)
        assert change.app is not None
        _publish_post(ctx, request, spec, change.app)
        return _deployment_response(change, 201)
    update = read_update(body)
    target = rollback_version(update)
    if target is not None:
        spec = await _version_spec(ctx, app_id, target)
    else:
        spec = apply_update(current.spec, update, default_role=ctx.info.default_role)
    if dry_run:
        return await _dry_run(ctx, request, spec, create=False, force=force)
    definition, run = await _spec_and_record(ctx, request, spec)
    if violations := resident_update_violations(current.run, run):
        raise not_valid(violations)
    change = await ctx.control.apps.update(app_id, definition, run, force=force)
    assert change.app is not None
    _publish_post(ctx, request, spec, change.app)
    return _deployment_response(change)


async def _version_spec(ctx: ApiContext, app_id: str, version: Any) -> AppSpec:
    for record in await ctx.control.apps.versions(app_id):
        if moment(record.version) == version:
            return record.spec
    raise app_not_found(app_id, version)


@router.delete("/v2/apps/{rest:path}")
async def delete_app(rest: str, request: Request) -> Response:
    ctx = context(request)
    q = request.query_params
    force = parse_bool(q.get("force"))
    scale = parse_bool(q.get("scale"))
    wipe = parse_bool(q.get("wipe"))
    if scale and wipe:
        raise MarathonApiError(400, {"message": "You cannot use scale and wipe at the same time."})
    if (m := _TASK.match(rest)) and canonical_path(rest) not in ctx.control.state.apps:
        app = _app(ctx, canonical_path(m.group("app")))
        task = ctx.control.state.tasks.get(m.group("task"))
        if task is None or task.app_id != app.id:
            raise task_not_found(m.group("task"))
        killed, change = await ctx.control.apps.kill_tasks(
            [task.id], scale=scale, force=force, wipe=wipe
        )
        if change is not None:
            return _deployment_response(change)
        ports = ctx.renderer.service_ports(app)
        # A task already being killed is not killed again: answer with it as it is.
        shown = killed[0] if killed else ctx.control.state.tasks.get(task.id, task)
        return json_response(
            {"task": task_json(marathon_task(shown, ports, ctx.control.state.reservations))}
        )
    if rest.endswith("/tasks") and canonical_path(rest) not in ctx.control.state.apps:
        app = _app(ctx, canonical_path(rest[: -len("/tasks")]))
        host = q.get("host")
        tasks = [t for t in ctx.control.state.app_tasks(app.id) if not host or t.host == host]
        killed, change = await ctx.control.apps.kill_tasks(
            [t.id for t in tasks], scale=scale, force=force, wipe=wipe
        )
        if change is not None:
            return _deployment_response(change)
        ports = ctx.renderer.service_ports(app)
        return json_response(
            {
                "tasks": [
                    task_json(marathon_task(t, ports, ctx.control.state.reservations))
                    for t in killed
                ]
            }
        )
    change = await ctx.control.apps.delete(_app(ctx, canonical_path(rest)).id, force=force)
    return _deployment_response(change)


@router.post("/v2/apps/{rest:path}")
async def post_app(rest: str, request: Request) -> Response:
    ctx = context(request)
    if not rest.endswith("/restart"):
        raise app_not_found(canonical_path(rest))
    app_id = _app(ctx, canonical_path(rest[: -len("/restart")])).id
    force = parse_bool(request.query_params.get("force"))
    change = await ctx.control.apps.restart(app_id, force=force)
    return _deployment_response(change)
