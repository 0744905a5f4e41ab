"""DC/OS's IAM API (``/acs/api/v1``) works as DC/OS scripts use it: make a service
account and a group, make ACLs by their DC/OS ids (slashes encoded twice), grant and
revoke through the path, read who holds what; and one's own password change needs the
current password. Bad input is a JSON 4xx that changes nothing."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from pallet.api.server import create_api
from pallet.control import Control

from .conftest import INFO
from .secure import PASSWORD, Secure

pytestmark = pytest.mark.anyio

SERVICES = "dcos:service:marathon:marathon:services:%252Fprod"
APP = {"id": "/prod/web", "cmd": "sleep 60", "cpus": 0.1, "mem": 32, "instances": 1}


def _public_key() -> str:
    key = ed25519.Ed25519PrivateKey.generate()
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


async def test_a_dcos_script_makes_an_account_an_acl_and_grants_on_it(secure: Secure) -> None:
    admin = secure.client(await secure.login())
    base = "/acs/api/v1"
    r = await admin.put(
        f"{base}/users/mlb", json={"public_key": _public_key(), "description": "LB"}
    )
    assert r.status_code == 201 and r.content == b""
    r = await admin.put(f"{base}/users/alice", json={"password": PASSWORD})
    assert r.status_code == 201
    users = {u["uid"]: u for u in (await admin.get(f"{base}/users")).json()["array"]}
    assert users["mlb"]["is_service"] is True and users["alice"]["is_service"] is False
    assert "password" not in str(users) and users["mlb"]["url"] == f"{base}/users/mlb"

    r = await admin.put(f"{base}/acls/{SERVICES}", json={"description": "Marathon services"})
    assert r.status_code == 201
    assert (await admin.put(f"{base}/acls/{SERVICES}", json={})).status_code == 409
    acl = (await admin.get(f"{base}/acls/{SERVICES}")).json()
    assert acl["rid"] == "pallet:service:/prod" and acl["description"] == "Marathon services"
    assert (await admin.put(f"{base}/acls/{SERVICES}/users/alice/read")).status_code == 204
    allowed = await admin.get(f"{base}/acls/{SERVICES}/users/alice/read")
    assert allowed.json() == {"allowed": True}
    assert (await admin.get(f"{base}/acls/{SERVICES}/users/alice/delete")).json() == {
        "allowed": False
    }
    holders = (await admin.get(f"{base}/acls/{SERVICES}/permissions")).json()
    assert [(u["uid"], [a["name"] for a in u["actions"]]) for u in holders["users"]] == [
        ("alice", ["read"])
    ]

    # the grant is real: alice reads /prod, and nothing else
    assert (await admin.post("/v2/apps", json=APP)).status_code == 201
    alice = secure.client(await secure.login("alice"))
    assert [a["id"] for a in (await alice.get("/v2/apps")).json()["apps"]] == ["/prod/web"]
    assert (await alice.delete("/v2/apps/prod/web")).status_code == 403

    # groups, as DC/OS has them
    assert (await admin.put(f"{base}/groups/ops", json={"description": "ops"})).status_code == 201
    assert (await admin.put(f"{base}/groups/ops/users/alice")).status_code == 204
    r = await admin.put(f"{base}/acls/dcos:adminrouter:ops:mesos/groups/ops/full")
    assert r.status_code == 204
    assert (await alice.get("/v1/nodes")).status_code == 200
    perms = (await admin.get(f"{base}/users/alice/permissions")).json()
    assert [p["rid"] for p in perms["direct"]] == ["pallet:service:/prod"]
    assert [(p["gid"], p["rid"]) for p in perms["groups"]] == [("ops", "pallet:node")]

    # revoking and deleting the ACL take the permission away at once
    assert (await admin.delete(f"{base}/acls/{SERVICES}/users/alice/read")).status_code == 204
    assert (await alice.get("/v2/apps/prod/web")).status_code == 403
    assert (await admin.delete(f"{base}/acls/{SERVICES}")).status_code == 204
    assert (await admin.get(f"{base}/acls/{SERVICES}")).status_code == 404
    r = await admin.patch(f"{base}/users/alice", json={"description": "Alice"})
    assert r.status_code == 204
    assert (await admin.get(f"{base}/users/alice")).json()["description"] == "Alice"
    assert (await admin.delete(f"{base}/users/mlb")).status_code == 204


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("PUT", "/acs/api/v1/acls/dcos:mesos:master:task:user:root", {}, 422),
        ("PUT", "/acs/api/v1/acls/pallet:service:%252F(a+)+$", {}, 422),
        ("PUT", f"/acs/api/v1/acls/{SERVICES}/users/nobody-here/read", None, 404),
        ("PUT", f"/acs/api/v1/acls/{SERVICES}/users/admin/sudo", None, 422),
        ("PUT", "/acs/api/v1/users/bad%20id", {"password": PASSWORD}, 422),
        ("PUT", "/acs/api/v1/users/x", {"password": PASSWORD, "root": True}, 422),
        ("POST", f"/acs/api/v1/acls/{SERVICES}/permissions", None, 405),
    ],
)
async def test_bad_input_is_a_json_4xx_and_changes_nothing(
    secure: Secure, method: str, path: str, body: object, status: int
) -> None:
    admin = secure.client(await secure.login())
    before = (dict(secure.auth.users), dict(secure.auth.grants), dict(secure.auth.acls))
    r = await admin.request(method, path, json=body)
    assert r.status_code == status, r.text
    assert r.json()["message"] or r.json().get("details")
    assert (dict(secure.auth.users), dict(secure.auth.grants), dict(secure.auth.acls)) == before


async def test_changing_ones_own_password_needs_the_current_one(secure: Secure) -> None:
    bob = await secure.user("bob")
    r = await bob.post("/v1/auth/password", json={"current": "wrong one", "password": "new-pass-9"})
    assert r.status_code == 403 and r.json()["message"]
    r = await bob.post("/v1/auth/password", json={"current": PASSWORD, "password": "new-pass-9"})
    assert r.status_code == 204, r.text
    assert await secure.login("bob", "new-pass-9")
    r = await secure.api.post("/v1/auth/login", json={"uid": "bob", "password": PASSWORD})
    assert r.status_code == 401
    anonymous = await secure.api.post(
        "/v1/auth/password", json={"current": "x", "password": "new-pass-9"}
    )
    assert anonymous.status_code == 401


async def test_the_cluster_says_how_it_is_protected(secure: Secure, control: Control) -> None:
    """``/v1/cluster`` feeds the dashboard's red warning: a master listening beyond
    loopback without authentication and TLS is ``insecure``."""
    admin = secure.client(await secure.login())
    assert (await secure.api.get("/v1/cluster")).status_code == 401
    doc = (await admin.get("/v1/cluster")).json()
    assert doc == {"auth": True, "tls": False, "exposed": False, "insecure": False}
    for host, insecure in (("0.0.0.0", True), ("10.1.2.3", True), ("::1", False)):
        app = create_api(control, replace(INFO, hostname=host), manage_control=False)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://master") as open_api:
            doc = (await open_api.get("/v1/cluster")).json()
        assert doc["insecure"] is insecure and doc["auth"] is False, (host, doc)
