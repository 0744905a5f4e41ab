"""``pallet bench discovery``: service discovery on a real ``pallet up --public-agents 1``;
spawns processes and measures.

1. An HTTP app of 5 instances behind the edge LB (a vhost) and a VIP, under a steady
   load through each (every request a new connection), through rolling upgrades and a
   scale 5 -> 10 -> 2. The baseline, in the same run and at the same rate: a client that
   keeps the address of the task it first found, as without discovery.
2. DNS: how long after the master records a task's TASK_RUNNING (the event's timestamp)
   its SRV record answers (polled over TCP every 10 ms), over many tasks started at once; then queries per second from a loopback load generator against
   Pallet's DNS (unbound fed at run time), a stock unbound loaded once with the same
   records, and Pallet's Python server with the same records.

The app's instances finish their requests on SIGTERM: they keep serving for 3 s (the
LB and VIPs drop a task as soon as its kill is reported), then close, as a service
behind a load balancer should.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from dnslib import QTYPE, DNSRecord

from pallet.bench.cluster import free_port, running_up
from pallet.bench.dnsload import LoadResult, query_bytes, run_load
from pallet.bench.httpload import HttpLoad, LoadCount
from pallet.discovery import build_records, services_from_apps, vip_targets
from pallet.discovery.names import task_label
from pallet.dns.answers import Answers
from pallet.dns.server import PythonDns
from pallet.dns.unbound import Unbound

__all__ = ["DiscoveryResult", "run_discovery_bench"]

APP = "/bench/web"
DNS_APP = "/bench/names"
VHOST = "web.bench.example"
VIP_PORT = 8080

# Serves its task id; on SIGTERM keeps serving 3 s (long enough for every LB and VIP proxy
# to hear of the kill on a loaded machine), then stops accepting and finishes. Its listen
# backlog is nginx's (511), not socketserver's 5: with 5, a burst on a loaded host drops
# SYNs, and three drops in a row (retransmits after 1, 3 and 7 s) outlast any client.
SERVER = r"""
import http.server, os, signal, threading, time
http.server.ThreadingHTTPServer.request_queue_size = 511
body = os.environ["MESOS_TASK_ID"].encode()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
srv = http.server.ThreadingHTTPServer((os.environ["HOST"], int(os.environ["PORT0"])), H)
srv.daemon_threads = False
def drain():
    time.sleep(3.0)
    srv.shutdown()
signal.signal(signal.SIGTERM, lambda *a: threading.Thread(target=drain).start())
srv.serve_forever(poll_interval=0.05)
srv.server_close()
"""


@dataclass(frozen=True, slots=True)
class DnsFigures:
    ready_p50_s: float
    ready_p99_s: float
    ready_max_s: float
    tasks: int
    served: LoadResult
    unbound: LoadResult
    python: LoadResult


@dataclass(frozen=True, slots=True)
class DiscoveryResult:
    lb: LoadCount
    vip: LoadCount
    direct: LoadCount
    upgrades: int
    dns: DnsFigures

    def to_json(self) -> dict[str, Any]:
        return {
            "lb": {"requests": self.lb.requests, "failed": self.lb.failed},
            "vip": {"requests": self.vip.requests, "failed": self.vip.failed},
            "dns": {
                "ready_p99_s": round(self.dns.ready_p99_s, 3),
                "qps": round(self.dns.served.qps),
                "p99_ms": round(self.dns.served.percentile(99), 2),
                "unbound_qps": round(self.dns.unbound.qps),
            },
        }


def _wait(what: str, predicate: Any, timeout: float = 120.0, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.HTTPError, OSError, KeyError, ValueError):
            value = predicate()
            if value:
                return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"benchmark: {what} did not happen within {timeout:.0f} s")
        time.sleep(every)


def _converged(client: httpx.Client, app_id: str, count: int) -> bool:
    if any(d["affectedApps"] == [app_id] for d in client.get("/v2/deployments").json()):
        return False
    app = client.get(f"/v2/apps{app_id}").json()["app"]
    return bool(app["tasksHealthy"] == count == app["tasksRunning"] and len(app["tasks"]) == count)


def _get(host: str, port: int, vhost: str = "") -> str:
    import http.client

    conn = http.client.HTTPConnection(host, port, timeout=3)
    try:
        conn.request("GET", "/", headers={"Host": vhost} if vhost else {})
        r = conn.getresponse()
        return r.read().decode() if r.status == 200 else ""
    finally:
        conn.close()


def _lookup(port: int, name: str, qtype: str = "A", tcp: bool = False) -> DNSRecord:
    raw = DNSRecord.question(name, qtype).send("127.0.0.1", port, tcp=tcp, timeout=3)
    return DNSRecord.parse(raw)


phases: list[tuple[str, float]] = []
"""When each step of the last run began (time.time()), to read failures against."""


def _upgrades_under_load(
    client: httpx.Client, lb: tuple[str, int], dns_port: int, rate: float, upgrades: int
) -> tuple[LoadCount, LoadCount, LoadCount]:
    service_port = free_port()
    app = {
        "id": APP,
        "cmd": f"exec python3 -c '{SERVER}'",
        # A CPU limit is a hard CFS quota: at 0.05 cpus five Python servers could serve
        # about 110 requests/s between them, and the generator measured them, not the LB.
        "cpus": 0.2,
        "mem": 48,
        "instances": 5,
        "taskKillGracePeriodSeconds": 8,
        "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": VHOST},
        "portDefinitions": [{"port": service_port, "labels": {"VIP_0": f"/benchweb:{VIP_PORT}"}}],
        "healthChecks": [
            {"protocol": "HTTP", "path": "/", "intervalSeconds": 1, "gracePeriodSeconds": 15}
        ],
        "env": {"BENCH_VERSION": "0"},
    }
    client.post("/v2/apps", json=app).raise_for_status()
    _wait("5 healthy instances", lambda: _converged(client, APP, 5), 180)
    _wait("the edge LB serving the app", lambda: _get(*lb, VHOST), 60)
    vip_name = "benchweb.marathon.l4lb.thisdcos.directory"
    vip = _wait(
        "the VIP's name", lambda: [str(r.rdata) for r in _lookup(dns_port, vip_name).rr], 60
    )[0]
    _wait("the VIP serving the app", lambda: _get(vip, VIP_PORT), 60)
    first = client.get(f"/v2/apps{APP}").json()["app"]["tasks"][0]
    loads = [
        HttpLoad(lb[0], lb[1], rate, VHOST),
        HttpLoad(vip, VIP_PORT, rate),
        HttpLoad(first["host"], first["ports"][0], rate),
    ]
    for load in loads:
        load.start()
    phases.append(("load", time.time()))
    try:
        time.sleep(2.0)
        for version in range(1, upgrades + 1):
            change = {**app, "env": {"BENCH_VERSION": str(version)}}
            phases.append((f"upgrade {version}", time.time()))
            client.put(f"/v2/apps{APP}", json=change, params={"force": "true"}).raise_for_status()
            _wait(f"rolling upgrade {version}", lambda: _converged(client, APP, 5), 180)
        for instances in (10, 2):
            phases.append((f"scale {instances}", time.time()))
            client.put(
                f"/v2/apps{APP}", json={"instances": instances}, params={"force": "true"}
            ).raise_for_status()
            _wait(f"scale to {instances}", lambda n=instances: _converged(client, APP, n), 180)
        phases.append(("settled", time.time()))
        time.sleep(4.0)  # the last killed tasks finish draining under load
    finally:
        counts = [load.stop() for load in loads]
    client.delete(f"/v2/apps{APP}", params={"force": "true"})
    return counts[0], counts[1], counts[2]


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")


def _dns_ready(client: httpx.Client, url: str, dns_port: int, tasks: int) -> list[float]:
    """Seconds from each task's TASK_RUNNING event to its SRV record answering."""
    running: dict[str, tuple[float, str, int]] = {}  # target name -> (event time, task, port)
    seen: dict[tuple[str, int], float] = {}
    stop = threading.Event()
    attached = threading.Event()

    def events() -> None:
        params = {"event_type": ["event_stream_attached", "status_update_event"]}
        timeout = httpx.Timeout(10.0, read=None)
        with (
            httpx.Client(base_url=url, timeout=timeout) as stream,
            stream.stream("GET", "/v2/events", params=params) as r,
        ):
            kind = ""
            for line in r.iter_lines():
                if stop.is_set():
                    return
                if line.startswith("event:"):
                    kind = line[6:].strip()
                    attached.set()
                elif line.startswith("data:") and kind == "status_update_event":
                    doc = json.loads(line[5:])
                    if doc["appId"] == DNS_APP and doc["taskStatus"] == "TASK_RUNNING":
                        target = task_label(DNS_APP, doc["taskId"], doc["slaveId"])
                        # when the master recorded RUNNING, not when this thread read it
                        at = datetime.fromisoformat(doc["timestamp"]).timestamp()
                        running.setdefault(target, (at, doc["taskId"], doc["ports"][0]))

    def poll() -> None:
        name = "_names-bench._tcp.marathon.mesos"
        while not stop.is_set():
            with contextlib.suppress(OSError, ValueError):
                now = time.time()
                for rr in _lookup(dns_port, name, "SRV", tcp=True).rr:
                    if rr.rtype == QTYPE.SRV:
                        target = str(rr.rdata.target).split(".")[0]
                        seen.setdefault((target, rr.rdata.port), now)
            time.sleep(0.01)

    threads = [
        threading.Thread(target=events, daemon=True),
        threading.Thread(target=poll, daemon=True),
    ]
    for t in threads:
        t.start()
    attached.wait(30)
    app = {"id": DNS_APP, "cmd": "sleep 3600", "cpus": 0.01, "mem": 8, "instances": tasks}
    client.post("/v2/apps", json=app).raise_for_status()
    try:
        _wait(
            f"{tasks} SRV records",
            lambda: (
                len(running) >= tasks and all((t, p) in seen for t, (_, _, p) in running.items())
            ),
            300,
            0.2,
        )
    finally:
        stop.set()
    return [seen[(t, p)] - at for t, (at, _, p) in running.items()]


def _serve_python(table: dict[str, Any], port: int, ready: Any) -> None:
    async def main() -> None:
        server = PythonDns("127.0.0.1", port, [], Answers(table))
        await server.start()
        ready.set()
        await asyncio.Event().wait()

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:  # pragma: no cover
        asyncio.run(main())


def _qps(
    client: httpx.Client, dns_port: int, seconds: float, work: Path
) -> tuple[LoadResult, LoadResult, LoadResult]:
    apps = client.get("/v2/apps", params={"embed": "apps.tasks"}).json()["apps"]
    services = services_from_apps(apps)
    table = build_records(services, vip_targets(services))
    names = [n for n, rs in table.items() if len(rs) == 1 and rs[0].type == "A"][:500]
    queries = [query_bytes(n) for n in names]
    served = run_load("127.0.0.1", dns_port, queries, seconds, 16, 2)

    stock_port = free_port()
    stock = Unbound(work / "stock-unbound", "127.0.0.1", stock_port)

    async def start_stock() -> None:
        await stock.start()
        await stock.apply(table)

    asyncio.run(start_stock())
    try:
        unbound = run_load("127.0.0.1", stock_port, queries, seconds, 16, 2)
    finally:
        asyncio.run(stock.stop())

    python_port = free_port()
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    proc = ctx.Process(target=_serve_python, args=(table, python_port, ready), daemon=True)
    proc.start()
    try:
        ready.wait(30)
        python = run_load("127.0.0.1", python_port, queries, seconds, 16, 2)
    finally:
        proc.terminate()
        proc.join(5)
    return served, unbound, python


def run_discovery_bench(
    upgrades: int = 10, rate: float = 200.0, dns_tasks: int = 200, dns_seconds: float = 5.0
) -> DiscoveryResult:
    resources = "cpus:2;mem:4096;disk:2000"
    with tempfile.TemporaryDirectory(prefix="pallet-bench-discovery-") as tmp:
        state = Path(tmp)
        dns_port, lb_http, lb_stats = free_port(), free_port(), free_port()
        extra = (
            "--public-agents", "1",
            "--dns-port", str(dns_port),
            "--lb-http-port", str(lb_http),
            "--lb-stats-port", str(lb_stats),
            "--heartbeat-interval", "1",
        )  # fmt: skip
        with (
            running_up(state, 3, resources, free_port(), None, extra) as url,
            httpx.Client(base_url=url, timeout=30.0) as client,
        ):
            up = json.loads((state / "up.json").read_text())
            lb_host = up["lb"]["http"].rsplit(":", 1)[0]
            _wait(
                "the DNS server and edge LB reporting",
                lambda: (
                    (d := client.get("/v1/discovery").json())["dns"]
                    and any(lb["kind"] == "edge" and lb["running"] for lb in d["lbs"])
                ),
                60,
            )
            lb, vip, direct = _upgrades_under_load(
                client, (lb_host, lb_http), dns_port, rate, upgrades
            )
            ready = _dns_ready(client, url, dns_port, dns_tasks)
            served, unbound, python = _qps(client, dns_port, dns_seconds, state)
            client.delete(f"/v2/apps{DNS_APP}", params={"force": "true"})
    figures = DnsFigures(
        ready_p50_s=_percentile(ready, 50),
        ready_p99_s=_percentile(ready, 99),
        ready_max_s=max(ready),
        tasks=len(ready),
        served=served,
        unbound=unbound,
        python=python,
    )
    return DiscoveryResult(lb, vip, direct, upgrades, figures)
