"""DC/OS's identity and access API (``/acs/api/v1``), so DC/OS scripts and tools that
make users, groups, ACLs and grants work unchanged; the same ``AuthService`` as
``/v1/users``, ``/v1/groups`` and ``/v1/acls``; does I/O through it.

    GET    /acs/api/v1/users                          {"array": [user...]}
    GET|PUT|PATCH|DELETE /acs/api/v1/users/{uid}     {"password"|"public_key", "description"}
    GET    /acs/api/v1/users/{uid}/permissions        {"direct": [...], "groups": [...]}
    GET    /acs/api/v1/groups                         {"array": [group...]}
    GET|PUT|DELETE /acs/api/v1/groups/{gid}           {"description"}
    GET    /acs/api/v1/groups/{gid}/users             {"array": [{"user": user}...]}
    PUT|DELETE /acs/api/v1/groups/{gid}/users/{uid}
    GET    /acs/api/v1/acls                           {"array": [{"rid", "url", "description"}]}
    GET|PUT|DELETE /acs/api/v1/acls/{rid}             {"description"}
    GET    /acs/api/v1/acls/{rid}/permissions         {"users": [...], "groups": [...]}
    GET|PUT|DELETE /acs/api/v1/acls/{rid}/users/{uid}/{action}     GET: {"allowed"}
    GET|PUT|DELETE /acs/api/v1/acls/{rid}/groups/{gid}/{action}

A rid in a path has its slashes encoded twice, as DC/OS wants
(``dcos:service:marathon:marathon:services:%252Fprod``); one level is decoded here after
the server's own. Writes answer 201 (made) or 204 with no body, as DC/OS does; errors
are JSON naming what is wrong.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, unquote

from fastapi import APIRouter, Request
from starlette.responses import Response

from pallet.api.context import context
from pallet.api.http import json_response, read_model
from pallet.api.routes_iam import GroupBody, UserBody, _auth
from pallet.auth.perms import parse_rid
from pallet.auth.records import UserRecord
from pallet.auth.service import AuthService, IamNotFound

__all__ = ["router"]

router = APIRouter()

BASE = "/acs/api/v1"


def _user_json(user: UserRecord, auth: AuthService) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "uid": user.uid,
        "url": f"{BASE}/users/{quote(user.uid)}",
        "description": user.description,
        "is_remote": False,
        "is_service": user.kind == "service",
        "provider_type": "internal",
        "provider_id": "",
    }
    if user.public_key is not None:
        doc["public_key"] = user.public_key
    return doc


def _group_json(gid: str, description: str) -> dict[str, Any]:
    return {
        "gid": gid,
        "url": f"{BASE}/groups/{quote(gid)}",
        "description": description,
        "provider_type": "internal",
    }


def _rid_url(rid: str) -> str:
    return f"{BASE}/acls/{quote(quote(rid, safe=':*'), safe=':*%')}"


def _user(auth: AuthService, uid: str) -> UserRecord:
    user = auth.users.get(uid)
    if user is None:
        raise IamNotFound(f"no user {uid}")
    return user


# ------------------------------------------------------------------ users


@router.get(f"{BASE}/users")
async def list_users(request: Request) -> Response:
    auth = _auth(context(request))
    return json_response({"array": [_user_json(u, auth) for _, u in sorted(auth.users.items())]})


@router.get(f"{BASE}/users/{{uid}}")
async def show_user(uid: str, request: Request) -> Response:
    auth = _auth(context(request))
    return json_response(_user_json(_user(auth, uid), auth))


@router.put(f"{BASE}/users/{{uid}}")
async def create_user(uid: str, request: Request) -> Response:
    auth = _auth(context(request))
    body = await read_model(request, UserBody)
    await auth.put_user(
        uid, password=body.password, public_key=body.public_key, description=body.description
    )
    return Response(status_code=201)


@router.patch(f"{BASE}/users/{{uid}}")
async def change_user(uid: str, request: Request) -> Response:
    auth = _auth(context(request))
    body = await read_model(request, UserBody)
    await auth.put_user(
        uid,
        password=body.password,
        public_key=body.public_key,
        description=body.description,
        create=False,
    )
    return Response(status_code=204)


@router.delete(f"{BASE}/users/{{uid}}")
async def delete_user(uid: str, request: Request) -> Response:
    await _auth(context(request)).delete_user(uid)
    return Response(status_code=204)


@router.get(f"{BASE}/users/{{uid}}/permissions")
async def user_permissions(uid: str, request: Request) -> Response:
    auth = _auth(context(request))
    _user(auth, uid)
    direct = _by_rid(auth.grants.get(f"user:{uid}", frozenset()))
    groups = [
        {**row, "gid": gid}
        for gid, group in sorted(auth.groups.items())
        if uid in group.members
        for row in _by_rid(auth.grants.get(f"group:{gid}", frozenset()))
    ]
    return json_response({"direct": direct, "groups": groups})


def _by_rid(grants: Any) -> list[dict[str, Any]]:
    rows: dict[str, list[str]] = {}
    for grant in sorted(grants):
        rows.setdefault(str(grant.rid), []).append(grant.action.value)
    return [
        {
            "rid": rid,
            "aclurl": _rid_url(rid),
            "actions": [{"name": a, "url": f"{_rid_url(rid)}/{a}"} for a in actions],
        }
        for rid, actions in rows.items()
    ]


# ------------------------------------------------------------------ groups


@router.get(f"{BASE}/groups")
async def list_groups(request: Request) -> Response:
    auth = _auth(context(request))
    rows = [_group_json(gid, g.description) for gid, g in sorted(auth.groups.items())]
    return json_response({"array": rows})


def _group(auth: AuthService, gid: str) -> Any:
    group = auth.groups.get(gid)
    if group is None:
        raise IamNotFound(f"no group {gid}")
    return group


@router.get(f"{BASE}/groups/{{gid}}")
async def show_group(gid: str, request: Request) -> Response:
    auth = _auth(context(request))
    return json_response(_group_json(gid, _group(auth, gid).description))


@router.put(f"{BASE}/groups/{{gid}}")
async def create_group(gid: str, request: Request) -> Response:
    auth = _auth(context(request))
    body = await read_model(request, GroupBody)
    await auth.put_group(gid, body.description)
    return Response(status_code=201)


@router.delete(f"{BASE}/groups/{{gid}}")
async def delete_group(gid: str, request: Request) -> Response:
    await _auth(context(request)).delete_group(gid)
    return Response(status_code=204)


@router.get(f"{BASE}/groups/{{gid}}/users")
async def group_users(gid: str, request: Request) -> Response:
    auth = _auth(context(request))
    members = sorted(_group(auth, gid).members)
    rows = [{"user": _user_json(auth.users[u], auth)} for u in members if u in auth.users]
    return json_response({"array": rows})


@router.put(f"{BASE}/groups/{{gid}}/users/{{uid}}")
async def add_member(gid: str, uid: str, request: Request) -> Response:
    await _auth(context(request)).set_member(gid, uid, True)
    return Response(status_code=204)


@router.delete(f"{BASE}/groups/{{gid}}/users/{{uid}}")
async def remove_member(gid: str, uid: str, request: Request) -> Response:
    await _auth(context(request)).set_member(gid, uid, False)
    return Response(status_code=204)


# ------------------------------------------------------------------ ACLs and grants

_GRANT = re.compile(r"(?P<rid>.+)/(?P<kind>users|groups)/(?P<who>[^/]+)/(?P<action>[^/]+)")


def _rid(text: str) -> str:
    """The rid as DC/OS sends it: its slashes were encoded twice; the server decoded one."""
    return unquote(text)


@router.get(f"{BASE}/acls")
async def list_acls(request: Request) -> Response:
    auth = _auth(context(request))
    rows = [
        {"rid": rid, "url": _rid_url(rid), "description": description}
        for rid, description in auth.acl_rids().items()
    ]
    return json_response({"array": rows})


@router.get(f"{BASE}/acls/{{rest:path}}")
async def read_acl(rest: str, request: Request) -> Response:
    return await _acl(rest, request)


@router.put(f"{BASE}/acls/{{rest:path}}")
async def put_acl(rest: str, request: Request) -> Response:
    return await _acl(rest, request)


@router.delete(f"{BASE}/acls/{{rest:path}}")
async def delete_acl(rest: str, request: Request) -> Response:
    return await _acl(rest, request)


async def _acl(rest: str, request: Request) -> Response:
    """One ACL (``{rid}``), its holders (``{rid}/permissions``) or one grant
    (``{rid}/users/{uid}/{action}``, ``{rid}/groups/{gid}/{action}``)."""
    auth = _auth(context(request))
    method = request.method
    if m := _GRANT.fullmatch(rest):
        rid = _rid(m["rid"])
        who = f"{'user' if m['kind'] == 'users' else 'group'}:{m['who']}"
        if method == "GET":
            key = auth.principal_key(who)
            target = parse_rid(rid)
            allowed = any(
                g.rid == target and g.action.value == m["action"]
                for g in auth.grants.get(key, frozenset())
            )
            return json_response({"allowed": allowed})
        await auth.grant(who, rid, m["action"], allow=method == "PUT")
        return Response(status_code=204)
    if rest.endswith("/permissions"):
        if method != "GET":
            return json_response({"message": "only GET here"}, 405, {"Allow": "GET"})
        return json_response(_holders(auth, _rid(rest[: -len("/permissions")])))
    rid = _rid(rest)
    if method == "GET":
        canonical = str(parse_rid(rid))
        known = auth.acl_rids()
        if canonical not in known:
            raise IamNotFound(f"no ACL {canonical}")
        doc = {"rid": canonical, "url": _rid_url(canonical), "description": known[canonical]}
        return json_response(doc)
    if method == "PUT":
        body = await read_model(request, GroupBody)  # {"description"}, as a group's
        await auth.put_acl(rid, body.description)
        return Response(status_code=201)
    await auth.delete_acl(rid)  # DELETE: the route takes no other method
    return Response(status_code=204)


def _holders(auth: AuthService, rid: str) -> dict[str, Any]:
    target = parse_rid(rid)
    canonical = str(target)
    users: list[dict[str, Any]] = []
    groups: list[dict[str, Any]] = []
    for pkey, grants in sorted(auth.grants.items()):
        actions = sorted(g.action.value for g in grants if g.rid == target)
        if not actions:
            continue
        kind, _, name = pkey.partition(":")
        rows = [
            {"name": a, "url": f"{_rid_url(canonical)}/{kind}s/{quote(name)}/{a}"} for a in actions
        ]
        if kind == "user":
            users.append({"uid": name, "url": f"{BASE}/users/{quote(name)}", "actions": rows})
        else:
            groups.append({"gid": name, "url": f"{BASE}/groups/{quote(name)}", "actions": rows})
    return {"users": users, "groups": groups}
