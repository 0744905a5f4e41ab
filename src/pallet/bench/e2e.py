"""``pallet bench e2e``: time for ``pallet up --agents 10`` to get 1,000 instances of
``sleep 600`` RUNNING, against spawning 1,000 such processes directly in the same run.

The baseline is what any launcher pays at least: fork and exec of each process. Pallet
adds the API call, scheduling, one store transaction per batch of decisions, ten agents
long-polling, a cgroup per task with its limits, and every status acknowledged.

Besides the time the client sees (it polls ``GET /v2/apps`` every 20 ms), the result has
when every task was placed (staged or running: the master's part up to the agents),
when the master recorded the last task RUNNING (its ``startedAt``), and the CPU seconds
the master and the agents spent meanwhile: on a shared machine those move less with
other people's load than the wall-clock times do. The direct spawn's CPU is measured
too, the spawner's and its children's (a shell and ``sleep`` each, as a task's). Over
``cores`` it bounds the ratio from below when the run is CPU-bound
(``cpu_bound_ratio``); pallet's CPU over the direct spawn's (its tasks' counted as the
direct spawn's children) is the ratio if both sides got the same share of a loaded
machine (``cpu_ratio``; a dozen busy processes get more than one spawner, so the
wall-clock ratio ran below it here).
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

from pallet.bench.cluster import free_port, running_up

__all__ = ["E2eResult", "raw_spawn", "raw_spawn_seconds", "run_e2e_bench"]

_COMMAND = "sleep 600"


@dataclass(frozen=True, slots=True)
class E2eResult:
    tasks: int
    agents: int
    pallet_s: float
    raw_spawn_s: float
    leftover_processes: int
    leftover_cgroups: int
    recorded_s: float = 0.0
    """From the POST to the last ``startedAt`` the master recorded."""
    master_cpu_s: float = 0.0
    agents_cpu_s: float = 0.0
    placed_s: float = 0.0
    """From the POST until the master had placed every task (staged or running)."""
    raw_spawn_cpu_s: float = 0.0
    """CPU seconds the direct spawn's own process spent starting them."""
    raw_children_cpu_s: float = 0.0
    """CPU seconds its children (shell, then ``sleep``) spent until killed: about what
    the tasks themselves cost in the cluster."""
    cores: int = 1

    @property
    def cpu_bound_ratio(self) -> float:
        """The ratio if master, agents and tasks shared every core perfectly and nothing
        else ran: their CPU seconds over the cores, against the direct spawn's time."""
        if not self.raw_spawn_s:
            return float("inf")
        return self._pallet_cpu_s / max(1, self.cores) / self.raw_spawn_s

    @property
    def cpu_ratio(self) -> float:
        """Pallet's CPU seconds (master, agents, and the tasks' as the direct spawn's
        children) over the direct spawn's: the ratio if other load left each side the
        same share of the machine."""
        raw = self.raw_spawn_cpu_s + self.raw_children_cpu_s
        return self._pallet_cpu_s / raw if raw else float("inf")

    @property
    def _pallet_cpu_s(self) -> float:
        return self.master_cpu_s + self.agents_cpu_s + self.raw_children_cpu_s

    @property
    def ratio(self) -> float:
        return self.pallet_s / self.raw_spawn_s if self.raw_spawn_s else float("inf")

    def to_json(self) -> dict[str, Any]:
        return {
            "tasks": self.tasks,
            "agents": self.agents,
            "pallet_s": round(self.pallet_s, 3),
            "raw_spawn_s": round(self.raw_spawn_s, 3),
            "ratio": round(self.ratio, 2),
            "placed_s": round(self.placed_s, 3),
            "recorded_s": round(self.recorded_s, 3),
            "master_cpu_s": round(self.master_cpu_s, 3),
            "agents_cpu_s": round(self.agents_cpu_s, 3),
            "raw_spawn_cpu_s": round(self.raw_spawn_cpu_s, 3),
            "raw_children_cpu_s": round(self.raw_children_cpu_s, 3),
            "cores": self.cores,
            "cpu_bound_ratio": round(self.cpu_bound_ratio, 2),
            "cpu_ratio": round(self.cpu_ratio, 2),
        }


def raw_spawn_seconds(count: int) -> float:
    """Seconds to start ``count`` processes of the benchmark's command (each in its own
    session and shell, as a task is), then kill and reap them."""
    return raw_spawn(count)[0]


def raw_spawn(count: int) -> tuple[float, float, float]:
    """``raw_spawn_seconds``, with the CPU seconds the spawning process spent meanwhile
    and those its children spent until they were killed."""
    procs: list[subprocess.Popen[bytes]] = []
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    try:
        for _ in range(count):
            procs.append(
                subprocess.Popen(
                    ["/bin/sh", "-c", _COMMAND],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        elapsed = time.perf_counter() - start
        spent = _cpu_of(resource.getrusage(resource.RUSAGE_SELF)) - _cpu_of(own)
    finally:
        for p in procs:  # the shell's whole session: `sleep` is its child, not the shell
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
        for p in procs:
            p.wait()
    # Counted once reaped. Debian's sh execs a lone command, so the shell is the `sleep`.
    spent_children = _cpu_of(resource.getrusage(resource.RUSAGE_CHILDREN)) - _cpu_of(children)
    return elapsed, spent, spent_children


def _cpu_of(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def _counts(client: httpx.Client, app_id: str) -> tuple[int, int]:
    """The app's tasks staged (placed, not running yet) and running."""
    r = client.get("/v2/apps", params={"id": app_id})
    apps = r.json()["apps"]
    if not apps:
        return 0, 0
    return int(apps[0]["tasksStaged"]), int(apps[0]["tasksRunning"])


def _cluster_processes() -> tuple[list[psutil.Process], list[psutil.Process]]:
    """The master and the agents ``pallet up`` started for this bench."""
    master, agents = [], []
    for p in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            line = " ".join(p.cmdline())
            if "pallet.cli.master" in line:
                master.append(p)
            elif "pallet.cli.agent" in line:
                agents.append(p)
    return master, agents


def _cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            times = p.cpu_times()
            total += times.user + times.system
    return total


def _last_started(client: httpx.Client, app_id: str) -> float:
    """The latest ``startedAt`` of the app's tasks, as a Unix time."""
    tasks = client.get(f"/v2/apps{app_id}/tasks").json()["tasks"]
    return max(
        datetime.fromisoformat(t["startedAt"].replace("Z", "+00:00")).timestamp() for t in tasks
    )


def run_e2e_bench(tasks: int = 1000, agents: int = 10, timeout: float = 600.0) -> E2eResult:
    raw, raw_cpu, raw_children_cpu = raw_spawn(tasks)
    # Enough CPU and memory on paper for every instance: 10 millicpus and 8 MiB each.
    per_agent_cpus = max(1.0, tasks * 0.01 / agents * 1.2)
    per_agent_mem = max(256, int(tasks * 8 / agents * 1.2))
    resources = f"cpus:{per_agent_cpus:.2f};mem:{per_agent_mem};disk:1000"
    with tempfile.TemporaryDirectory(prefix="pallet-bench-e2e-") as tmp:
        state = Path(tmp)
        left: dict[str, int] = {}
        with (
            running_up(state, agents, resources, free_port(), left) as url,
            httpx.Client(base_url=url, timeout=30.0) as client,
        ):
            app = {
                "id": "/bench",
                "cmd": _COMMAND,
                "cpus": 0.01,
                "mem": 8,
                "instances": tasks,
                "portDefinitions": [],
            }
            master, agent_procs = _cluster_processes()
            cpu_before = _cpu_seconds(master), _cpu_seconds(agent_procs)
            posted = time.time()
            start = time.perf_counter()
            r = client.post("/v2/apps", json=app)
            r.raise_for_status()
            placed = None
            while True:
                staged, running = _counts(client, "/bench")
                if placed is None and staged + running >= tasks:
                    placed = time.perf_counter() - start
                if running >= tasks:
                    break
                if time.perf_counter() - start > timeout:
                    raise RuntimeError(f"not all {tasks} tasks were RUNNING after {timeout:.0f} s")
                time.sleep(0.02)
            elapsed = time.perf_counter() - start
            master_cpu = _cpu_seconds(master) - cpu_before[0]
            agents_cpu = _cpu_seconds(agent_procs) - cpu_before[1]
            recorded = _last_started(client, "/bench") - posted
    return E2eResult(
        tasks,
        agents,
        elapsed,
        raw,
        left["processes"],
        left["cgroups"],
        recorded,
        master_cpu,
        agents_cpu,
        placed if placed is not None else elapsed,
        raw_cpu,
        raw_children_cpu,
        os.cpu_count() or 1,
    )
