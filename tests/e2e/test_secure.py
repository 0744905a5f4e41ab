"""A secured cluster end to end (issue 14): ``pallet up --secure`` serves HTTPS from its own
CA, its agents join with the bootstrap secret, the CLI is logged in as the superuser, an app
runs and its log is read through the master; an agent without the secret is refused; the
``pallet auth`` commands add a user, grant, read a token and log out."""

from __future__ import annotations

import json
import os
import secrets
import signal
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from pallet.bench.cluster import free_port, leftovers
from polling import wait_for

pytestmark = pytest.mark.slow

APP = '{"id": "/prod/hello", "cmd": "echo hello-secure; sleep 600", "cpus": 0.1, "mem": 16}'


def _trust(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


@dataclass
class Secured:
    url: str
    state: Path
    env: dict[str, str]
    ca: Path
    dns_port: int = 0
    lb_port: int = 0

    def pallet(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pallet.cli.main", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=120,
        )


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    home = tmp_path_factory.mktemp("secure")
    state = home / "state"
    port, dns_port, lb_port = free_port(), free_port(), free_port()
    env = {**os.environ, "PALLET_CONFIG": str(home / "cli.json"), "PALLET_MASTER": ""}
    env.pop("PALLET_TOKEN", None)
    env["PALLET_MASTER"] = f"https://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "pallet.cli.main", "up", "--secure", "--agents", "2",
         "--public-agents", "1", "--dns-port", str(dns_port), "--lb-http-port", str(lb_port),
         "--lb-stats-port", str(free_port()),
         "--port", str(port), "--state-dir", str(state), "--agent-port", "0",
         "--heartbeat-interval", "0.5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )  # fmt: skip
    assert process.stdout is not None
    first = process.stdout.readline().decode()
    try:
        assert "Pallet is up" in first, first + process.stdout.read().decode()
        yield Secured(
            env["PALLET_MASTER"], state, env, state / "secure" / "ca.crt", dns_port, lb_port
        )
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    wait_for(lambda: not leftovers(state), 10, "no process left behind")


def test_the_api_needs_a_token_and_tls(secured: Secured) -> None:
    with httpx.Client(base_url=secured.url, verify=_trust(secured.ca), timeout=10) as http:
        r = http.get("/v2/apps")
        assert r.status_code == 401 and r.json()["message"]
        assert http.get("/ping").status_code == 200
    with pytest.raises(httpx.ConnectError):  # the cluster's own CA, not a public one
        httpx.get(f"{secured.url}/ping", timeout=10)


def test_the_cli_is_logged_in_and_runs_an_app_whose_log_it_reads(
    secured: Secured, tmp_path: Path
) -> None:
    app = tmp_path / "app.json"
    app.write_text(APP)
    r = secured.pallet("app", "add", str(app))
    assert r.returncode == 0, r.stderr

    def task() -> str | None:
        out = secured.pallet("task", "list", "--json")
        assert out.returncode == 0, out.stderr
        tasks = [t for t in json.loads(out.stdout) if t["state"] == "TASK_RUNNING"]
        return str(tasks[0]["id"]) if tasks else None

    task_id = wait_for(task, 60, "the task to run")
    # the master reads the log from the agent over TLS, with a token only it can sign
    wait_for(
        lambda: "hello-secure" in secured.pallet("task", "logs", task_id).stdout,
        30,
        "the task's log through the master",
    )


def test_an_agent_without_the_bootstrap_secret_is_refused(secured: Secured, tmp_path: Path) -> None:
    r = secured.pallet(
        "agent", "--master", secured.url, "--ca", str(secured.ca),
        "--work-dir", str(tmp_path / "rogue"), "--port", "0",
    )  # fmt: skip
    assert r.returncode != 0
    assert "bootstrap secret" in r.stderr
    (tmp_path / "wrong").write_text("not-the-secret\n")
    r = secured.pallet(
        "agent", "--master", secured.url, "--ca", str(secured.ca),
        "--bootstrap-secret-file", str(tmp_path / "wrong"),
        "--work-dir", str(tmp_path / "rogue"), "--port", "0",
    )  # fmt: skip
    assert r.returncode != 0
    assert "wrong bootstrap secret" in r.stderr
    with httpx.Client(base_url=secured.url, verify=_trust(secured.ca), timeout=10) as http:
        r = http.post("/v1/agent/register", json={})
        assert r.status_code == 401


def test_auth_commands_add_a_user_grant_and_log_out(secured: Secured) -> None:
    r = secured.pallet("auth", "user", "add", "alice", "--password-stdin", stdin="alice-pass-1\n")
    assert r.returncode == 0, r.stderr
    r = secured.pallet(
        "auth", "grant", "alice", "dcos:service:marathon:marathon:services:/prod", "read"
    )
    assert r.returncode == 0, r.stderr
    assert "pallet:service:/prod" in secured.pallet("auth", "acls").stdout
    assert "alice" in secured.pallet("auth", "user", "list").stdout
    # alice, in a config of her own
    alice = Secured(secured.url, secured.state, {**secured.env}, secured.ca)
    alice.env["PALLET_CONFIG"] = str(secured.state.parent / "alice.json")
    r = alice.pallet(
        "auth", "login", "-u", "alice", "--password-stdin", "--ca", str(secured.ca),
        stdin="alice-pass-1\n",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = alice.pallet("auth", "password", "--password-stdin", stdin="alice-pass-1\nalice-pass-2\n")
    assert r.returncode == 0, r.stderr
    r = alice.pallet(
        "auth", "login", "-u", "alice", "--password-stdin", "--ca", str(secured.ca),
        stdin="alice-pass-2\n",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    token = alice.pallet("auth", "token").stdout.strip()
    with httpx.Client(base_url=secured.url, verify=_trust(secured.ca), timeout=10) as http:
        for scheme in ("token=", "Bearer "):
            r = http.get("/v2/apps", headers={"Authorization": scheme + token})
            assert [a["id"] for a in r.json()["apps"]] == ["/prod/hello"]
        r = http.delete("/v2/apps/prod/hello", headers={"Authorization": f"token={token}"})
        assert r.status_code == 403 and r.json()["message"]
    assert alice.pallet("app", "remove", "/prod/hello").returncode != 0
    r = alice.pallet("auth", "logout")
    assert r.returncode == 0, r.stderr
    with httpx.Client(base_url=secured.url, verify=_trust(secured.ca), timeout=10) as http:
        assert http.get("/v2/apps", headers={"Authorization": f"token={token}"}).status_code == 401
    r = alice.pallet("app", "list")
    assert r.returncode != 0 and "pallet auth login" in r.stderr


EDGE = {
    "id": "/edge/web",
    # its working directory is its sandbox; the test's state dir is not searchable by
    # the task's user, so the server must not look its sandbox up by absolute path
    "cmd": "python3 -m http.server $PORT0 --directory .",
    "cpus": 0.1,
    "mem": 64,
    "portDefinitions": [{"port": 0, "name": "http"}],
    "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "web.example.com"},
}


def test_dns_and_the_edge_lb_log_in_as_their_service_account(secured: Secured) -> None:
    """``up --secure --public-agents 1`` runs the DNS server and the edge LB, which read
    the apps from the secured master as the ``pallet-discovery`` service account."""
    with httpx.Client(base_url=secured.url, verify=_trust(secured.ca), timeout=10) as http:
        token = secured.pallet("auth", "token").stdout.strip()
        admin = {"Authorization": f"token={token}"}
        assert http.post("/v2/apps", json=EDGE, headers=admin).status_code == 201
        grants = http.get("/v1/acls", params={"principal": "pallet-discovery"}, headers=admin)
        assert {(g["rid"], g["action"]) for g in grants.json()["acls"]} >= {
            ("pallet:service:/", "read"),
            ("pallet:events", "read"),
        }

    def resolved() -> list[object]:
        r = secured.pallet(
            "dns", "lookup", "web-edge.marathon.mesos", "--server", f"127.0.0.1:{secured.dns_port}",
            "--json",
        )  # fmt: skip
        return list(json.loads(r.stdout)["records"]) if r.returncode == 0 else []

    wait_for(resolved, 60, "the app's DNS name")

    def served() -> bool:
        try:
            r = httpx.get(
                f"http://{_public_address(secured)}:{secured.lb_port}/",
                headers={"Host": "web.example.com"},
                timeout=5,
            )
        except httpx.HTTPError:
            return False
        return r.status_code == 200 and "Directory listing" in r.text

    wait_for(served, 60, "the app through the edge LB")


def _public_address(secured: Secured) -> str:
    doc = json.loads((secured.state / "up.json").read_text())
    return str(doc["lb"]["http"]).rsplit(":", 1)[0]


SECRET_APP = {
    "id": "/vault/db-client",
    "cmd": 'echo "env:$DB_PASSWORD"; echo "me:$(id -u)"; cat pw/file; echo; '
    "stat -c 'file:%a:%u' pw/file; sleep 600",
    "cpus": 0.1,
    "mem": 16,
    "env": {"DB_PASSWORD": {"secret": "pw"}},
    "secrets": {"pw": {"source": "db/password"}},
    "container": {"type": "MESOS", "volumes": [{"containerPath": "pw/file", "secret": "pw"}]},
}


def test_a_task_gets_its_secret_and_no_other_path_shows_it(
    secured: Secured, tmp_path: Path
) -> None:
    """The value reaches the task (variable and 0400 file of its user) and nothing else:
    not /v2/apps, /v2/tasks, the desired set, the event stream, the store or any file the
    cluster writes outside the task's sandbox (logs, checkpoints)."""
    value = "pw-" + secrets.token_hex(12)
    r = secured.pallet("secret", "create", "db/password", "--value", value)
    assert r.returncode == 0, r.stderr
    token = secured.pallet("auth", "token").stdout.strip()
    auth = {"Authorization": f"token={token}"}
    events: list[str] = []
    stop = threading.Event()

    def listen() -> None:
        timeout = httpx.Timeout(10, read=1)
        with httpx.Client(base_url=secured.url, verify=_trust(secured.ca), timeout=timeout) as h:
            while not stop.is_set():
                try:
                    with h.stream("GET", "/v2/events", headers=auth) as stream:
                        for line in stream.iter_lines():
                            events.append(line)
                            if stop.is_set():
                                return
                except httpx.HTTPError:
                    continue

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    app = tmp_path / "app.json"
    app.write_text(json.dumps(SECRET_APP))
    r = secured.pallet("app", "add", str(app))
    assert r.returncode == 0, r.stderr

    def running() -> dict[str, object] | None:
        out = json.loads(secured.pallet("task", "list", "--json").stdout)
        mine = [t for t in out if t["appId"] == "/vault/db-client" and t["state"] == "TASK_RUNNING"]
        return mine[0] if mine else None

    task = wait_for(running, 90, "the task with secrets to run")
    task_id = str(task["id"])
    log = wait_for(
        lambda: (out := secured.pallet("task", "logs", task_id).stdout).count("\n") >= 4 and out,
        60,
        "the task's output",
    )
    lines = str(log).splitlines()
    user = lines[1].removeprefix("me:")
    assert lines[0] == f"env:{value}" and lines[2] == value, lines
    assert lines[3] == f"file:400:{user}", lines
    with httpx.Client(base_url=secured.url, verify=_trust(secured.ca), timeout=10) as http:
        node = str(task.get("agentId") or task["slaveId"])
        shown = [
            http.get("/v2/apps", params={"embed": "apps.tasks"}, headers=auth),
            http.get("/v2/apps/vault/db-client", headers=auth),
            http.get("/v2/tasks", headers=auth),
            http.get(f"/v1/agent/nodes/{node}/desired", headers=auth),
        ]
        for answer in shown:
            assert answer.status_code == 200 and value not in answer.text, answer.request.url
        assert "db/password" in shown[-1].text
        # a user (not the task's agent) asking the agent route gets nothing
        r = http.get(f"/v1/agent/nodes/{node}/tasks/{task_id}/secrets")
        assert r.status_code == 401 and value not in r.text
    assert secured.pallet("app", "remove", "/vault/db-client").returncode == 0
    wait_for(lambda: running() is None, 60, "the task to end")
    stop.set()
    listener.join(15)
    assert any("status_update_event" in e for e in events), events[:5]
    assert not [e for e in events if value in e]
    # at rest: the store (SQLite and its WAL), logs and checkpoints hold no value in clear
    sandbox_of_task = f"sandboxes/{task_id}"
    leaked = [
        path
        for path in secured.state.rglob("*")
        if path.is_file() and sandbox_of_task not in str(path) and value.encode() in _bytes(path)
    ]
    assert leaked == []


def _bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:  # a socket or a file gone meanwhile
        return b""


BOX_CMD = (
    "grep NoNewPrivs /proc/self/status; "
    "cat /etc/shadow >/dev/null 2>&1 && echo shadow-read || echo shadow-refused; "
    "ls .. >/dev/null 2>&1 && echo listed || echo listing-refused; "
    "for f in /sys/fs/cgroup/cgroup.procs /sys/fs/cgroup/memory/cgroup.procs; do "
    "[ -e $f ] && (echo $$ > $f) 2>/dev/null && echo escaped; done; "
    "(i=0; while [ $i -lt 40 ]; do sleep 600 & i=$((i+1)); done); echo bomb-stopped; "
    "sleep 600"
)


@pytest.mark.root
def test_tasks_stay_in_their_box(secured: Secured) -> None:
    """The attacks of issue 14 from inside a task of a secured cluster, as its default
    unprivileged user: no privilege by exec, no shadow, no listing of other sandboxes, no
    cgroup escape, a fork bomb stopped at its app's pids limit; root is not for apps."""
    token = secured.pallet("auth", "token").stdout.strip()
    headers = {"Authorization": f"token={token}"}
    box = {"id": "/box/bomb", "cmd": BOX_CMD, "cpus": 0.1, "mem": 32}
    box["labels"] = {"PALLET_PIDS_MAX": "16"}
    with httpx.Client(
        base_url=secured.url, verify=_trust(secured.ca), timeout=10, headers=headers
    ) as http:
        assert http.post("/v2/apps", json=box).status_code == 201
        root = {"id": "/box/root", "cmd": "sleep 600", "user": "root", "cpus": 0.1, "mem": 16}
        assert http.post("/v2/apps", json=root).status_code == 201

        def sandbox() -> Path | None:
            found = list(secured.state.glob("agent-*/sandboxes/box_bomb.*"))
            return found[0] if found else None

        path = wait_for(sandbox, 60, "the task's sandbox")
        out = wait_for(
            lambda: "bomb-stopped" in (text := (path / "stdout").read_text()) and text,
            60,
            "the attacks to run",
        )
        assert out.splitlines() == [
            "NoNewPrivs:\t1", "shadow-refused", "listing-refused", "bomb-stopped"
        ]  # fmt: skip
        assert "Cannot fork" in (path / "stderr").read_text()
        st = path.stat()
        assert st.st_mode & 0o777 == 0o700 and st.st_uid != 0
        sleepers = [p for p in psutil.process_iter(["cwd"]) if p.info["cwd"] == str(path.resolve())]
        assert 0 < len(sleepers) <= 16
        failure = wait_for(
            lambda: http.get("/v2/apps/box/root").json()["app"].get("lastTaskFailure"),
            60,
            "root refused",
        )
        assert "user 'root' is not allowed on this node" in failure["message"]
        for app in ("/box/bomb", "/box/root"):
            http.delete(f"/v2/apps{app}", params={"force": "true"})


def test_the_marathon_client_works_with_a_token(secured: Secured) -> None:
    """The Marathon Python client (DC/OS's ``auth_token``: ``Authorization: token=``)
    against the secured cluster, checking its CA; without a token it is refused."""
    import collections
    import collections.abc

    for name in ("Iterable", "Mapping", "MutableMapping", "Sequence"):  # the client's bug
        if not hasattr(collections, name):
            setattr(collections, name, getattr(collections.abc, name))
    from marathon import MarathonClient
    from marathon.exceptions import MarathonHttpError
    from marathon.models import MarathonApp

    token = secured.pallet("auth", "token").stdout.strip()
    client = MarathonClient(secured.url, auth_token=token, verify=str(secured.ca))
    app = MarathonApp(cmd="sleep 600", cpus=0.05, mem=16, instances=1)
    created = client.create_app("/client/sleeper", app)
    assert created.id == "/client/sleeper"
    assert "/client/sleeper" in [a.id for a in client.list_apps()]
    wait_for(
        lambda: [t for t in client.list_tasks("/client/sleeper") if t.state == "TASK_RUNNING"],
        90,
        "the client's app to run",
    )
    assert client.delete_app("/client/sleeper", force=True)
    anonymous = MarathonClient(secured.url, verify=str(secured.ca))
    with pytest.raises(MarathonHttpError) as refused:
        anonymous.list_apps()
    assert refused.value.status_code == 401
