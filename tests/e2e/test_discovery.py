"""Discovery on a real ``pallet up --public-agents 1``: DNS names appear and go with the
tasks, SRV ports match /v2/tasks, the edge LB follows the labels (vhost, path, group),
a VIP reaches every healthy task, and public apps land on the public agent only."""

from __future__ import annotations

import contextlib
import http.client
import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psutil
import pytest
from dnslib import QTYPE, DNSRecord

from pallet.bench.cluster import free_port, leftovers
from pallet.dns.unbound import unbound_available
from pallet.lb.haproxy import haproxy_available
from polling import wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (haproxy_available() and unbound_available()),
        reason="needs Debian's haproxy and unbound",
    ),
]

# A task that serves HTTP on its port and answers /id with its task id.
SERVE = (
    'mkdir -p www/api && echo -n "$MESOS_TASK_ID" > www/id && echo -n api > www/api/x && '
    'exec python3 -m http.server "$PORT0" --bind "$HOST" --directory www'
)


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    state = tmp_path_factory.mktemp("up")
    port, dns, lb_http, lb_stats = free_port(), free_port(), free_port(), free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pallet.cli.main",
            "up",
            "--agents",
            "3",
            "--public-agents",
            "1",
            "--port",
            str(port),
            "--state-dir",
            str(state),
            "--agent-port",
            "0",
            "--heartbeat-interval",
            "0.5",
            "--dns-port",
            str(dns),
            "--lb-http-port",
            str(lb_http),
            "--lb-stats-port",
            str(lb_stats),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert process.stdout is not None
    first = process.stdout.readline().decode()
    assert "Pallet is up" in first, first + process.stdout.read().decode()
    up = json.loads((state / "up.json").read_text())
    url = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=url, timeout=10.0) as client:
        try:
            yield {
                "url": url,
                "http": client,
                "dns": dns,
                "up": up,
                "state": state,
                "lb_host": up["lb"]["http"].split(":")[0],
                "lb_http": lb_http,
                "lb_stats": lb_stats,
            }
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                raise
    deadline = time.monotonic() + 5
    while leftovers(state) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not leftovers(state), [" ".join(p.cmdline()) for p in leftovers(state)]


def _dns(port: int, name: str, qtype: str = "A") -> DNSRecord:
    return DNSRecord.parse(DNSRecord.question(name, qtype).send("127.0.0.1", port, timeout=3))


def _addresses(port: int, name: str) -> list[str]:
    return sorted(str(r.rdata) for r in _dns(port, name).rr if r.rtype == QTYPE.A)


def _get(host: str, port: int, path: str = "/id", vhost: str | None = None) -> tuple[int, str]:
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        conn.request("GET", path, headers={"Host": vhost} if vhost else {})
        r = conn.getresponse()
        return r.status, r.read().decode()
    finally:
        conn.close()


def _healthy(client: httpx.Client, app_id: str, count: int) -> list[dict[str, Any]]:
    tasks = client.get(f"/v2/apps{app_id}").json()["app"]["tasks"]
    ok = [
        t
        for t in tasks
        if t["state"] == "TASK_RUNNING"
        and all(h["alive"] for h in t.get("healthCheckResults") or [{"alive": False}])
    ]
    return tasks if len(ok) == count == len(tasks) else []


def test_names_lb_and_vip_follow_the_tasks(edge: dict[str, Any]) -> None:
    client: httpx.Client = edge["http"]
    vip = f"web{uuid.uuid4().hex[:6]}"
    service_port = free_port()
    app = {
        "id": "/prod/web",
        "cmd": SERVE,
        "cpus": 0.05,
        "mem": 64,
        "instances": 2,
        "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "web.example.com"},
        "portDefinitions": [{"port": service_port, "labels": {"VIP_0": f"/{vip}:8080"}}],
        "healthChecks": [
            {"protocol": "HTTP", "path": "/id", "intervalSeconds": 1, "gracePeriodSeconds": 30}
        ],
    }
    api = {
        **app,
        "id": "/prod/api",
        "instances": 1,
        "portDefinitions": [{"port": 0}],
        "labels": {
            "HAPROXY_GROUP": "external",
            "HAPROXY_0_VHOST": "web.example.com",
            "HAPROXY_0_PATH": "/api",
        },
    }
    hidden = {
        **app,
        "id": "/internal",
        "instances": 1,
        "portDefinitions": [{"port": 0}],
        "labels": {"HAPROXY_GROUP": "internal", "HAPROXY_0_VHOST": "internal.example.com"},
    }
    for a in (app, api, hidden):
        r = client.post("/v2/apps", json=a)
        assert r.status_code == 201, r.text
    tasks = wait_for(lambda: _healthy(client, "/prod/web", 2), 60, "two healthy web tasks")
    wait_for(lambda: _healthy(client, "/prod/api", 1), 60, "a healthy api task")
    dns = edge["dns"]

    # DNS: A records are the agents of the tasks; SRV ports are the tasks' ports.
    hosts = sorted({t["host"] for t in tasks})
    assert wait_for(lambda: _addresses(dns, "web-prod.marathon.mesos") == hosts, 10, "A records")
    assert _addresses(dns, "web-prod.pallet") == hosts
    srv = _dns(dns, "_web-prod._tcp.marathon.mesos", "SRV")
    assert sorted(r.rdata.port for r in srv.rr if r.rtype == QTYPE.SRV) == sorted(
        t["ports"][0] for t in tasks
    )
    assert _dns(dns, "nothing.marathon.mesos").header.rcode == 3

    # Edge LB on the public agent: vhost, path, service port; the internal group is not served.
    host, port = edge["lb_host"], edge["lb_http"]
    ids = {t["id"] for t in tasks}
    seen = wait_for(
        lambda: {_get(host, port, vhost="web.example.com")[1] for _ in range(8)} == ids or None,
        20,
        "the LB serving both web tasks",
    )
    assert seen
    assert _get(host, port, "/api/x", vhost="web.example.com") == (200, "api")
    assert _get(host, service_port)[1] in ids
    assert _get(host, port, vhost="internal.example.com")[0] == 503
    assert _get(host, edge["lb_stats"], "/_haproxy_health_check")[0] == 200

    # VIP: its name resolves, and every agent's proxy reaches both tasks.
    (address,) = wait_for(
        lambda: _addresses(dns, f"{vip}.marathon.l4lb.thisdcos.directory"), 10, "VIP name"
    )
    assert wait_for(lambda: {_get(address, 8080)[1] for _ in range(8)} == ids or None, 20, "VIP")

    # One agent's VIP proxy down: the others still answer on the same VIP socket.
    (proxy,) = [
        p
        for p in psutil.process_iter(["cmdline"])
        if "vip-agent-0" in " ".join(p.info["cmdline"] or [])
        and str(edge["state"]) in " ".join(p.info["cmdline"] or [])
    ]
    proxy.kill()  # its HAProxy gets SIGTERM with it (PR_SET_PDEATHSIG)
    proxy.wait(10)
    time.sleep(0.5)
    assert {_get(address, 8080)[1] for _ in range(12)} == ids

    # Status: the DNS server and every load balancer reported; lb_reloaded happened.
    doc = wait_for(
        lambda: (d := client.get("/v1/discovery").json())["dns"] and len(d["lbs"]) == 4 and d,
        20,
        "every proxy reporting (the killed one is started again)",
    )
    kinds = sorted(lb["kind"] for lb in doc["lbs"])
    assert doc["dns"] and kinds == ["edge", "vip", "vip", "vip"]
    show = client.get("/v1/discovery/apps/prod/web").json()
    assert show["lb"][0]["address"] == f"{host}:{service_port}"

    # Scale to one: the killed task leaves DNS, the LB and the VIP.
    r = client.put("/v2/apps/prod/web?force=true", json={"instances": 1})
    assert r.status_code == 200, r.text
    (left,) = wait_for(lambda: _healthy(client, "/prod/web", 1), 30, "one web task")
    assert wait_for(
        lambda: _addresses(dns, "web-prod.marathon.mesos") == [left["host"]], 10, "A follows"
    )
    assert wait_for(
        lambda: (
            {_get(host, port, vhost="web.example.com")[1] for _ in range(6)} == {left["id"]} or None
        ),
        10,
        "LB follows",
    )
    assert wait_for(
        lambda: {_get(address, 8080)[1] for _ in range(6)} == {left["id"]} or None,
        10,
        "VIP follows",
    )

    # Removing the app removes its names.
    for a in ("/prod/web", "/prod/api", "/internal"):
        client.delete(f"/v2/apps{a}", params={"force": "true"})
    assert wait_for(lambda: _dns(dns, "web-prod.marathon.mesos").header.rcode == 3, 20, "NXDOMAIN")


def test_public_apps_land_on_the_public_agent_only(edge: dict[str, Any]) -> None:
    client: httpx.Client = edge["http"]
    public = {a["address"] for a in edge["up"]["agents"] if a["role"] == "slave_public"}
    assert len(public) == 1
    body = {
        "id": "/edge-app",
        "cmd": "sleep 600",
        "cpus": 0.01,
        "mem": 16,
        "instances": 3,
        "acceptedResourceRoles": ["slave_public"],
    }
    assert client.post("/v2/apps", json=body).status_code == 201
    plain = {**body, "id": "/plain", "acceptedResourceRoles": None}
    assert client.post("/v2/apps", json=plain).status_code == 201
    edge_tasks = wait_for(
        lambda: (
            [
                t
                for t in client.get("/v2/apps/edge-app").json()["app"]["tasks"]
                if t["state"] == "TASK_RUNNING"
            ][2:]
            and client.get("/v2/apps/edge-app").json()["app"]["tasks"]
        ),
        30,
        "edge tasks",
    )
    plain_tasks = wait_for(
        lambda: (
            [
                t
                for t in client.get("/v2/apps/plain").json()["app"]["tasks"]
                if t["state"] == "TASK_RUNNING"
            ][2:]
            and client.get("/v2/apps/plain").json()["app"]["tasks"]
        ),
        30,
        "plain tasks",
    )
    assert {t["host"] for t in edge_tasks} == public
    assert not {t["host"] for t in plain_tasks} & public
    for a in ("/edge-app", "/plain"):
        with contextlib.suppress(httpx.HTTPError):
            client.delete(f"/v2/apps{a}", params={"force": "true"})
