"""A secured cluster end to end (issue 14): ``pallet up --secure`` serves HTTPS from its own
CA, its agents join with the bootstrap secret, the CLI is logged in as the superuser, an app
runs and its log is read through the master; an agent without the secret is refused; the
``pallet auth`` commands add a user, grant, read a token and log out."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
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
    port = free_port()
    env = {**os.environ, "PALLET_CONFIG": str(home / "cli.json"), "PALLET_MASTER": ""}
    env.pop("PALLET_TOKEN", None)
    env["PALLET_MASTER"] = f"https://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "pallet.cli.main", "up", "--secure", "--agents", "1",
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
        yield Secured(env["PALLET_MASTER"], state, env, state / "secure" / "ca.crt")
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
