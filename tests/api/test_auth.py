"""Authentication and permissions at the API edge (issue 14): no route without a token once
auth is on, 401/403 with JSON bodies, listings filtered, writes audited, nothing changed by
a refused request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from fastapi.routing import APIRoute

from pallet.api.authz import SUPERUSER, requirement
from pallet.api.guard import StateLookup
from pallet.api.routes_agent import ROUTES as AGENT_ROUTES
from pallet.client.login import sign_login

from .conftest import node_body
from .secure import BOOTSTRAP, PASSWORD, Secure
from .test_lifecycle import converge

pytestmark = pytest.mark.anyio

APP = {"id": "/prod/web", "cmd": "sleep 60", "cpus": 0.1, "mem": 32, "instances": 1}


async def test_without_a_token_only_public_routes_answer(secure: Secure) -> None:
    api = secure.api
    assert (await api.get("/ping")).status_code == 200
    assert (await api.get("/v1/openapi.json")).status_code == 200
    assert (await api.get("/v1/auth/jwks")).json()["keys"][0]["alg"] == "EdDSA"
    for method, path in [
        ("GET", "/v2/apps"),
        ("POST", "/v2/apps"),
        ("GET", "/v2/info"),
        ("GET", "/v2/events"),
        ("POST", "/v1/agent/nodes/node-0/status"),
        ("GET", "/v1/agent/nodes/node-0/desired"),
        ("POST", "/v1/agent/register"),
        ("DELETE", "/v2/apps/prod/web"),
        ("GET", "/metrics"),
        ("GET", "/v1/nodes"),
        ("GET", "/v1/whatever/a/route/added/later"),
        ("GET", "/v1/secrets/db/password"),  # issue 14.5: a secret's value
        ("GET", "/secrets/v1/secret/default/db/password"),
        ("GET", "/secrets/v1/secret/default/?list=true"),
        ("PUT", "/secrets/v1/secret/default/db/password"),
        ("GET", "/v1/agent/nodes/node-0/tasks/web.1/secrets"),  # a task's values
    ]:
        body = APP if method == "POST" else {"value": "x"} if method == "PUT" else None
        r = await api.request(method, path, json=body)
        assert r.status_code == 401, (method, path, r.text)
        assert "message" in r.json() and r.headers["www-authenticate"].startswith("token")
    assert secure.control.state.apps == {}


async def test_both_header_forms_work_and_bad_tokens_are_401(secure: Secure) -> None:
    token = await secure.login()
    for scheme in ("token=", "Bearer "):
        async with secure.client(token, scheme) as c:
            assert (await c.get("/v2/apps")).status_code == 200
    for bad, why in [
        ("garbage", "not a JWT"),
        (token[:-4] + "AAAA", "does not verify"),
        (token + "xy", ""),
    ]:
        async with secure.client(bad) as c:
            r = await c.post("/v2/apps", json=APP)
            assert r.status_code == 401 and why in r.json()["message"], r.text
    async with secure.client(token, "Basic ") as c:  # another scheme is refused, not ignored
        assert (await c.get("/v2/apps")).status_code == 401
    assert secure.control.state.apps == {}


async def test_an_expired_token_is_refused(secure: Secure) -> None:
    token = await secure.login()
    secure.clock.advance(3601)
    async with secure.client(token) as c:
        r = await c.post("/v2/apps", json=APP)
    assert r.status_code == 401 and "expired" in r.json()["message"]
    assert secure.control.state.apps == {}


async def test_wrong_passwords_do_not_say_which_part_was_wrong(secure: Secure) -> None:
    for body in (
        {"uid": "admin", "password": "wrong password"},
        {"uid": "nobody", "password": PASSWORD},
    ):
        r = await secure.api.post("/v1/auth/login", json=body)
        assert r.status_code == 401 and r.json() == {"message": "wrong user id or password"}
    r = await secure.api.post("/v1/auth/login", json={"uid": "admin"})
    assert r.status_code == 401
    r = await secure.api.post("/acs/api/v1/auth/login", json={"uid": "admin", "password": PASSWORD})
    assert r.status_code == 200  # DC/OS's path


async def test_permissions_per_path_and_action(secure: Secure) -> None:
    admin = secure.client(await secure.login())
    assert (await admin.post("/v2/apps", json=APP)).status_code == 201
    assert (await admin.post("/v2/apps", json={**APP, "id": "/dev/web"})).status_code == 201
    reader = await secure.user("reader", ("pallet:service:/prod", "read"))
    r = await reader.get("/v2/apps")
    assert [a["id"] for a in r.json()["apps"]] == ["/prod/web"]  # only what it may read
    assert (await reader.get("/v2/apps/prod/web")).status_code == 200
    r = await reader.get("/v2/apps/dev/web")
    assert r.status_code == 403 and "may not read pallet:service:/dev/web" in r.json()["message"]
    for method, path, body in [
        ("PUT", "/v2/apps/prod/web", {"instances": 3}),
        ("DELETE", "/v2/apps/prod/web", None),
        ("POST", "/v2/apps/prod/web/restart", None),
        ("POST", "/v2/apps", {**APP, "id": "/prod/api"}),
        ("POST", "/v2/groups", {"id": "/prod", "apps": [{**APP, "id": "x"}]}),
        ("PUT", "/v2/groups/prod", {"scaleBy": 2}),
        ("DELETE", "/v2/groups/prod", None),
        ("POST", "/v1/nodes/node-0/drain", None),
        ("PUT", "/v1/users/mallory", {"password": "12345678x"}),
        (
            "POST",
            "/v1/acls/grant",
            {"principal": "reader", "rid": "pallet:superuser", "action": "full"},
        ),
    ]:
        r = await reader.request(method, path, json=body)
        assert r.status_code == 403, (method, path, r.text)
        assert r.json()["message"].startswith("reader may not")
    assert secure.control.state.apps["/prod/web"].instances == 1
    assert set(secure.control.state.apps) == {"/prod/web", "/dev/web"}

    writer = await secure.user(
        "writer", ("pallet:service:/prod/*", "update"), ("pallet:service:/prod", "read")
    )
    r = await writer.put("/v2/apps/prod/web?force=true", json={"instances": 2})
    assert r.status_code == 200, r.text
    assert (await writer.delete("/v2/apps/prod/web")).status_code == 403  # no delete
    # a group body that hides an app outside the group is caught
    r = await writer.put("/v2/groups/prod", json={"apps": [{**APP, "id": "/dev/web"}]})
    assert r.status_code == 403


async def test_groups_give_their_members_permissions(secure: Secure) -> None:
    await secure.auth.put_user("bob", password=PASSWORD)
    admin = secure.client(await secure.login())
    assert (await admin.put("/v1/groups/ops", json={"description": "operators"})).status_code == 201
    assert (await admin.put("/v1/groups/ops/users/bob")).status_code == 200
    body = {"principal": "group:ops", "rid": "pallet:node", "action": "read"}
    assert (await admin.post("/v1/acls/grant", json=body)).status_code == 200
    bob = secure.client(await secure.login("bob"))
    assert (await bob.get("/v1/nodes")).status_code == 200
    assert (await bob.get("/metrics")).status_code == 403
    r = await bob.get("/v1/auth/whoami")
    assert r.json()["uid"] == "bob" and "pallet:node read" in r.json()["grants"]
    assert (await admin.delete("/v1/groups/ops/users/bob")).status_code == 200
    assert (await bob.get("/v1/nodes")).status_code == 403  # at once: no stale cache


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"principal": "admin", "rid": "pallet:service:/(a+)+$", "action": "read"}, "/rid"),
        ({"principal": "admin", "rid": "pallet:secret:/db/../x", "action": "read"}, "/rid"),
        ({"principal": "admin", "rid": "pallet:service:/x", "action": "sudo"}, "/action"),
    ],
)
async def test_bad_grants_are_422_and_change_nothing(
    secure: Secure, body: dict[str, str], path: str
) -> None:
    admin = secure.client(await secure.login())
    before = secure.auth.acl_json()
    r = await admin.post("/v1/acls/grant", json=body)
    assert r.status_code == 422 and r.json()["details"][0]["path"] == path, r.text
    assert secure.auth.acl_json() == before


async def test_the_last_superuser_cannot_be_removed(secure: Secure) -> None:
    admin = secure.client(await secure.login())
    r = await admin.delete("/v1/users/admin")
    assert r.status_code == 409 and "no superuser" in r.json()["message"]
    body = {"principal": "admin", "rid": "pallet:superuser", "action": "full"}
    assert (await admin.post("/v1/acls/revoke", json=body)).status_code == 409


async def test_logout_and_rotation_revoke_tokens(secure: Secure) -> None:
    token = await secure.login()
    async with secure.client(token) as c:
        assert (await c.post("/v1/auth/logout")).status_code == 204
        r = await c.get("/v2/apps")
        assert r.status_code == 401 and "revoked" in r.json()["message"]
    token = await secure.login()
    async with secure.client(token) as c:
        assert (await c.post("/v1/auth/rotate", json={"keep": 0})).status_code == 200
        assert (await c.get("/v2/apps")).status_code == 401
    assert (await secure.client(await secure.login()).get("/v2/apps")).status_code == 200


async def test_a_service_account_logs_in_with_its_key(secure: Secure) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    admin = secure.client(await secure.login())
    r = await admin.put("/v1/users/ci", json={"public_key": public.decode(), "description": "CI"})
    assert r.status_code == 201 and r.json()["kind"] == "service"
    r = await admin.put("/v1/users/bad", json={"public_key": "not a key"})
    assert r.status_code == 422 and r.json()["details"][0]["path"] == "/public_key"
    login = sign_login("ci", private, secure.clock())
    r = await secure.api.post("/v1/auth/login", json={"uid": "ci", "token": login})
    assert r.status_code == 200
    async with secure.client(r.json()["token"]) as ci:
        assert (await ci.get("/v1/auth/whoami")).json()["kind"] == "service"
    r = await secure.api.post("/v1/auth/login", json={"uid": "ci", "password": "whatever1"})
    assert r.status_code == 401  # a service account has no password


async def test_every_write_is_audited_with_who_and_outcome(secure: Secure) -> None:
    admin = secure.client(await secure.login())
    await admin.post("/v2/apps", json=APP)
    reader = await secure.user("reader")
    await reader.delete("/v2/apps/prod/web")
    await secure.api.post("/v2/apps", json=APP)  # no token
    r = await admin.get("/v1/audit", params={"limit": 50})
    entries = r.json()["entries"]
    seen = {(e["uid"], e["method"], e["path"], e["status"], e["outcome"]) for e in entries}
    assert ("admin", "POST", "/v2/apps", 201, "success") in seen
    assert ("reader", "DELETE", "/v2/apps/prod/web", 403, "denied") in seen
    assert (None, "POST", "/v2/apps", 401, "denied") in seen
    assert (await reader.get("/v1/audit")).status_code == 403


async def test_agents_join_and_act_only_for_their_own_node(secure: Secure) -> None:
    api = secure.api
    r = await api.post("/v1/agent/join", json={"node_id": "node-0", "bootstrap": "wrong"})
    assert r.status_code == 401
    r = await api.post("/v1/agent/join", json={"node_id": "node-0", "bootstrap": BOOTSTRAP})
    assert r.status_code == 200
    credential, token0 = r.json()["credential"], r.json()["token"]
    # the bootstrap secret cannot take over a node that joined
    r = await api.post("/v1/agent/join", json={"node_id": "node-0", "bootstrap": BOOTSTRAP})
    assert r.status_code == 401
    r = await api.post("/v1/agent/join", json={"node_id": "node-0", "credential": credential})
    assert r.status_code == 200 and "credential" not in r.json()
    r = await api.post("/v1/agent/join", json={"node_id": "node-1", "bootstrap": BOOTSTRAP})
    token1 = r.json()["token"]

    node0, node1 = secure.client(token0), secure.client(token1)
    assert (await node0.post("/v1/agent/register", json=node_body(0))).status_code == 200
    r = await node0.post("/v1/agent/register", json=node_body(1))  # another node's identity
    assert r.status_code == 403
    assert (await node1.post("/v1/agent/register", json=node_body(1))).status_code == 200
    admin = secure.client(await secure.login())
    await admin.post("/v2/apps", json={**APP, "constraints": [["hostname", "LIKE", "127.0.0.2"]]})
    await converge(secure.control)
    (task_id,) = secure.control.state.tasks
    # node-1 may not see or touch node-0's set, nor report its task
    assert (await node1.get("/v1/agent/nodes/node-0/desired")).status_code == 403
    kill = {"statuses": [{"task_id": task_id, "state": "TASK_KILLED", "seq": 1}]}
    assert (await node1.post("/v1/agent/nodes/node-0/status", json=kill)).status_code == 403
    # on its own node path, a status for a task it does not run changes nothing
    r = await node1.post("/v1/agent/nodes/node-1/status", json=kill)
    assert r.status_code == 200
    assert secure.control.state.tasks[task_id].state.value == "TASK_STAGING"
    r = await node0.get("/v1/agent/nodes/node-0/desired", params={"after": 0, "wait": 0})
    assert [t["task_id"] for t in r.json()["tasks"]] == [task_id]
    assert (await node0.get("/v2/apps")).json()["apps"] == []  # an agent reads no apps


def _sample(path: str) -> str:
    for name, value in (
        ("{rest:path}", "prod/web"),
        ("{app_id:path}", "prod/web"),
        ("{node_id}", "node-0"),
        ("{deployment_id}", "d1"),
        ("{task_id}", "web.1"),
        ("{uid}", "alice"),
        ("{gid}", "ops"),
        ("{path:path}", "db/password"),
        ("{job_id}", "prod.nightly"),
        ("{schedule_id}", "daily"),
        ("{run_id}", "r1"),
        ("{store_name}", "default"),
    ):
        path = path.replace(name, value)
    return path


@dataclass(frozen=True)
class _Route:
    path: str
    methods: set[str]


def _routes() -> list[_Route]:
    """Every route of the master: FastAPI's and the agent protocol's (``AgentRoutes``)."""
    from pallet.api import (
        routes_acs,
        routes_apps,
        routes_discovery,
        routes_groups,
        routes_iam,
        routes_info,
        routes_jobs,
        routes_nodes,
        routes_pods,
        routes_secrets,
        routes_tasks,
    )

    modules = (
        routes_acs,
        routes_apps,
        routes_discovery,
        routes_groups,
        routes_iam,
        routes_info,
        routes_jobs,
        routes_nodes,
        routes_pods,
        routes_secrets,
        routes_tasks,
    )
    fastapi = [r for m in modules for r in m.router.routes if isinstance(r, APIRoute)]
    agent = [_Route(path, {method}) for method, path in AGENT_ROUTES]
    return [_Route(r.path, set(r.methods)) for r in fastapi] + agent


async def test_every_route_has_a_rule_of_its_own(secure: Secure) -> None:
    """No route of the master falls through to the superuser-only default: each is in the
    table on purpose (a route added later without a rule is closed, never open)."""
    lookup = StateLookup(lambda: secure.control.state)
    routes = _routes()
    assert len(routes) > 40
    for route in routes:
        for method in route.methods:
            need = requirement(method, _sample(route.path), lookup)
            assert need is not SUPERUSER, (method, route.path)


async def test_a_user_without_grants_changes_nothing_anywhere(secure: Secure) -> None:
    admin = secure.client(await secure.login())
    await admin.post("/v2/apps", json=APP)
    nobody = await secure.user("nobody")
    for route in _routes():
        for method in route.methods - {"GET", "HEAD"}:
            if route.path in ("/v1/auth/login", "/acs/api/v1/auth/login", "/v1/agent/join"):
                continue
            if route.path in ("/v1/auth/logout", "/v1/auth/password"):
                continue  # one's own, for any caller signed in
            r = await nobody.request(method, _sample(route.path), json={"id": "/prod/x"})
            assert r.status_code in (403, 404), (method, route.path, r.status_code, r.text)
    assert set(secure.control.state.apps) == {"/prod/web"}


PUBLIC_ROUTES = {
    ("GET", "/ping"),
    ("GET", "/"),  # the dashboard's page (it asks for a login itself)
    ("GET", "/ui"),  # the dashboard's files
    ("GET", "/v1/openapi.json"),
    ("GET", "/v1/docs"),
    ("GET", "/v1/auth/jwks"),  # public keys, for agents to check the master's tokens
    ("POST", "/v1/auth/login"),  # the credentials are in the body
    ("POST", "/acs/api/v1/auth/login"),
    ("POST", "/v1/agent/join"),  # the bootstrap secret or the node's credential is in the body
}
"""Everything an anonymous caller may reach; every other route of the app answers 401."""


async def test_the_whole_route_table_refuses_anonymous_callers(secure: Secure) -> None:
    """Walk the application's own route table (routers, the UI's mount, the schema pages):
    each route and method either is on the short public list or answers 401 with a JSON
    body to a request without a token; nothing is changed."""
    from starlette.routing import Mount, Route

    def walk(routes: list[Any]) -> list[Any]:
        out = []
        for route in routes:
            inner = getattr(route, "original_router", None)  # an included router (FastAPI)
            out += walk(list(inner.routes)) if inner is not None else [route]
        return out

    app = secure.api._transport.app  # type: ignore[attr-defined]
    seen = set()
    for route in walk(list(app.routes)):
        if isinstance(route, Mount):
            methods, path = {"GET"}, route.path
        elif isinstance(route, Route):
            methods, path = (route.methods or {"GET"}) - {"HEAD"}, route.path
        else:
            continue
        for method in methods:
            seen.add((method, path))
            target = _sample(path) + ("/pallet.css" if isinstance(route, Mount) else "")
            r = await secure.api.request(
                method, target, json=APP if method in ("POST", "PUT", "PATCH") else None
            )
            if (method, path) in PUBLIC_ROUTES:
                assert r.status_code != 401, (method, path)
                continue
            assert r.status_code == 401, (method, path, r.status_code, r.text)
            assert r.json()["message"], (method, path)
    for method, path in AGENT_ROUTES:  # served before the router, not in its table
        seen.add((method, path))
        r = await secure.api.request(method, _sample(path), json=APP if method == "POST" else None)
        assert r.status_code == 401, (method, path, r.status_code, r.text)
        assert r.json()["message"], (method, path)
    assert seen >= PUBLIC_ROUTES  # the public list names real routes only
    assert len(seen) > 50
    assert secure.control.state.apps == {}


async def test_a_known_caller_without_the_grant_is_403_not_401(secure: Secure) -> None:
    nobody = await secure.user("nobody")
    r = await nobody.get("/v2/apps/prod/web")
    assert r.status_code == 403 and r.json()["message"]
    r = await nobody.delete("/v2/leader")
    assert r.status_code == 403
    r = await nobody.get("/v1/agent/nodes/node-0/desired")
    assert r.status_code == 403


async def test_dcos_permission_strings_grant_what_they_say(secure: Secure) -> None:
    admin = secure.client(await secure.login())
    await admin.post("/v2/apps", json=APP)
    await admin.post("/v2/apps", json={**APP, "id": "/dev/web"})
    reader = await secure.user("reader", ("dcos:service:marathon:marathon:services:/prod", "read"))
    assert (await reader.get("/v2/apps/prod/web")).status_code == 200
    assert (await reader.get("/v2/apps/dev/web")).status_code == 403
    assert [a["id"] for a in (await reader.get("/v2/apps")).json()["apps"]] == ["/prod/web"]
    assert (await reader.delete("/v2/apps/prod/web")).status_code == 403
    r = await admin.post(
        "/v1/acls/grant",
        json={"principal": "reader", "rid": "dcos:adminrouter:service:marathon", "action": "full"},
    )
    assert r.status_code == 422 and "Admin Router" in r.text


async def test_jobs_are_checked_by_their_dotted_path(secure: Secure) -> None:
    """Metronome's routes: a grant on pallet:job:/prod (or DC/OS's
    dcos:service:metronome:metronome:jobs:prod) covers prod.* and nothing else; the job
    list and the queue show each caller the jobs it may read."""
    run = {"cmd": "true", "cpus": 0.1, "mem": 32, "disk": 0}
    admin = secure.client(await secure.login())
    r = await admin.post("/v1/jobs", json={"id": "dev.nightly", "run": run})
    assert r.status_code == 201, r.text
    ops = await secure.user("ops", ("dcos:service:metronome:metronome:jobs:prod", "full"))
    r = await ops.post("/v1/jobs", json={"id": "prod.nightly", "run": run})
    assert r.status_code == 201, r.text
    r = await ops.post("/v1/jobs", json={"id": "dev.weekly", "run": run})
    assert r.status_code == 403
    assert (await ops.get("/v1/jobs/prod.nightly")).status_code == 200
    assert (await ops.get("/v1/jobs/dev.nightly")).status_code == 403
    assert (await ops.get("/v1/jobs/dev.nightly/runs")).status_code == 403
    assert (await ops.post("/v1/jobs/prod.nightly/runs")).status_code == 201
    assert (await admin.post("/v1/jobs/dev.nightly/runs")).status_code == 201
    await secure.control.job_controller.reconcile()  # both runs wait: there is no node
    assert [j["id"] for j in (await ops.get("/v1/jobs")).json()] == ["prod.nightly"]
    assert [q["jobId"] for q in (await ops.get("/v1/queue")).json()] == ["prod.nightly"]
    assert [j["id"] for j in (await admin.get("/v1/jobs")).json()] == [
        "dev.nightly",
        "prod.nightly",
    ]
    assert [q["jobId"] for q in (await admin.get("/v1/queue")).json()] == [
        "dev.nightly",
        "prod.nightly",
    ]
    nobody = await secure.user("visitor")
    assert (await nobody.get("/v1/jobs")).json() == []
    assert (await nobody.get("/v1/queue")).json() == []


async def test_pods_are_services_at_their_path(secure: Secure) -> None:
    """A pod is checked as DC/OS checks Marathon's pods: a grant on its path (or a group
    above it) covers it; the unfiltered pod lists need read on every service."""
    pod = {
        "id": "/prod/pod",
        "scaling": {"kind": "fixed", "instances": 1},
        "containers": [
            {"name": "a", "resources": {"cpus": 0.1, "mem": 32}, "exec": {"command": {"shell": "sleep 600"}}}
        ],
    }  # fmt: skip
    ops = await secure.user("podops", ("dcos:service:marathon:marathon:services:/prod", "full"))
    r = await ops.post("/v2/pods", json=pod)
    assert r.status_code == 201, r.text
    assert (await ops.post("/v2/pods", json={**pod, "id": "/dev/pod"})).status_code == 403
    assert (await ops.get("/v2/pods/prod/pod::status")).status_code == 200
    assert (await ops.get("/v2/pods")).status_code == 403
    reader = await secure.user("podreader", ("pallet:service:/prod", "read"))
    assert (await reader.get("/v2/pods/prod/pod")).status_code == 200
    assert (await reader.delete("/v2/pods/prod/pod")).status_code == 403
    assert (await ops.delete("/v2/pods/prod/pod?force=true")).status_code == 202
