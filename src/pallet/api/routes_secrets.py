"""Secrets: DC/OS's secrets API, and its agent side (one task's values, to the agent that
runs it); does I/O through ``SecretStore``.

    PUT    /secrets/v1/secret/default/<path>  {"value", "description"?}  201 (409: exists)
    PATCH  /secrets/v1/secret/default/<path>  {"value"}                   204 (404: none)
    GET    /secrets/v1/secret/default/<path>  {"value", "author", "created", "description"}
    DELETE /secrets/v1/secret/default/<path>                              204 (404: none)
    GET    /secrets/v1/secret/default/[<path>]?list=true  {"array": [paths below, relative]}
    (the same under /v1/secrets/<path>, one implementation)

    GET /v1/agent/nodes/<node>/tasks/<task id>/secrets
        {"secrets": [{"name", "source", "value"}]}: only for a live task the master placed
        on that node, only the secrets its launch spec names.

Permissions (``authz``): ``pallet:secret:/<path>`` (DC/OS: ``dcos:secrets:default:/<path>``)
with create, read (the value, or a listing below the path), update, delete. A listing of
the whole store shows only the paths the caller may read, and never a value. A path with
``..``, an empty segment or another character than letters, digits, ``.``, ``_``, ``-``
is a 422 on ``/path``; nothing stored changes.
"""

from __future__ import annotations

import pydantic
from fastapi import APIRouter, Request
from starlette.responses import Response

from pallet.api.context import ApiContext, context
from pallet.api.guard import PRINCIPAL, permissions_of
from pallet.api.http import json_response, read_model
from pallet.api.marathon import MarathonApiError
from pallet.auth.perms import Action
from pallet.auth.secretbox import SealError
from pallet.auth.secretstore import SecretStore
from pallet.model import ValidationError
from pallet.model.secrets import MAX_SECRET_BYTES, check_secret_path

__all__ = ["MODELS", "router", "secret_store"]

router = APIRouter()

_STORE = "default"


class SecretBody(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True, strict=True)

    value: str = pydantic.Field(max_length=MAX_SECRET_BYTES)
    description: str = pydantic.Field(default="", max_length=1000)


class SecretUpdate(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True, strict=True)

    value: str = pydantic.Field(max_length=MAX_SECRET_BYTES)


MODELS: dict[tuple[str, str], type[pydantic.BaseModel]] = {
    ("put", "/v1/secrets/{path}"): SecretBody,
    ("patch", "/v1/secrets/{path}"): SecretUpdate,
    ("put", "/secrets/v1/secret/{store}/{path}"): SecretBody,
    ("patch", "/secrets/v1/secret/{store}/{path}"): SecretUpdate,
}
"""Request bodies by route, for the API schema."""


def secret_store(ctx: ApiContext) -> SecretStore:
    if ctx.secrets is None:
        raise MarathonApiError(
            503,
            {
                "message": "secrets are off on this master: give it a key "
                "(pallet master --secrets-key-file FILE, or $PALLET_SECRETS_KEY)"
            },
        )
    return ctx.secrets


def _path(raw: str) -> str:
    try:
        return check_secret_path(raw, "/path")
    except ValidationError as e:
        raise MarathonApiError(
            422,
            {
                "message": "Invalid secret path",
                "details": [{"path": e.field, "errors": [e.message]}],
            },
        ) from None


def _missing(path: str) -> MarathonApiError:
    return MarathonApiError(404, {"message": f"secret {path} does not exist"})


def _audit_read(request: Request, what: str) -> None:
    """Reading a value is recorded like a write: who read which secret (never the value)."""
    audit = context(request).audit
    principal = request.scope.get(PRINCIPAL)
    if audit is not None and principal is not None:
        audit.record(
            {
                "uid": principal.uid,
                "kind": principal.kind,
                "method": "GET",
                "path": request.url.path,
                "secret": what,
                "status": 200,
                "outcome": "success",
                "client": request.client.host if request.client else None,
            }
        )


def _author(request: Request) -> str:
    principal = request.scope.get(PRINCIPAL)
    return principal.uid if principal is not None else "anonymous"


async def _list(request: Request, store: SecretStore, rest: str) -> Response:
    below = _path(rest) if rest.strip("/") else ""
    perms = permissions_of(request.scope)
    paths = await store.paths(below)
    shown = [p for p in paths if perms.may("secret", Action.READ, p)]
    cut = len(below) + 1 if below else 0
    return json_response({"array": [p[cut:] or p.rsplit("/", 1)[-1] for p in shown]})


async def _get(request: Request, rest: str) -> Response:
    store = secret_store(context(request))
    if request.query_params.get("list", "").lower() == "true" or not rest.strip("/"):
        return await _list(request, store, rest)
    path = _path(rest)
    info = await store.info(path)
    if info is None:
        raise _missing(path)
    try:
        value = await store.value(path)
    except SealError as e:
        raise MarathonApiError(503, {"message": f"secret {path}: {e}"}) from None
    if value is None:
        raise _missing(path)
    _audit_read(request, path)
    doc = {
        "value": value,
        "author": info.author,
        "created": info.created,
        "description": info.description,
    }
    return json_response(doc)


async def _put(request: Request, rest: str) -> Response:
    store = secret_store(context(request))
    path = _path(rest)
    body = await read_model(request, SecretBody)
    if not await store.create(path, body.value, _author(request), body.description):
        raise MarathonApiError(409, {"message": f"secret {path} already exists"})
    return Response(status_code=201)


async def _patch(request: Request, rest: str) -> Response:
    store = secret_store(context(request))
    path = _path(rest)
    body = await read_model(request, SecretUpdate)
    if not await store.update(path, body.value, _author(request)):
        raise _missing(path)
    return Response(status_code=204)


async def _delete(request: Request, rest: str) -> Response:
    store = secret_store(context(request))
    path = _path(rest)
    if not await store.delete(path):
        raise _missing(path)
    return Response(status_code=204)


_HANDLERS = {"GET": _get, "PUT": _put, "PATCH": _patch, "DELETE": _delete}


async def _pallet(rest: str, request: Request) -> Response:
    return await _HANDLERS[request.method](request, rest)


async def _dcos(store_name: str, rest: str, request: Request) -> Response:
    if store_name != _STORE:
        raise MarathonApiError(404, {"message": f"secret store {store_name!r} does not exist"})
    return await _HANDLERS[request.method](request, rest)


async def _pallet_root(request: Request) -> Response:
    return await _pallet("", request)


async def _dcos_root(store_name: str, request: Request) -> Response:
    return await _dcos(store_name, "", request)


router.add_api_route("/v1/secrets", _pallet_root, methods=["GET"])
router.add_api_route("/v1/secrets/", _pallet_root, methods=["GET"])
for _method in _HANDLERS:
    router.add_api_route(
        "/v1/secrets/{rest:path}",
        _pallet,
        methods=[_method],
        operation_id=f"secret_{_method.lower()}",
    )
    router.add_api_route(
        "/secrets/v1/secret/{store_name}/{rest:path}",
        _dcos,
        methods=[_method],
        operation_id=f"dcos_secret_{_method.lower()}",
    )
router.add_api_route("/secrets/v1/secret/{store_name}", _dcos_root, methods=["GET"])
router.add_api_route("/secrets/v1/secret/{store_name}/", _dcos_root, methods=["GET"])


# ------------------------------------------------------------------ the agent side


@router.get("/v1/agent/nodes/{node_id}/tasks/{task_id}/secrets")
async def task_secrets(node_id: str, task_id: str, request: Request) -> Response:
    """The values of one task's secrets, for the agent of the node the task is placed on
    (the guard has checked the caller is that node's agent): a task of another node, an
    ended or unknown one is a 404 that says nothing about its secrets."""
    ctx = context(request)
    task = ctx.control.state.tasks.get(task_id)
    if task is None or task.node_id != node_id or not task.live:
        raise MarathonApiError(404, {"message": f"no task {task_id} runs on node {node_id}"})
    store = secret_store(ctx)
    out = []
    for ref in task.launch.secrets:
        try:
            value = await store.value(ref.source)
        except SealError as e:
            raise MarathonApiError(503, {"message": f"secret {ref.source}: {e}"}) from None
        if value is None:
            raise MarathonApiError(
                404, {"message": f"secret {ref.source} (named {ref.name!r}) does not exist"}
            )
        out.append({"name": ref.name, "source": ref.source, "value": value})
    if out:
        _audit_read(request, ",".join(sorted({r.source for r in task.launch.secrets})))
    return json_response({"secrets": out}, headers={"Cache-Control": "no-store"})
