"""Identities and access: logging in, users, service accounts, groups, grants, the audit
log and agents joining; does I/O through ``AuthService``.

    POST /v1/auth/login (and DC/OS's /acs/api/v1/auth/login)
         {"uid", "password"} | {"uid", "token": <login token signed by the account's key>}
         -> {"token", "expires_at"}
    POST /v1/auth/logout                      revoke the caller's token
    GET  /v1/auth/whoami                      {"uid", "kind", "expires_at", "grants"}
    GET  /v1/auth/jwks                        the master's public keys (agents check with them)
    POST /v1/auth/rotate {"keep": n}          a new signing key (keep 0: revoke every token)
    POST /v1/auth/password {"current", "password"}   change one's own password
    GET|PUT|PATCH|DELETE /v1/users[/{uid}]    {"password"} (a user) | {"public_key"} (a service account)
    GET|PUT|DELETE /v1/groups[/{gid}]          and PUT|DELETE /v1/groups/{gid}/users/{uid}
    GET  /v1/acls[?principal=]                POST /v1/acls/grant|revoke {"principal", "rid", "action"}
    GET  /v1/audit?limit=&uid=                newest first
    POST /v1/agent/join {"node_id", "bootstrap" | "credential", "csr"?}
         -> {"token", "expires_at", "credential"? (first join only), "certificate"?, "ca"?}

Every answer is JSON; bad input is a 422 naming the field, a failed login a 401 that
does not say whether the user exists.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pydantic
from fastapi import APIRouter, Request
from starlette.responses import Response

from pallet.api.context import ApiContext, context
from pallet.api.guard import PRINCIPAL
from pallet.api.http import json_response, read_model
from pallet.api.marathon import MarathonApiError
from pallet.auth.service import AuthService, Denied, Principal

__all__ = ["MODELS", "router"]

router = APIRouter()


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat()


class _Body(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)


class LoginBody(_Body):
    uid: str = pydantic.Field(min_length=1, max_length=64)
    password: str | None = pydantic.Field(default=None, max_length=1024)
    token: str | None = pydantic.Field(default=None, max_length=4096)


class UserBody(_Body):
    password: str | None = pydantic.Field(default=None, max_length=1024)
    public_key: str | None = pydantic.Field(default=None, max_length=16384)
    description: str = pydantic.Field(default="", max_length=1000)


class GroupBody(_Body):
    description: str = pydantic.Field(default="", max_length=1000)


class GrantBody(_Body):
    principal: str = pydantic.Field(min_length=1, max_length=80)
    rid: str = pydantic.Field(min_length=1, max_length=512)
    action: str = pydantic.Field(min_length=1, max_length=16)


class PasswordBody(_Body):
    current: str = pydantic.Field(min_length=1, max_length=1024)
    password: str = pydantic.Field(min_length=1, max_length=1024)


class RotateBody(_Body):
    keep: int = pydantic.Field(default=1, ge=0, le=10)


class JoinBody(_Body):
    node_id: str = pydantic.Field(min_length=1, max_length=200)
    bootstrap: str | None = pydantic.Field(default=None, max_length=1024)
    credential: str | None = pydantic.Field(default=None, max_length=1024)
    csr: str | None = pydantic.Field(default=None, max_length=16384)


MODELS: dict[tuple[str, str], type[pydantic.BaseModel]] = {
    ("post", "/v1/auth/login"): LoginBody,
    ("post", "/acs/api/v1/auth/login"): LoginBody,
    ("post", "/v1/auth/rotate"): RotateBody,
    ("post", "/v1/auth/password"): PasswordBody,
    ("put", "/v1/users/{uid}"): UserBody,
    ("patch", "/v1/users/{uid}"): UserBody,
    ("put", "/v1/groups/{gid}"): GroupBody,
    ("post", "/v1/acls/grant"): GrantBody,
    ("post", "/v1/acls/revoke"): GrantBody,
    ("post", "/v1/agent/join"): JoinBody,
}
"""Request bodies by route, for the API schema (``openapi``)."""


def _auth(ctx: ApiContext) -> AuthService:
    if ctx.auth is None:
        raise MarathonApiError(
            404, {"message": "authentication is off on this master (start it with --secure-dir)"}
        )
    return ctx.auth


def _principal(request: Request) -> Principal:
    principal: Principal | None = request.scope.get(PRINCIPAL)
    if principal is None:  # only reachable with auth on, after the guard
        raise MarathonApiError(401, {"message": "not logged in"})
    return principal


# ------------------------------------------------------------------ logging in


async def _login(request: Request) -> Response:
    auth = _auth(context(request))
    body = await read_model(request, LoginBody)
    token, exp = await auth.login(body.uid, body.password, body.token)
    return json_response({"token": token, "uid": body.uid, "expires_at": _iso(exp)})


router.add_api_route("/v1/auth/login", _login, methods=["POST"])
router.add_api_route("/acs/api/v1/auth/login", _login, methods=["POST"])


@router.post("/v1/auth/logout")
async def logout(request: Request) -> Response:
    await _auth(context(request)).logout(_principal(request))
    return Response(status_code=204)


@router.get("/v1/auth/whoami")
async def whoami(request: Request) -> Response:
    _auth(context(request))
    p = _principal(request)
    grants = sorted(str(g) for g in p.permissions.grants)
    return json_response(
        {"uid": p.uid, "kind": p.kind, "expires_at": _iso(p.expires), "grants": grants}
    )


@router.post("/v1/auth/password")
async def change_password(request: Request) -> Response:
    """The caller's own password, given the current one (a user, not a service account)."""
    auth = _auth(context(request))
    principal = _principal(request)
    body = await read_model(request, PasswordBody)
    if principal.kind != "user":
        raise MarathonApiError(422, {"message": f"a {principal.kind} has no password to change"})
    try:
        await auth.change_password(principal.uid, body.current, body.password)
    except Denied as e:  # a 401 would read as "log in again"; the caller is logged in
        raise MarathonApiError(403, {"message": str(e)}) from None
    return Response(status_code=204)


@router.get("/v1/auth/jwks")
async def jwks(request: Request) -> Response:
    return json_response(_auth(context(request)).ring.jwks())


@router.post("/v1/auth/rotate")
async def rotate(request: Request) -> Response:
    auth = _auth(context(request))
    body = await read_model(request, RotateBody)
    await auth.rotate_keys(body.keep)
    return json_response({"kids": [k.kid for k in auth.ring.keys]})


# ------------------------------------------------------------------ users and groups


@router.get("/v1/users")
async def list_users(request: Request) -> Response:
    auth = _auth(context(request))
    return json_response({"users": [u.public_json() for _, u in sorted(auth.users.items())]})


@router.get("/v1/users/{uid}")
async def show_user(uid: str, request: Request) -> Response:
    auth = _auth(context(request))
    user = auth.users.get(uid)
    if user is None:
        raise MarathonApiError(404, {"message": f"no user {uid}"})
    groups = sorted(g for g, r in auth.groups.items() if uid in r.members)
    return json_response(user.public_json() | {"groups": groups})


async def _put_user(uid: str, request: Request, create: bool) -> Response:
    auth = _auth(context(request))
    body = await read_model(request, UserBody)
    user = await auth.put_user(
        uid,
        password=body.password,
        public_key=body.public_key,
        description=body.description,
        create=create,
    )
    return json_response(user.public_json(), 201 if create else 200)


@router.put("/v1/users/{uid}")
async def create_user(uid: str, request: Request) -> Response:
    return await _put_user(uid, request, True)


@router.patch("/v1/users/{uid}")
async def change_user(uid: str, request: Request) -> Response:
    return await _put_user(uid, request, False)


@router.delete("/v1/users/{uid}")
async def delete_user(uid: str, request: Request) -> Response:
    await _auth(context(request)).delete_user(uid)
    return Response(status_code=204)


@router.get("/v1/groups")
async def list_groups(request: Request) -> Response:
    auth = _auth(context(request))
    return json_response({"groups": [g.to_json() for _, g in sorted(auth.groups.items())]})


@router.put("/v1/groups/{gid}")
async def create_group(gid: str, request: Request) -> Response:
    auth = _auth(context(request))
    body = await read_model(request, GroupBody)
    return json_response((await auth.put_group(gid, body.description)).to_json(), 201)


@router.delete("/v1/groups/{gid}")
async def delete_group(gid: str, request: Request) -> Response:
    await _auth(context(request)).delete_group(gid)
    return Response(status_code=204)


@router.put("/v1/groups/{gid}/users/{uid}")
async def add_member(gid: str, uid: str, request: Request) -> Response:
    group = await _auth(context(request)).set_member(gid, uid, True)
    return json_response(group.to_json())


@router.delete("/v1/groups/{gid}/users/{uid}")
async def remove_member(gid: str, uid: str, request: Request) -> Response:
    group = await _auth(context(request)).set_member(gid, uid, False)
    return json_response(group.to_json())


# ------------------------------------------------------------------ grants and the audit log


@router.get("/v1/acls")
async def list_acls(request: Request) -> Response:
    auth = _auth(context(request))
    wanted = request.query_params.get("principal")
    rows = auth.acl_json()
    if wanted:
        key = auth.principal_key(wanted)
        rows = [r for r in rows if r["principal"] == key]
    return json_response({"acls": rows})


async def _grant(request: Request, allow: bool) -> Response:
    auth = _auth(context(request))
    body = await read_model(request, GrantBody)
    await auth.grant(body.principal, body.rid, body.action, allow)
    key = auth.principal_key(body.principal)
    return json_response({"acls": [r for r in auth.acl_json() if r["principal"] == key]})


@router.post("/v1/acls/grant")
async def grant(request: Request) -> Response:
    return await _grant(request, True)


@router.post("/v1/acls/revoke")
async def revoke(request: Request) -> Response:
    return await _grant(request, False)


@router.get("/v1/audit")
async def audit(request: Request) -> Response:
    ctx = context(request)
    _auth(ctx)
    assert ctx.audit is not None
    q = request.query_params
    raw = q.get("limit", "100")
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= 10_000:
        raise MarathonApiError(422, {"message": "limit must be a whole number from 1 to 10000"})
    entries = await ctx.audit.read(int(raw), q.get("uid"))
    return json_response({"entries": entries})


# ------------------------------------------------------------------ agents joining


@router.post("/v1/agent/join")
async def join(request: Request) -> Response:
    """An agent's token (and, on its first join, its own credential; with a CSR, a
    certificate for the address it joins from, signed by the cluster's CA)."""
    ctx = context(request)
    auth = _auth(ctx)
    body = await read_model(request, JoinBody)
    answer: dict[str, Any] = await auth.join(body.node_id, body.bootstrap, body.credential)
    answer["expires_at"] = _iso(answer.pop("expires"))
    if body.csr is not None and ctx.ca is not None:
        peer = request.client.host if request.client is not None else "127.0.0.1"
        try:
            cert = ctx.ca.sign_csr(body.csr.encode(), body.node_id, [peer], dt.datetime.now(dt.UTC))
        except ValueError as e:
            raise MarathonApiError(
                422,
                {
                    "message": "Invalid agent message",
                    "details": [{"path": "/csr", "errors": [str(e)]}],
                },
            ) from None
        answer["certificate"] = cert.decode()
        answer["ca"] = ctx.ca.pem().decode()
    return json_response(answer)
