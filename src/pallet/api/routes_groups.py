"""``/v2/groups``: the tree of groups and apps, and changing a group's apps together
(create, update, scale, roll back, delete) as one deployment ordered by dependencies;
does I/O through ``Control``. Shapes follow Marathon's ``group.raml``/``groupUpdate.raml``.

    GET    /v2/groups[/{id}]           the group with its apps and groups (``embed``)
    GET    /v2/groups/{id}/versions    the group's versions, newest first
    POST   /v2/groups[/{id}]           create a group (409 when it exists)
    PUT    /v2/groups[/{id}]           change it: its apps become those given (others
                                       stop), or ``scaleBy`` a factor, or back to ``version``
    DELETE /v2/groups[/{id}]           stop every app in it and forget it

``force`` overrides deployments in flight; ``dryRun`` answers the steps and changes
nothing. App ids in a group body may be relative to the group (``web`` in ``/shop``).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from pallet.api import visible
from pallet.api.context import ApiContext, context
from pallet.api.convert import (
    check_runnable,
    moment,
    resident_update_violations,
    stored_app,
)
from pallet.api.guard import permissions_of
from pallet.api.http import json_response, read_json
from pallet.api.marathon import (
    AppSpec,
    MarathonApiError,
    Violation,
    deployment_result_json,
    normalize_app,
    not_valid,
    parse_bool,
    parse_embed,
    read_app,
)
from pallet.api.marathon.pathid import canonical_path, is_path_syntax, path_violations
from pallet.api.render_pods import pod_json
from pallet.api.secretrefs import check_secret_refs
from pallet.control import AppChange, AppRecord, Change, GroupNotFound
from pallet.control.depends import under
from pallet.model.app_run import run_spec

__all__ = ["router"]

router = APIRouter()

_GROUP_FIELDS = frozenset(
    {"id", "apps", "groups", "pods", "dependencies", "version", "scaleBy", "enforceRole"}
)


# ------------------------------------------------------------------ reading a group body


def _shift(error: MarathonApiError, prefix: str) -> MarathonApiError:
    """An error about one app of a group, its paths moved under ``prefix``."""
    body = dict(error.body)
    details = body.get("details")
    if isinstance(details, list):
        body["details"] = [
            {**d, "path": prefix + (d.get("path") or "/").rstrip("/")} for d in details
        ]
    return MarathonApiError(error.status, body)


def _dependencies(raw: object, base: str, where: str) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(d, str) for d in raw):
        raise not_valid([Violation(where, "must be a list of app or group ids")])
    out = []
    for i, dep in enumerate(raw):
        if not is_path_syntax(dep):
            raise not_valid([Violation(f"{where}({i})", f"{dep!r} is not a valid path")])
        out.append(canonical_path(dep, base))
    return out


def _read_group(
    ctx: ApiContext,
    body: object,
    group_id: str,
    where: str = "",
    groups: dict[str, list[str]] | None = None,
) -> tuple[list[AppChange], dict[str, list[str]]]:
    """The apps (ids absolute) and groups (id -> dependencies) a group body defines."""
    if not isinstance(body, dict):
        raise not_valid([Violation(where or "/", "a group must be a JSON object")])
    unknown = sorted(set(body) - _GROUP_FIELDS)
    if unknown:
        raise not_valid([Violation(f"{where}/{unknown[0]}", "is not a field of a group")])
    if body.get("pods"):
        raise not_valid([Violation(f"{where}/pods", "pods in groups are not supported yet")])
    groups = {} if groups is None else groups
    parent = group_id.rsplit("/", 1)[0] or "/"
    groups[group_id] = _dependencies(body.get("dependencies"), parent, f"{where}/dependencies")
    apps: list[AppChange] = []
    raw_apps = body.get("apps") or []
    if not isinstance(raw_apps, list):
        raise not_valid([Violation(f"{where}/apps", "must be a list of apps")])
    for i, raw in enumerate(raw_apps):
        path = f"{where}/apps({i})"
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
            raise not_valid([Violation(f"{path}/id", "each app needs an id")])
        app_id = canonical_path(raw["id"], group_id)
        doc = {
            **raw,
            "id": app_id,
            "dependencies": _dependencies(
                raw.get("dependencies"), group_id, f"{path}/dependencies"
            ),
        }
        try:
            spec = normalize_app(read_app(doc), default_role=ctx.info.default_role)
            check_runnable(spec)
            definition, run = stored_app(spec)
            current = ctx.control.state.apps.get(spec.id)
            if current is not None and (violations := resident_update_violations(current.run, run)):
                raise not_valid(violations)
        except MarathonApiError as e:
            raise _shift(e, path) from None
        apps.append(AppChange(spec.id, definition, run, path))
    raw_groups = body.get("groups") or []
    if not isinstance(raw_groups, list):
        raise not_valid([Violation(f"{where}/groups", "must be a list of groups")])
    for i, sub in enumerate(raw_groups):
        path = f"{where}/groups({i})"
        sub_id = sub.get("id") if isinstance(sub, dict) else None
        if not isinstance(sub_id, str) or not is_path_syntax(sub_id):
            raise not_valid([Violation(f"{path}/id", "each group needs a valid id")])
        child = canonical_path(sub_id, group_id)
        if not under(group_id, child) or child == group_id:
            raise not_valid([Violation(f"{path}/id", f"{child} is not inside {group_id}")])
        more, _ = _read_group(ctx, sub, child, path, groups)
        apps += more
    return apps, groups


def _group_id(rest: str) -> str:
    group_id = canonical_path(rest)
    if not all(is_path_syntax(p) for p in [rest.strip("/")] if p):
        raise not_valid([Violation("/id", f"{rest!r} is not a valid group id")])
    return group_id


# ------------------------------------------------------------------ rendering


def _children(ctx: ApiContext, group_id: str) -> tuple[list[AppRecord], list[str]]:
    """The apps (and pods) right in ``group_id`` and the ids of the groups right below it."""
    state = ctx.control.state
    apps, groups = [], set()
    depth = 0 if group_id == "/" else group_id.count("/")
    for app in state.apps.values():
        if not under(group_id, app.id):
            continue
        parts = app.id.strip("/").split("/")
        if len(parts) == depth + 1:
            apps.append(app)
        else:
            groups.add("/" + "/".join(parts[: depth + 1]))
    for g in ctx.control.groups.groups:
        if under(group_id, g) and g != group_id:
            parts = g.strip("/").split("/")
            groups.add("/" + "/".join(parts[: depth + 1]))
    return sorted(apps, key=lambda a: a.id), sorted(groups)


def _group_json(ctx: ApiContext, group_id: str, embeds: frozenset[str]) -> dict[str, Any]:
    apps, groups = _children(ctx, group_id)
    record = ctx.control.groups.groups.get(group_id)
    versions = [a.version for a in apps] + ([record.version] if record else [])
    app_embeds = parse_embed(embeds)
    doc: dict[str, Any] = {
        "id": group_id,
        "dependencies": list(record.dependencies) if record else [],
        "version": max(versions) if versions else None,
    }
    if "group.apps" in embeds or not embeds:
        doc["apps"] = [ctx.renderer.app(a, app_embeds) for a in apps if not a.is_pod]
    if "group.groups" in embeds or not embeds:
        doc["groups"] = [_group_json(ctx, g, embeds) for g in groups]
    if "group.pods" in embeds or not embeds:
        doc["pods"] = [pod_json(a) for a in apps if a.is_pod]
    if doc["version"] is None:
        del doc["version"]
    return doc


def _embeds(request: Request) -> frozenset[str]:
    values = request.query_params.getlist("embed")
    out = set()
    for v in values:
        out.add(v)
        if v.startswith("group.apps."):
            out.add("group.apps")
    return frozenset(out)


def _visible_group(request: Request, doc: dict[str, Any]) -> Response:
    shown = visible.group(permissions_of(request.scope), doc)
    if shown is None:
        raise GroupNotFound(str(doc["id"]))
    return json_response(shown)


@router.get("/v2/groups")
async def root_group(request: Request) -> Response:
    doc = _group_json(context(request), "/", _embeds(request))
    return json_response(
        visible.group(permissions_of(request.scope), doc) or {**doc, "apps": [], "groups": []}
    )


@router.get("/v2/groups/{rest:path}")
async def get_group(rest: str, request: Request) -> Response:
    ctx = context(request)
    if rest.endswith("/versions") or rest == "versions":
        group_id = canonical_path(rest[: -len("versions")])
        if not visible.may_read(permissions_of(request.scope), group_id):
            raise GroupNotFound(group_id)
        versions = await ctx.control.groups.versions(group_id)
        return json_response(sorted(versions, reverse=True))
    group_id = _group_id(rest)
    if not ctx.control.groups.exists(group_id):
        raise GroupNotFound(group_id)
    return _visible_group(request, _group_json(ctx, group_id, _embeds(request)))


# ------------------------------------------------------------------ changing


def _answer(change: Change | None, status: int, dry_run: bool) -> Response:
    if change is None:
        return json_response({"message": "nothing to change"}, 200)
    d = change.deployment
    if dry_run:
        steps = [{"actions": [{"action": a, "app": app} for a, app in step]} for step in d.steps]
        return json_response({"dryRun": True, "steps": steps})
    doc = deployment_result_json(d.id, moment(d.version))
    return json_response(doc, status, {"Marathon-Deployment-Id": d.id})


async def _check_secrets(request: Request, apps: list[AppChange]) -> None:
    """The caller may read, and the store holds, every secret the apps' tasks get."""
    await check_secret_refs(
        request,
        (
            (f"{app.path}/secrets/{ref.name}/source", ref.name, ref.source)
            for app in apps
            for ref in app.run.secrets
        ),
    )


async def _create(request: Request, base: str) -> Response:
    ctx = context(request)
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("id"), str):
        raise not_valid([Violation("/id", "a group needs an id")])
    group_id = canonical_path(body["id"], base)
    if violations := path_violations(group_id):
        raise not_valid(violations)
    if ctx.control.groups.exists(group_id):
        raise MarathonApiError(
            409, {"message": f"Group {group_id} is already created. Use PUT to change this group."}
        )
    apps, groups = _read_group(ctx, body, group_id)
    await _check_secrets(request, apps)
    force = parse_bool(request.query_params.get("force"))
    dry_run = parse_bool(request.query_params.get("dryRun"))
    change = await ctx.control.groups.change(
        group_id, apps, groups, remove_missing=False, force=force, dry_run=dry_run
    )
    return _answer(change, 201, dry_run)


@router.post("/v2/groups")
async def create_root(request: Request) -> Response:
    return await _create(request, "/")


@router.post("/v2/groups/{rest:path}")
async def create_under(rest: str, request: Request) -> Response:
    return await _create(request, _group_id(rest))


async def _update(request: Request, group_id: str) -> Response:
    ctx = context(request)
    body = await read_json(request)
    force = parse_bool(request.query_params.get("force"))
    dry_run = parse_bool(request.query_params.get("dryRun"))
    if not isinstance(body, dict):
        raise not_valid([Violation("/", "a group update must be a JSON object")])
    svc = ctx.control.groups
    if body.get("version") is not None:
        snapshot = await svc.snapshot(group_id, str(body["version"]))
        doc = {
            "id": group_id,
            "apps": [_snapshot_app(ctx, app) for app in snapshot["apps"].values()],
        }
        apps, _ = _read_group(ctx, doc, group_id)
        await _check_secrets(request, apps)
        groups = {g: list(d) for g, d in snapshot["groups"].items()}
        change = await svc.change(group_id, apps, groups, force=force, dry_run=dry_run)
        return _answer(change, 200, dry_run)
    if body.get("scaleBy") is not None:
        factor = body["scaleBy"]
        if isinstance(factor, bool) or not isinstance(factor, int | float) or not factor >= 0:
            raise not_valid([Violation("/scaleBy", "must be a number >= 0")])
        if not svc.exists(group_id):
            raise GroupNotFound(group_id)
        scaled = []
        for app in ctx.control.state.apps.values():
            if under(group_id, app.id) and not app.is_pod:  # pods scale by /v2/pods
                n = math.ceil(app.instances * factor)
                scaled.append(AppChange(app.id, app.definition, run_spec(_with(app.spec, n))))
        change = await svc.change(
            group_id, scaled, {}, remove_missing=False, force=force, dry_run=dry_run
        )
        return _answer(change, 200, dry_run)
    apps, groups = _read_group(ctx, {**body, "id": group_id}, group_id)
    await _check_secrets(request, apps)
    remove = "apps" in body or "groups" in body
    change = await svc.change(
        group_id, apps, groups, remove_missing=remove, force=force, dry_run=dry_run
    )
    return _answer(change, 200, dry_run)


def _snapshot_app(ctx: ApiContext, doc: dict[str, Any]) -> dict[str, Any]:
    """An app of a stored group version as a Marathon body: an ``AppRecord``'s JSON, or
    (a version stored before records had a ``format``) already its definition."""
    if "config_version" not in doc:
        return doc
    return ctx.renderer.definition(AppRecord.from_json(doc))


def _with(spec: AppSpec, instances: int) -> AppSpec:
    return replace(spec, instances=instances)


@router.put("/v2/groups")
async def update_root(request: Request) -> Response:
    return await _update(request, "/")


@router.put("/v2/groups/{rest:path}")
async def update_group(rest: str, request: Request) -> Response:
    return await _update(request, _group_id(rest))


async def _delete(request: Request, group_id: str) -> Response:
    ctx = context(request)
    force = parse_bool(request.query_params.get("force"))
    change = await ctx.control.groups.delete(group_id, force=force)
    return _answer(change, 200, False)


@router.delete("/v2/groups")
async def delete_root(request: Request) -> Response:
    return await _delete(request, "/")


@router.delete("/v2/groups/{rest:path}")
async def delete_group(rest: str, request: Request) -> Response:
    return await _delete(request, _group_id(rest))
