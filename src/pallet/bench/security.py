"""``pallet bench security``: the attacks of issue 14 as automated cases against a real
``pallet up --secure`` cluster, schemathesis over its API with a token and without, and
what authentication costs ``pallet bench api``'s p99; does I/O (processes, HTTPS).

    pallet up --secure (2 agents, tokens of 60 s) ─▶ a victim app (a planted DB_PASSWORD)
      ─▶ protocol attacks: fake status, desired-state read, fake register / SSRF,
         writes without a token, with an expired one, with one lacking the grant
      ─▶ secret attacks: reading a secret without the grant, through an app that names
         it, from another node's agent, and its value in the API or at rest
      ─▶ task attacks, from an app of the default user: /etc/shadow, a sibling's sandbox,
         the master's store, a cgroup escape, a fork bomb past its pids limit, its log
         swapped for a link to /etc/shadow
      ─▶ schemathesis (--cases, half with the superuser's token, half without), and every
         undeclared method: 5xx and 405s without Allow
    two masters, open and with tokens (no TLS in either) ─▶ GET /v2/apps p99, same run

An attack "succeeded" when the cluster did what the attacker wanted; each says what was
seen. The task attacks need root (tasks then run as nobody); as another user every task
runs as that user and the report says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import ssl
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from pallet.bench.cluster import free_port, running_master, running_up
from pallet.bench.fuzz import FuzzResult, MethodsResult, fuzz, undeclared_methods
from pallet.client.superuser import superuser_client

__all__ = ["Attack", "SecurityResult", "run_security_bench"]

TOKEN_TTL = 60.0
"""The cluster's token lifetime: short, so the expired-token attack waits at most this."""
PIDS_MAX = 64
"""The fork bomb's app limit (PALLET_PIDS_MAX); the bomb tries 300 processes."""
SECRET = "hunter2-planted"
SECRET_PATH = "bench/db"
SECRET_VALUE = "s3cret-" + secrets.token_hex(8)
"""A real secret (issue 14.5) the victim gets as ``DB_SECRET`` and the file ``db``."""


@dataclass(frozen=True, slots=True)
class Attack:
    name: str
    succeeded: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "succeeded": self.succeeded, "detail": self.detail}


@dataclass
class SecurityResult:
    attacks: list[Attack] = field(default_factory=list)
    with_token: FuzzResult = field(default_factory=FuzzResult)
    without_token: FuzzResult = field(default_factory=FuzzResult)
    methods: MethodsResult = field(default_factory=MethodsResult)
    p99_open_ms: float = 0.0
    p99_auth_ms: float = 0.0
    api_requests: int = 0
    as_root: bool = True

    @property
    def auth_overhead(self) -> float:
        return self.p99_auth_ms / self.p99_open_ms if self.p99_open_ms else 0.0

    def to_json(self) -> dict[str, Any]:
        cases = self.with_token.cases + self.without_token.cases
        errors = self.with_token.server_errors + self.without_token.server_errors
        return {
            "attacks": [a.to_json() for a in self.attacks],
            "schemathesis": {
                "cases": cases,
                "server_errors": errors,
                "with_token": self.with_token.to_json(),
                "without_token": self.without_token.to_json(),
                "undeclared_methods": self.methods.to_json(),
            },
            "auth_overhead": round(self.auth_overhead, 3),
            "api": {
                "requests": self.api_requests,
                "p99_open_ms": round(self.p99_open_ms, 2),
                "p99_auth_ms": round(self.p99_auth_ms, 2),
            },
            "as_root": self.as_root,
        }


# ------------------------------------------------------------------ the cluster


@dataclass
class _Cluster:
    url: str
    state: Path
    ca: Path
    http: httpx.Client
    """The superuser's client (logs in again whenever its token is refused)."""

    def token(self, uid: str, password: str) -> str:
        r = httpx.post(
            f"{self.url}/v1/auth/login",
            json={"uid": uid, "password": password},
            verify=self.context(),
            timeout=30,
        )
        r.raise_for_status()
        return str(r.json()["token"])

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))

    def anonymous(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"token={token}"} if token else {}
        return httpx.Client(base_url=self.url, verify=self.context(), timeout=30, headers=headers)


@contextlib.contextmanager
def _secure_cluster(home: Path) -> Iterator[_Cluster]:
    state = home / "state"
    env = {**os.environ, "PALLET_CONFIG": str(home / "cli.json")}
    env.pop("PALLET_TOKEN", None)
    secure = ("--secure", "--heartbeat-interval", "0.5", "--token-ttl", str(TOKEN_TTL))
    with (
        running_up(state, 2, "cpus:2;mem:2048", free_port(), extra=secure, env=env) as url,
        superuser_client(url, state, secure=True, timeout=30) as http,
    ):
        yield _Cluster(url, state, state / "secure" / "ca.crt", http)


def _wait(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.2)


def _running(cluster: _Cluster, app_id: str) -> dict[str, Any] | None:
    r = cluster.http.get(f"/v2/apps{app_id}")
    if r.status_code != 200:
        return None
    tasks = [t for t in r.json()["app"]["tasks"] if t["state"] == "TASK_RUNNING"]
    return tasks[0] if tasks else None


def _sandbox(cluster: _Cluster, task_id: str) -> Path | None:
    found = list(cluster.state.glob(f"agent-*/sandboxes/{task_id}"))
    return found[0] if found else None


def _deploy(cluster: _Cluster, app: dict[str, Any]) -> dict[str, Any]:
    r = cluster.http.post("/v2/apps", json={"cpus": 0.1, "mem": 64, **app})
    if r.status_code != 201:
        raise RuntimeError(f"cannot create {app['id']}: {r.status_code} {r.text}")
    task: dict[str, Any] = _wait(lambda: _running(cluster, app["id"]), 90, f"{app['id']} to run")
    return task


# ------------------------------------------------------------------ the attacks


def _protocol_attacks(cluster: _Cluster, victim: dict[str, Any], alice: str) -> list[Attack]:
    node = victim["slaveId"]
    fake = {
        "statuses": [
            {"task_id": victim["id"], "state": "TASK_KILLED", "seq": 1_000_000, "message": "pwned"}
        ]
    }
    register = {
        "node": {"id": "node-evil", "hostname": "127.0.0.9", "capacity": [1000, 1024, 0, 0]},
        "address": "http://169.254.169.254:80",
        "boot_id": "evil",
    }
    out = []
    with cluster.anonymous() as nobody, cluster.anonymous(alice) as user:
        codes = [
            c.post(f"/v1/agent/nodes/{node}/status", json=fake).status_code for c in (nobody, user)
        ]
        time.sleep(1.0)
        alive = _running(cluster, "/bench/victim") is not None
        out.append(
            Attack(
                "fake status update",
                any(c < 400 for c in codes) or not alive,
                f"anonymous {codes[0]}, a user's token {codes[1]}; the task "
                f"{'still runs' if alive else 'was killed'}",
            )
        )
        answers = [c.get(f"/v1/agent/nodes/{node}/desired") for c in (nobody, user)]
        leaked = any(SECRET in a.text for a in answers)
        out.append(
            Attack(
                "desired-state read",
                leaked or any(a.status_code < 400 for a in answers),
                f"anonymous {answers[0].status_code}, a user's token {answers[1].status_code}"
                + ("; the planted secret was in the answer" if leaked else ""),
            )
        )
        codes = [c.post("/v1/agent/register", json=register).status_code for c in (nobody, user)]
        nodes = cluster.http.get("/v1/nodes").json()["nodes"]
        made = any(n["id"] == "node-evil" for n in nodes)
        out.append(
            Attack(
                "fake register / SSRF via address",
                made or any(c < 400 for c in codes),
                f"anonymous {codes[0]}, a user's token {codes[1]}; node-evil "
                f"{'registered' if made else 'unknown'}",
            )
        )
        app = {"id": "/bench/evil", "cmd": "sleep 600", "cpus": 0.01, "mem": 8}
        code = nobody.post("/v2/apps", json=app).status_code
        out.append(Attack("API write without a token", code < 400, f"POST /v2/apps: {code}"))
        codes = [
            user.post("/v2/apps", json={**app, "id": "/prod/evil"}).status_code,
            user.delete("/v2/apps/bench/victim").status_code,
        ]
        out.append(
            Attack(
                "API write with a token lacking the permission",
                any(c < 400 for c in codes),
                f"read-only user: create {codes[0]}, delete {codes[1]}",
            )
        )
        bad = [
            nobody.get("/v2/apps", headers={"Authorization": h}).status_code
            for h in (
                "token=eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.",  # alg: none
                "token=" + "x" * 200,
                "Basic YWRtaW46YWRtaW4=",
            )
        ]
        out.append(
            Attack("API read with a forged token", any(c < 400 for c in bad), f"answers {bad}")
        )
    return out


_TASK_ATTACKS = (
    'r() { echo "$1=$2" >> results; }; '
    "cat /etc/shadow >/dev/null 2>&1 && r shadow yes || r shadow no; "
    "ls .. >/dev/null 2>&1 && r listing yes || r listing no; "
    # a sibling's sandbox through its processes' cwd: the magic link skips the path's
    # permissions, so only the kernel's ptrace check (another user) stops it
    "found=no; for p in /proc/[0-9]*; do [ $p = /proc/$$ ] && continue; "
    "grep -qs victim-output $p/cwd/stdout && found=yes; done; r sibling $found; "
    "cat ../../../state.db >/dev/null 2>&1 && r store yes || r store no; "
    "esc=no; for f in /sys/fs/cgroup/cgroup.procs /sys/fs/cgroup/memory/cgroup.procs "
    "/sys/fs/cgroup/pids/cgroup.procs; do [ -e $f ] && (echo $$ > $f) 2>/dev/null && esc=yes; "
    "done; r cgroup $esc; "
    "grep NoNewPrivs /proc/self/status | tr -d ' \\t' >> results; "
    "rm -f stdout; ln -s /etc/shadow stdout; r done yes; sleep 600"
)
_BOMB = "(i=0; while [ $i -lt 300 ]; do sleep 600 & i=$((i+1)); done); echo bomb-stopped; sleep 600"


def _task_attacks(cluster: _Cluster, victim: dict[str, Any]) -> list[Attack]:
    attacker = _deploy(cluster, {"id": "/bench/attacker", "cmd": _TASK_ATTACKS})
    box = _wait(lambda: _sandbox(cluster, attacker["id"]), 30, "the attacker's sandbox")
    text = _wait(lambda: "done=yes" in (t := _read(box / "results")) and t, 60, "the task attacks")
    seen = dict(line.split("=", 1) for line in text.split() if "=" in line)
    seen.update(line.split(":", 1) for line in text.split() if line.startswith("NoNewPrivs:"))
    who = psutil.Process(_leader(box)).username() if _leader(box) else "?"
    out = [
        Attack("task reads /etc/shadow", seen.get("shadow") == "yes", f"as {who}"),
        Attack(
            "task lists or reads a sibling's sandbox",
            seen.get("listing") == "yes" or seen.get("sibling") == "yes",
            f"listing {seen.get('listing')}, a sibling's stdout through /proc/<pid>/cwd "
            f"{seen.get('sibling')} (NoNewPrivs {seen.get('NoNewPrivs', '?')})",
        ),
        Attack("task reads the master's store", seen.get("store") == "yes", "../../../state.db"),
        Attack(
            "task escapes its cgroups",
            seen.get("cgroup") == "yes",
            "echo $$ > the root cgroup.procs of each hierarchy",
        ),
    ]
    r = cluster.http.get(f"/v1/tasks/{attacker['id']}/logs", params={"offset": "0"})
    leaked = "root:" in r.text
    out.append(
        Attack(
            "symlinked log serves /etc/shadow",
            leaked,
            f"GET /v1/tasks/<id>/logs after stdout became a link: {r.status_code}",
        )
    )
    bomb = _deploy(
        cluster,
        {
            "id": "/bench/bomb",
            "cmd": _BOMB,
            "mem": 512,
            "labels": {"PALLET_PIDS_MAX": str(PIDS_MAX)},
        },
    )
    bomb_box = _wait(lambda: _sandbox(cluster, bomb["id"]), 30, "the bomb's sandbox")
    _wait(lambda: "bomb-stopped" in _read(bomb_box / "stdout"), 90, "the fork bomb to stop")
    count = len(_in(bomb_box))
    out.append(
        Attack(
            "fork bomb beyond the pids limit",
            count > PIDS_MAX,
            f"tried 300 processes with PALLET_PIDS_MAX={PIDS_MAX}: {count} ran",
        )
    )
    return out


def _secret_attacks(
    cluster: _Cluster, victim: dict[str, Any], alice: str, eve: str
) -> list[Attack]:
    """The victim gets ``bench/db`` (``SECRET_VALUE``) as a variable and a file: nobody
    else reads it, by the API, by an app that names it, by another node's agent, or at
    rest."""
    node, task = victim["slaveId"], victim["id"]
    out = []
    with cluster.anonymous() as nobody, cluster.anonymous(alice) as user:
        answers = [c.get(f"/secrets/v1/secret/default/{SECRET_PATH}") for c in (nobody, user)]
        listing = user.get("/secrets/v1/secret/default/", params={"list": "true"})
        leaked = any(SECRET_VALUE in a.text for a in (*answers, listing))
        out.append(
            Attack(
                "secret read without the permission",
                leaked or any(a.status_code < 400 for a in answers),
                f"anonymous {answers[0].status_code}, a user's token {answers[1].status_code}; "
                f"the user's listing {listing.text[:60]}",
            )
        )
        url = f"/v1/agent/nodes/{node}/tasks/{task}/secrets"
        codes = [c.get(url).status_code for c in (nobody, user)]
        out.append(
            Attack(
                "task secrets fetched by a user",
                any(c < 400 for c in codes),
                f"the agent route: anonymous {codes[0]}, a user's token {codes[1]}",
            )
        )
    thief = {
        "id": "/bench/thief",
        "cmd": "echo $STOLEN; sleep 600",
        "cpus": 0.01,
        "mem": 8,
        "env": {"STOLEN": {"secret": "s"}},
        "secrets": {"s": {"source": SECRET_PATH}},
    }
    with cluster.anonymous(eve) as deployer:  # full on /bench, nothing on secrets
        code = deployer.post("/v2/apps", json=thief).status_code
    out.append(
        Attack(
            "secret taken by an app that names it",
            code < 400,
            f"a user who may deploy under /bench but not read the secret: {code}",
        )
    )
    # another node's agent, with its own credential (root reads it from its work dir)
    others = [
        d
        for d in cluster.state.glob("agent-*")
        if (d / "node-id").is_file() and (d / "node-id").read_text().strip() != node
    ]
    detail, stolen = "no other agent", False
    if others and (others[0] / "credential").is_file():
        other = (others[0] / "node-id").read_text().strip()
        credential = (others[0] / "credential").read_text().strip()
        with cluster.anonymous() as anon:
            r = anon.post("/v1/agent/join", json={"node_id": other, "credential": credential})
        token = r.json().get("token") if r.status_code == 200 else None
        if token:
            with cluster.anonymous(token) as agent:
                theirs = agent.get(f"/v1/agent/nodes/{node}/tasks/{task}/secrets")
                own = agent.get(f"/v1/agent/nodes/{other}/tasks/{task}/secrets")
            stolen = SECRET_VALUE in theirs.text + own.text
            detail = (
                f"node {other}'s agent on the victim's node path {theirs.status_code}, "
                f"on its own {own.status_code}"
            )
        else:
            detail = f"the other agent could not join: {r.status_code}"
    out.append(Attack("secrets of another node's task", stolen, detail))
    shown = [
        cluster.http.get("/v2/apps", params={"embed": "apps.tasks"}).text,
        cluster.http.get("/v2/tasks").text,
        cluster.http.get(f"/v1/agent/nodes/{node}/desired").text,
    ]
    box = _sandbox(cluster, task)
    at_rest = [
        str(path.relative_to(cluster.state))
        for path in cluster.state.rglob("*")
        if path.is_file()
        and (box is None or box not in path.parents)
        and SECRET_VALUE.encode() in _bytes(path)
    ]
    out.append(
        Attack(
            "secret in clear in the API or at rest",
            any(SECRET_VALUE in t for t in shown) or bool(at_rest),
            "not in /v2/apps, /v2/tasks, the desired set, the store, logs or checkpoints"
            if not at_rest
            else f"found in {at_rest[:3]}",
        )
    )
    return out


def _bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _in(box: Path) -> list[psutil.Process]:
    mark = str(box.resolve())
    found = []
    for p in psutil.process_iter(["cwd"]):
        with contextlib.suppress(psutil.Error):
            if p.info["cwd"] == mark:
                found.append(p)
    return found


def _leader(box: Path) -> int | None:
    for p in _in(box):
        with contextlib.suppress(OSError):
            if os.getsid(p.pid) == p.pid:
                return p.pid
    return None


def _expired(cluster: _Cluster, eve: str, logged_in_at: float) -> Attack:
    wait = logged_in_at + TOKEN_TTL + 2 - time.monotonic()
    if wait > 0:
        time.sleep(wait)
    app = {"id": "/bench/late", "cmd": "sleep 600", "cpus": 0.01, "mem": 8}
    with cluster.anonymous(eve) as client:
        code = client.post("/v2/apps", json=app).status_code
    return Attack(
        "API write with an expired token",
        code < 400,
        f"a token of {TOKEN_TTL:g} s, {TOKEN_TTL + 2:g} s on, granted full on /bench: {code}",
    )


# ------------------------------------------------------------------ the fuzzing


def _fuzz(cluster: _Cluster, cases: int, result: SecurityResult) -> None:
    import requests

    doc = cluster.http.get("/v1/openapi.json").json()
    password = (cluster.state / "secure" / "admin-password").read_text().strip()
    fresh: dict[str, Any] = {"at": 0.0, "headers": {}}

    def superuser() -> dict[str, str]:
        """The superuser's token, renewed well before its 60 s are up (or at once after
        a 401: the fuzzing logs out too)."""
        if time.monotonic() - fresh["at"] > TOKEN_TTL / 2:
            fresh["headers"] = {"Authorization": f"token={cluster.token('admin', password)}"}
            fresh["at"] = time.monotonic()
        return dict(fresh["headers"])

    with requests.Session() as session:
        session.verify = str(cluster.ca)
        result.with_token = fuzz(
            doc, cluster.url, cases - cases // 2, headers=superuser, session=session,
            verify=str(cluster.ca), renew=lambda: fresh.update(at=0.0),
        )  # fmt: skip
        result.without_token = fuzz(
            doc, cluster.url, cases // 2, session=session, verify=str(cluster.ca)
        )

    def send(method: str, path: str, headers: dict[str, str]) -> tuple[int, list[str]]:
        r = cluster.http.request(method, path, headers=headers)
        return r.status_code, list(r.headers)

    result.methods = undeclared_methods(doc, send)


# ------------------------------------------------------------------ auth overhead


def _api_p99(
    home: Path, apps: int, clients: int, per_client: int, rounds: int = 5
) -> tuple[float, float, int]:
    """``pallet bench api``'s p99 on two masters side by side, open and with tokens (no TLS
    in either), measured in alternating rounds so that the machine's load, which moves
    by the minute here, weighs on both alike."""
    from pallet.bench.api import _create_apps, _measure, _settle

    def p99(latencies: list[float]) -> float:
        latencies.sort()
        return latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]

    password = secrets.token_urlsafe(12)
    (home / "auth").mkdir()
    (home / "open").mkdir()
    (home / "auth" / "password").write_text(password + "\n")
    secure = ("--secure-dir", str(home / "auth" / "secure"), "--no-tls",
              "--superuser-password-file", str(home / "auth" / "password"))  # fmt: skip
    with (
        running_master(home / "open", free_port()) as open_url,
        running_master(home / "auth", free_port(), extra=secure) as auth_url,
    ):
        r = httpx.post(f"{auth_url}/v1/auth/login", json={"uid": "admin", "password": password})
        r.raise_for_status()
        token = {"Authorization": f"token={r.json()['token']}"}
        runs: list[tuple[str, dict[str, str] | None, list[float]]] = [
            (open_url, None, []),
            (auth_url, token, []),
        ]
        for url, headers, _ in runs:
            asyncio.run(_create_apps(url, apps, headers))
            _settle(url, headers=headers)
        each = max(1, per_client // rounds)
        for _ in range(rounds):
            for url, headers, latencies in runs:
                latencies += asyncio.run(_measure(url, clients, each, headers))[0]
    return p99(runs[0][2]), p99(runs[1][2]), clients * each * rounds


# ------------------------------------------------------------------ the run


def run_security_bench(
    cases: int = 20_000, apps: int = 200, clients: int = 20, requests: int = 50
) -> SecurityResult:
    result = SecurityResult(as_root=os.geteuid() == 0)
    home = Path(tempfile.mkdtemp(prefix="pallet-bench-security-"))
    home.chmod(0o711)  # as /var/lib/pallet/up: tasks reach their sandboxes by path
    try:
        with _secure_cluster(home) as cluster:
            r = cluster.http.put("/v1/users/alice", json={"password": "alice-password-1"})
            r.raise_for_status()
            grant = {"principal": "alice", "rid": "pallet:service:/bench", "action": "read"}
            cluster.http.post("/v1/acls/grant", json=grant).raise_for_status()
            cluster.http.put(
                "/v1/users/eve", json={"password": "eve-password-1"}
            ).raise_for_status()
            grant = {"principal": "eve", "rid": "pallet:service:/bench", "action": "full"}
            cluster.http.post("/v1/acls/grant", json=grant).raise_for_status()
            alice = cluster.token("alice", "alice-password-1")
            eve, eve_at = cluster.token("eve", "eve-password-1"), time.monotonic()
            secret = {"value": SECRET_VALUE}
            cluster.http.put(f"/v1/secrets/{SECRET_PATH}", json=secret).raise_for_status()
            victim = _deploy(
                cluster,
                {
                    "id": "/bench/victim",
                    "cmd": "echo victim-output; sleep 600",
                    "env": {"DB_PASSWORD": SECRET, "DB_SECRET": {"secret": "db"}},
                    "secrets": {"db": {"source": SECRET_PATH}},
                    "container": {
                        "type": "MESOS",
                        "volumes": [{"containerPath": "db", "secret": "db"}],
                    },
                },
            )
            result.attacks += _protocol_attacks(cluster, victim, alice)
            result.attacks += _secret_attacks(cluster, victim, alice, eve)
            result.attacks += _task_attacks(cluster, victim)
            _fuzz(cluster, cases, result)
            result.attacks.append(_expired(cluster, eve, eve_at))
        result.p99_open_ms, result.p99_auth_ms, result.api_requests = _api_p99(
            home, apps, clients, requests
        )
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return result
