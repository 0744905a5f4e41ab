"""``pallet bench scale``: one real master with many nodes and tasks placed and RUNNING;
spawns the master and the simulated agents' processes.

The master is ``pallet master`` on SQLite, as a user runs it. Its nodes are simulated
agents (``bench.simagents``) speaking the real agent protocol over HTTP, a few thousand
per process: register, long-poll, statuses, heartbeats every 5 s against the master's
default grace of 15 s. Apps (seeded sizes, 10 % ``hostname UNIQUE``, half with a
dynamic host port) are created through ``POST /v2/apps`` until their instances add up to
the task count. Measured:

- seconds from the first POST until every task is in its agent's desired set (placed),
  and until the master has acknowledged every RUNNING status;
- the master's RSS (peak, and at rest afterwards) and CPU seconds while placing;
- ``GET /v2/apps`` latency at that size (gzip, concurrent keep-alive clients) while the
  agents go on heartbeating;
- nodes that went UNREACHABLE (the master logs each transition), the heartbeats'
  latency and the longest gap between two heartbeats of one agent.

The baseline, in the same run, is the same protocol against a fresh master with a tenth
of the nodes, tasks and apps: how each figure grows with size.
"""

from __future__ import annotations

import asyncio
import math
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil

from pallet.bench.api import KeepAliveGet
from pallet.bench.cluster import free_port, running_master
from pallet.bench.simagents import SimAgents, SimConfig

__all__ = ["GOALS", "ScaleResult", "ScaleRun", "run_scale", "run_scale_bench", "scale_apps"]

GOALS: dict[str, float] = {"rss_mib": 1024.0, "place_s": 60.0, "apps_p99_ms": 250.0}
"""Issue 16's goals at 12,500 nodes and 100,000 tasks (and no node UNREACHABLE)."""

_CPUS = (0.1, 0.25, 0.5, 1.0, 2.0)
_MEMS = (128, 256, 512, 1024, 2048)
_SHAPE_P = (0.2, 0.3, 0.3, 0.15, 0.05)

Say = Callable[[str], None]


def scale_apps(apps: int, tasks: int, nodes: int, seed: int = 16) -> list[dict[str, Any]]:
    """``apps`` Marathon apps whose instances add up to ``tasks``: sizes from a seeded
    lognormal (a few large apps, many small ones), a seeded 10 % ``hostname UNIQUE``
    (at most half the nodes), half with one dynamic host port."""
    rng = np.random.default_rng(seed)
    weights = rng.lognormal(0.0, 1.0, apps)
    unique = rng.random(apps) < 0.10
    cap = np.where(unique, max(1, nodes // 2), tasks)
    sizes = np.minimum(np.maximum(1, np.floor(weights / weights.sum() * tasks)), cap).astype(int)
    i = 0
    while sizes.sum() < tasks:  # hand out what rounding and the caps left, in turn
        if sizes[i % apps] < cap[i % apps]:
            sizes[i % apps] += 1
        i += 1
    while sizes.sum() > tasks:
        sizes[int(np.argmax(sizes))] -= 1
    with_port = rng.random(apps) < 0.5
    shapes = rng.choice(len(_CPUS), size=apps, p=_SHAPE_P)
    out = []
    for k in range(apps):
        app: dict[str, Any] = {
            "id": f"/scale/app-{k:05d}",
            "cmd": "sleep 3600",
            "cpus": _CPUS[shapes[k]],
            "mem": _MEMS[shapes[k]],
            "instances": int(sizes[k]),
            "portDefinitions": [{"port": 0}] if with_port[k] else [],
        }
        if unique[k]:
            app["constraints"] = [["hostname", "UNIQUE"]]
        out.append(app)
    return out


@dataclass(slots=True)
class ScaleRun:
    """The figures of one master at one size."""

    nodes: int
    tasks: int
    apps: int
    register_s: float = 0.0
    create_s: float = 0.0
    """From the first POST to the last app created."""
    place_s: float = 0.0
    running_s: float = 0.0
    rss_peak_mib: float = 0.0
    rss_after_mib: float = 0.0
    master_cpu_s: float = 0.0
    """The master's CPU seconds from the first POST to all RUNNING."""
    agents_cpu_s: float = 0.0
    """The simulated agents' processes' CPU seconds over the same span: with the master's,
    what the run asked of the machine's cores (they share them), and which side is the
    bottleneck."""
    register_cpu_s: float = 0.0
    """The master's CPU seconds while the nodes registered."""
    register_agents_cpu_s: float = 0.0
    apps_p50_ms: float = 0.0
    apps_p99_ms: float = 0.0
    apps_max_ms: float = 0.0
    apps_body_bytes: int = 0
    running_seen: int = 0
    """Tasks RUNNING according to ``GET /v2/apps`` at the end."""
    unreachable: int = 0
    heartbeats: int = 0
    heartbeat_p50_ms: float = 0.0
    heartbeat_p99_ms: float = 0.0
    heartbeat_max_gap_s: float = 0.0
    heartbeat_interval_s: float = 0.0
    """The longest interval the master asked of an agent (its bound on heartbeats/s)."""
    poll_wait_s: float = 0.0
    """The longest long-poll wait the master granted an agent (its bound on idle polls)."""
    polls: int = 0
    """Long-polls the master answered over the whole run (a change, or a timeout)."""
    status_posts: int = 0
    """Status batches the master acknowledged over the whole run."""
    errors: dict[str, int] = field(default_factory=dict)
    failed: str = ""
    """Why the run stopped short (empty: it completed)."""

    def to_json(self) -> dict[str, Any]:
        doc = {name: getattr(self, name) for name in self.__dataclass_fields__}
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in doc.items()}


@dataclass(frozen=True, slots=True)
class ScaleResult:
    run: ScaleRun
    tenth: ScaleRun | None

    def to_json(self) -> dict[str, Any]:
        run = self.run
        met = {
            "rss_mib": run.rss_peak_mib <= GOALS["rss_mib"],
            "place_s": run.place_s <= GOALS["place_s"],
            "apps_p99_ms": run.apps_p99_ms <= GOALS["apps_p99_ms"],
            "unreachable": run.unreachable == 0,
        }
        return {
            **run.to_json(),
            "goals": {**GOALS, "unreachable": 0},
            "goal_met": met if not run.failed else {k: False for k in met},
            "baseline_tenth": None if self.tenth is None else self.tenth.to_json(),
        }


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def _total(reports: list[dict[str, Any]], name: str) -> int:
    return sum(int(r[name]) for r in reports)


async def _create(url: str, apps: list[dict[str, Any]], clients: int = 16) -> None:
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120.0, limits=limits) as client:
        sem = asyncio.Semaphore(clients)

        async def one(app: dict[str, Any]) -> None:
            async with sem:
                r = await client.post("/v2/apps", json=app)
            if r.status_code != 201:
                raise RuntimeError(f"POST /v2/apps {app['id']}: HTTP {r.status_code}: {r.text}")

        await asyncio.gather(*(one(a) for a in apps))


async def _get_apps(url: str, clients: int, per_client: int) -> tuple[list[float], int, int]:
    """Latencies (ms) of ``GET /v2/apps`` from ``clients`` keep-alive connections, the
    gzipped body's size, and how many tasks the list says run."""
    async with httpx.AsyncClient(base_url=url, timeout=120.0) as client:
        doc = (await client.get("/v2/apps")).raise_for_status().json()
    running = sum(int(a["tasksRunning"]) for a in doc["apps"])
    conns = [KeepAliveGet(url) for _ in range(clients)]
    latencies: list[float] = []
    size = 0

    async def worker(conn: KeepAliveGet) -> None:
        nonlocal size
        for _ in range(per_client):
            start = time.perf_counter()
            size = len(await conn.get("/v2/apps"))
            latencies.append((time.perf_counter() - start) * 1000)

    try:
        await asyncio.gather(*(worker(c) for c in conns))
    finally:
        for c in conns:
            c.close()
    return latencies, size, running


def _unreachable_in_log(path: Path) -> int:
    text = path.read_text(errors="replace") if path.exists() else ""
    return len(re.findall(r"node \S+ is unreachable", text))


class _Watch:
    """Samples the master's RSS and CPU while the run goes on."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0

    def sample(self) -> None:
        self.peak = max(self.peak, self.process.memory_info().rss)

    def cpu_s(self) -> float:
        t = self.process.cpu_times()
        return float(t.user + t.system)


def _brief(reports: list[dict[str, Any]]) -> str:
    errors: dict[str, int] = {}
    for r in reports:
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
    return (
        f"{_total(reports, 'registered')} registered, {_total(reports, 'desired')} placed, "
        f"{_total(reports, 'running')} running, {_total(reports, 'heartbeats')} heartbeats, "
        f"errors {errors or 'none'}"
    )


def _wait(
    agents: list[SimAgents],
    done: Callable[[list[dict[str, Any]]], bool],
    watch: _Watch,
    timeout: float,
    what: str,
    say: Say,
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    last_say = time.monotonic()
    while True:
        reports = [a.counts() for a in agents]
        watch.sample()
        if done(reports):
            return reports
        now = time.monotonic()
        if now > deadline:
            raise TimeoutError(f"{what}: not done after {timeout:.0f} s: {_brief(reports)}")
        if now - last_say > 10:
            say(f"  {what}: {_brief(reports)}; master RSS {watch.peak / 2**20:.0f} MiB")
            last_say = now
        time.sleep(0.2)


def run_scale(
    nodes: int,
    tasks: int,
    apps: int,
    *,
    processes: int = 2,
    steady_s: float = 10.0,
    clients: int = 20,
    per_client: int = 10,
    timeout: float = 900.0,
    say: Say = lambda _: None,
) -> ScaleRun:
    """One master with ``nodes`` simulated agents and ``apps`` apps of ``tasks`` tasks. A
    stage that does not finish within ``timeout`` ends the run with ``failed`` set and
    the figures measured so far."""
    specs = scale_apps(apps, tasks, nodes)
    run = ScaleRun(nodes, tasks, apps)
    processes = max(1, min(processes, nodes))
    info: dict[str, int] = {}
    final: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="pallet-bench-scale-") as tmp:
        state = Path(tmp)
        with running_master(state, free_port(), info) as url:
            watch = _Watch(info["pid"])
            per = math.ceil(nodes / processes)
            agents = [
                SimAgents(SimConfig(url, first, min(per, nodes - first)))
                for first in range(0, nodes, per)
            ]
            try:
                start = time.monotonic()
                for a in agents:
                    a.start()
                sims = [_Watch(a.pid) for a in agents if a.pid is not None]
                reg0 = watch.cpu_s()
                say(f"{nodes} nodes, {tasks} tasks, {apps} apps: registering")
                _wait(
                    agents,
                    lambda r: _total(r, "registered") >= nodes,
                    watch,
                    timeout,
                    "registering",
                    say,
                )
                run.register_s = time.monotonic() - start
                run.register_cpu_s = watch.cpu_s() - reg0
                run.register_agents_cpu_s = sum(w.cpu_s() for w in sims)
                say(f"  registered in {run.register_s:.1f} s; creating the apps")
                cpu0 = watch.cpu_s()
                agents0 = sum(w.cpu_s() for w in sims)
                t0 = time.time()
                asyncio.run(_create(url, specs))
                run.create_s = time.time() - t0
                reports = _wait(
                    agents, lambda r: _total(r, "running") >= tasks, watch, timeout, "placing", say
                )
                run.place_s = max(r["last_desired_at"] for r in reports) - t0
                run.running_s = max(r["last_running_at"] for r in reports) - t0
                run.master_cpu_s = watch.cpu_s() - cpu0
                run.agents_cpu_s = sum(w.cpu_s() for w in sims) - agents0
                say(f"  all RUNNING after {run.running_s:.1f} s; GET /v2/apps")
                latencies, size, running = asyncio.run(_get_apps(url, clients, per_client))
                run.apps_p50_ms = statistics.median(latencies)
                run.apps_p99_ms = _percentile(latencies, 0.99)
                run.apps_max_ms = max(latencies)
                run.apps_body_bytes = size
                run.running_seen = running
                end = time.monotonic() + steady_s
                while time.monotonic() < end:  # at rest, heartbeats going on
                    watch.sample()
                    time.sleep(0.25)
                run.rss_after_mib = watch.process.memory_info().rss / 2**20
            except (TimeoutError, RuntimeError, httpx.HTTPError) as e:
                run.failed = str(e)
                say(f"  stopped short: {e}")
            finally:
                watch.sample()
                run.rss_peak_mib = watch.peak / 2**20
                final = [a.stop() for a in agents]
        run.unreachable = _unreachable_in_log(state / "master.log")
    beats = [ms for r in final for ms in r.get("heartbeat_ms", ())]
    run.heartbeats = len(beats)
    run.heartbeat_p50_ms = _percentile(beats, 0.5)
    run.heartbeat_p99_ms = _percentile(beats, 0.99)
    run.heartbeat_max_gap_s = max((r["max_gap_s"] for r in final), default=0.0)
    run.heartbeat_interval_s = max((r.get("granted_s", 0.0) for r in final), default=0.0)
    run.poll_wait_s = max((r.get("poll_wait_s", 0.0) for r in final), default=0.0)
    run.polls = sum(int(r.get("polls", 0)) for r in final)
    run.status_posts = sum(int(r.get("status_posts", 0)) for r in final)
    for r in final:
        for k, v in r["errors"].items():
            run.errors[k] = run.errors.get(k, 0) + v
    return run


def run_scale_bench(
    nodes: int = 12_500,
    tasks: int = 100_000,
    apps: int = 1_000,
    *,
    processes: int = 2,
    baseline: bool = True,
    steady_s: float = 10.0,
    timeout: float = 900.0,
    say: Say = lambda _: None,
) -> ScaleResult:
    """A tenth of the size first (the baseline, with ``baseline``), then the full size."""
    tenth = None
    if baseline:
        small = max(1, nodes // 10), max(1, tasks // 10), max(1, apps // 10)
        tenth = run_scale(*small, processes=processes, steady_s=steady_s, timeout=timeout, say=say)
    run = run_scale(
        nodes, tasks, apps, processes=processes, steady_s=steady_s, timeout=timeout, say=say
    )
    return ScaleResult(run, tenth)
