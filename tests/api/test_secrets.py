"""Secrets through the routes (issue 14 item 5): DC/OS's secrets API and Pallet's alias,
bad paths 422 with nothing changed, values sealed in the store, apps and jobs that name
secrets (422 when missing, 403 without read), and values only for the agent of the task's
node, never in /v2/apps, /v2/tasks or the desired set."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from pallet.api import create_api
from pallet.auth.secretbox import SecretBox, new_key_line
from pallet.auth.secretstore import SecretStore
from pallet.control import Control

from .conftest import INFO, FakeClock, register
from .secure import BOOTSTRAP, Secure
from .test_jobs import loops
from .test_lifecycle import converge

pytestmark = pytest.mark.anyio

VALUE = "s3cr3t-hunter2-value"
DCOS = "/secrets/v1/secret/default"
APP: dict[str, Any] = {
    "id": "/prod/db-client",
    "cmd": "echo $DB_PASSWORD; cat pw/file",
    "cpus": 0.1,
    "mem": 32,
    "env": {"DB_PASSWORD": {"secret": "pw"}, "PLAIN": "x"},
    "secrets": {"pw": {"source": "db/password"}},
    "container": {"type": "MESOS", "volumes": [{"containerPath": "pw/file", "secret": "pw"}]},
}
JOB: dict[str, Any] = {
    "id": "backup",
    "run": {
        "cmd": "echo $DB_PASSWORD",
        "cpus": 0.1,
        "mem": 32,
        "env": {"DB_PASSWORD": {"secret": "pw"}},
        "secrets": {"pw": {"source": "/db/password"}},
        "volumes": [{"containerPath": "conf/pw", "secret": "pw"}],
    },
}


@pytest.fixture
async def open_api(control: Control, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    secrets = SecretStore(control.store, SecretBox.from_text(new_key_line()), clock=clock)
    app = create_api(control, INFO, manage_control=False, secrets=secrets)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://master") as client:
        yield client


async def _raw_store(control: Control) -> bytes:
    kvs, _ = await control.store.list("")
    return b"\n".join(kv.key.encode() + b"=" + kv.value for kv in kvs)


# Long enough that the sealed form (random bytes, in text) cannot hold it by chance: "v2"
# did, about once in forty runs.
SECOND = "second-value-of-the-db-password"


async def test_create_read_update_list_delete_in_dcos_shapes(
    open_api: httpx.AsyncClient, control: Control
) -> None:
    api = open_api
    r = await api.put(f"{DCOS}/db/password", json={"value": VALUE, "description": "prod db"})
    assert r.status_code == 201, r.text
    r = await api.put(f"{DCOS}/db/password", json={"value": "other"})
    assert r.status_code == 409 and "exists" in r.json()["message"]
    r = await api.get(f"{DCOS}/db/password")
    assert r.status_code == 200
    assert r.json()["value"] == VALUE and r.json()["description"] == "prod db"
    assert r.json()["author"] == "anonymous"
    # one implementation under both prefixes
    assert (await api.get("/v1/secrets/db/password")).json()["value"] == VALUE
    assert (await api.patch("/v1/secrets/db/password", json={"value": SECOND})).status_code == 204
    assert (await api.get(f"{DCOS}/db/password")).json()["value"] == SECOND
    assert (await api.put("/v1/secrets/db/user", json={"value": "u"})).status_code == 201
    assert (await api.put("/v1/secrets/web/key", json={"value": "k"})).status_code == 201
    r = await api.get(f"{DCOS}/", params={"list": "true"})
    assert r.json() == {"array": ["db/password", "db/user", "web/key"]}
    r = await api.get(f"{DCOS}/db", params={"list": "true"})
    assert r.json() == {"array": ["password", "user"]}
    assert SECOND not in (await api.get("/v1/secrets")).text  # a listing shows names only
    assert (await api.delete(f"{DCOS}/db/user")).status_code == 204
    for method in ("GET", "PATCH", "DELETE"):
        body = {"value": "x"} if method == "PATCH" else None
        r = await api.request(method, f"{DCOS}/db/user", json=body)
        assert r.status_code == 404 and "db/user" in r.json()["message"], method
    r = await api.get("/secrets/v1/secret/vault/db/password")
    assert r.status_code == 404 and "vault" in r.json()["message"]
    # sealed at rest: no value in clear anywhere in the store
    raw = await _raw_store(control)
    assert SECOND.encode() not in raw and VALUE.encode() not in raw and b"v1." in raw


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("db/%2e%2e/etc", "'..' segment"),
        ("db//password", "empty segment"),
        ("db/pass%20word", "letters, digits"),
        ("db/pass$word", "letters, digits"),
        ("%2e", "'.' segment"),
    ],
)
async def test_bad_paths_are_422_naming_the_field_and_change_nothing(
    open_api: httpx.AsyncClient, control: Control, path: str, why: str
) -> None:
    before = await _raw_store(control)
    for method in ("PUT", "PATCH", "GET", "DELETE"):
        r = await open_api.request(method, f"/v1/secrets/{path}", json={"value": "x"})
        assert r.status_code == 422, (method, path, r.text)
        (detail,) = r.json()["details"]
        assert detail["path"] == "/path" and why in detail["errors"][0], r.text
    assert await _raw_store(control) == before


async def test_bad_bodies_are_422_naming_the_field(open_api: httpx.AsyncClient) -> None:
    for body, field in [
        ({}, "/value"),
        ({"value": 5}, "/value"),
        ({"value": "x", "author": "eve"}, "/author"),
        ({"value": "x" * (256 * 1024 + 1)}, "/value"),
    ]:
        r = await open_api.put("/v1/secrets/db/password", json=body)
        assert r.status_code == 422, r.text
        assert field in [d["path"] for d in r.json()["details"]], r.text
    assert (await open_api.get("/v1/secrets/db/password")).status_code == 404


async def test_a_master_without_a_key_says_secrets_are_off(api: httpx.AsyncClient) -> None:
    r = await api.put("/v1/secrets/db/password", json={"value": "x"})
    assert r.status_code == 503 and "--secrets-key-file" in r.json()["message"]
    r = await api.post("/v2/apps", json=APP)
    assert r.status_code == 422 and "secrets are off" in r.text
    assert (await api.get("/v2/apps")).json()["apps"] == []


async def test_an_app_gets_references_and_its_agent_the_values(
    open_api: httpx.AsyncClient, control: Control
) -> None:
    api = open_api
    await register(api, 2)
    r = await api.post("/v2/apps", json=APP)
    assert r.status_code == 422
    assert [d["path"] for d in r.json()["details"]] == ["/secrets/pw/source"]
    assert "db/password does not exist" in r.text and control.state.apps == {}
    await api.put("/v1/secrets/db/password", json={"value": VALUE})
    r = await api.post("/v2/apps", json=APP)
    assert r.status_code == 201, r.text
    await converge(control)
    (task,) = control.state.tasks.values()
    refs = {(s.name, s.source, s.env, s.file) for s in task.launch.secrets}
    assert refs == {
        ("pw", "db/password", "DB_PASSWORD", None),
        ("pw", "db/password", None, "pw/file"),
    }
    shown = [
        await api.get("/v2/apps", params={"embed": "apps.tasks"}),
        await api.get("/v2/apps/prod/db-client"),
        await api.get("/v2/tasks"),
        await api.get("/v2/groups", params={"embed": "group.apps"}),
        await api.get(f"/v1/agent/nodes/{task.node_id}/desired", params={"after": 0}),
    ]
    for r in shown:
        assert r.status_code == 200 and VALUE not in r.text, r.request.url
    assert "db/password" in shown[-1].text  # the desired set carries the reference
    assert VALUE.encode() not in await _raw_store(control)
    r = await api.get(f"/v1/agent/nodes/{task.node_id}/tasks/{task.id}/secrets")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    assert {s["value"] for s in r.json()["secrets"]} == {VALUE}
    other = next(n for n in control.state.nodes if n != task.node_id)
    r = await api.get(f"/v1/agent/nodes/{other}/tasks/{task.id}/secrets")
    assert r.status_code == 404 and VALUE not in r.text
    # the secret gone, the task's agent is told which one (the launch fails with it)
    await api.delete("/v1/secrets/db/password")
    r = await api.get(f"/v1/agent/nodes/{task.node_id}/tasks/{task.id}/secrets")
    assert r.status_code == 404 and "db/password" in r.json()["message"]


async def test_a_job_run_gets_references_only(
    open_api: httpx.AsyncClient, control: Control
) -> None:
    api = open_api
    await register(api, 1)
    r = await api.post("/v1/jobs", json=JOB)
    assert r.status_code == 422
    assert [d["path"] for d in r.json()["details"]] == ["/run/secrets/pw/source"]
    await api.put("/v1/secrets/db/password", json={"value": VALUE})
    r = await api.post("/v1/jobs", json=JOB)
    assert r.status_code == 201, r.text
    assert r.json()["run"]["secrets"] == {"pw": {"source": "db/password"}}
    assert r.json()["run"]["env"] == {"DB_PASSWORD": {"secret": "pw"}}
    assert r.json()["run"]["volumes"] == [{"containerPath": "conf/pw", "secret": "pw"}]
    assert (await api.post("/v1/jobs/backup/runs", json={})).status_code == 201
    await loops(control)
    (task,) = control.state.tasks.values()
    assert [(s.source, s.env, s.file) for s in task.launch.secrets] == [
        ("db/password", "DB_PASSWORD", None),
        ("db/password", None, "conf/pw"),
    ]
    assert "DB_PASSWORD" not in task.launch.env
    r = await api.get(f"/v1/agent/nodes/{task.node_id}/tasks/{task.id}/secrets")
    assert [s["value"] for s in r.json()["secrets"]] == [VALUE, VALUE]
    for r in (await api.get("/v1/jobs/backup"), await api.get("/v2/tasks")):
        assert VALUE not in r.text


# ------------------------------------------------------------------ with authentication on


async def test_permissions_govern_secrets_and_the_apps_that_name_them(secure: Secure) -> None:
    admin = secure.client(await secure.login())
    assert (await admin.put("/v1/secrets/db/password", json={"value": VALUE})).status_code == 201
    assert (await admin.put("/v1/secrets/web/key", json={"value": "k"})).status_code == 201
    deployer = await secure.user(
        "deployer", ("pallet:service:/prod", "full"), ("pallet:job:/backup", "full")
    )
    r = await deployer.post("/v2/apps", json=APP)  # may create the app, not read the secret
    assert r.status_code == 403 and "db/password" in r.json()["message"]
    assert secure.control.state.apps == {}
    r = await deployer.post("/v1/jobs", json=JOB)  # nor a job that names it
    assert r.status_code == 403 and "db/password" in r.json()["message"]
    assert (await admin.get("/v1/jobs")).json() == []
    r = await deployer.get("/v1/secrets/db/password")
    assert r.status_code == 403 and VALUE not in r.text
    assert (await deployer.get(f"{DCOS}/", params={"list": "true"})).json() == {"array": []}
    reader = await secure.user(
        "reader",
        ("pallet:service:/prod", "full"),
        ("dcos:secrets:default:/db", "read"),  # DC/OS's id for the same rule
    )
    # read on /db: the value, a listing of /db only, no writes
    assert (await reader.get(f"{DCOS}/db/password")).json()["value"] == VALUE
    assert (await reader.get(f"{DCOS}/", params={"list": "true"})).json() == {
        "array": ["db/password"]
    }
    assert (await reader.patch(f"{DCOS}/db/password", json={"value": "x"})).status_code == 403
    assert (await reader.delete(f"{DCOS}/db/password")).status_code == 403
    assert (await reader.put(f"{DCOS}/db/other", json={"value": "x"})).status_code == 403
    r = await reader.post("/v2/apps", json=APP)
    assert r.status_code == 201, r.text
    # a missing secret the caller may read is a 422 on its field; one it may not, a 403
    other = {**APP, "id": "/prod/other", "secrets": {"pw": {"source": "db/none"}}}
    r = await reader.post("/v2/apps", json=other)
    assert r.status_code == 422 and r.json()["details"][0]["path"] == "/secrets/pw/source"
    other["secrets"] = {"pw": {"source": "web/none"}}
    assert (await reader.post("/v2/apps", json=other)).status_code == 403
    r = await reader.put("/v2/groups/prod", json={"apps": [{**other, "id": "g"}]})
    assert r.status_code == 403
    assert set(secure.control.state.apps) == {"/prod/db-client"}
    assert (await admin.get("/v1/secrets/db/password")).json()["value"] == VALUE


async def test_only_the_agent_of_the_tasks_node_gets_its_values(secure: Secure) -> None:
    api = secure.api
    tokens = []
    for i in range(2):
        r = await api.post("/v1/agent/join", json={"node_id": f"node-{i}", "bootstrap": BOOTSTRAP})
        tokens.append(r.json()["token"])
    node0, node1 = secure.client(tokens[0]), secure.client(tokens[1])
    from .conftest import node_body

    for i, agent in enumerate((node0, node1)):
        assert (await agent.post("/v1/agent/register", json=node_body(i))).status_code == 200
    admin = secure.client(await secure.login())
    await admin.put("/v1/secrets/db/password", json={"value": VALUE})
    pinned = {**APP, "constraints": [["hostname", "LIKE", "127.0.0.2"]]}
    assert (await admin.post("/v2/apps", json=pinned)).status_code == 201
    await converge(secure.control)
    (task,) = secure.control.state.tasks.values()
    assert task.node_id == "node-0"
    url = f"/v1/agent/nodes/node-0/tasks/{task.id}/secrets"
    assert (await node0.get(url)).json()["secrets"][0]["value"] == VALUE
    # another agent: refused on node-0's path, and not found on its own
    r = await node1.get(url)
    assert r.status_code == 403 and VALUE not in r.text
    r = await node1.get(f"/v1/agent/nodes/node-1/tasks/{task.id}/secrets")
    assert r.status_code == 404 and VALUE not in r.text
    # an agent reads no secret through the secrets API, and nobody anonymously
    assert (await node0.get("/v1/secrets/db/password")).status_code == 403
    assert (await api.get(url)).status_code == 401
    assert (await api.get("/v1/secrets/db/password")).status_code == 401
    r = await node0.get("/v1/agent/nodes/node-0/desired", params={"after": 0})
    assert VALUE not in r.text and "db/password" in r.text
    # who read which secret is in the audit log, never the value
    await secure.audit.flush()
    r = await admin.get("/v1/audit", params={"limit": "100"})
    reads = [e for e in r.json()["entries"] if e.get("secret") == "db/password"]
    assert [(e["uid"], e["kind"]) for e in reads] == [("node-0", "agent")], reads
    assert VALUE not in r.text
