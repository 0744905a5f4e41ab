"""``pallet bench faults``: what a failure costs, measured on real processes; spawns a master,
agents, an etcd cluster and (as root) network namespaces.

- **agent-restart**: an agent with N tasks is killed (SIGKILL) and started again on the same
  work directory; ``task_restarts`` (tasks whose process or id changed) and ``reattach_s``
  (start of the new agent until the master has heard it with every task RUNNING on its old
  process). Baseline: launching those N tasks from nothing.
- **etcd-member-kill**: one master on a three-member etcd, a client creating apps back to
  back; the etcd leader (the member the master talks to first) is killed; ``max_error_s``,
  the longest stretch of failing writes, and ``max_stall_s``, the slowest write that
  succeeded. Baseline: the same writes before the kill.
- **partition** (root; ``faults_partition``): an agent cut off from the master by the network.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

from pallet.bench.cluster import free_port, reap
from pallet.bench.lab_cluster import poll

__all__ = ["SCENARIOS", "run_agent_restart", "run_etcd_member_kill", "run_faults"]

SCENARIOS = ("agent-restart", "etcd-member-kill", "partition")


@dataclass
class _Local:
    """A master and one agent on loopback."""

    url: str
    work_dir: Path
    master: subprocess.Popen[bytes]
    agent: subprocess.Popen[bytes] | None = None

    def start_agent(self, resources: str) -> None:
        with open(self.work_dir.parent / "agent.log", "ab") as log:
            self.agent = subprocess.Popen(
                [
                    sys.executable, "-m", "pallet.cli.agent", "--master", self.url,
                    "--work-dir", str(self.work_dir), "--port", "0",
                    "--hostname", "127.0.0.1", "--heartbeat-interval", "0.5",
                    "--resources", resources,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip

    def get(self, path: str) -> Any:
        response = httpx.get(f"{self.url}{path}", timeout=10)
        response.raise_for_status()
        return response.json()

    def pids(self) -> dict[str, int]:
        """Each task's main process (the session leader in its sandbox), by task id."""
        root = str(self.work_dir / "sandboxes") + "/"
        found = {}
        for p in psutil.process_iter(["cwd"]):
            with contextlib.suppress(psutil.Error):
                cwd = p.info["cwd"] or ""
                if cwd.startswith(root) and os.getsid(p.pid) == p.pid:
                    found[cwd[len(root) :]] = p.pid
        return found


@contextlib.contextmanager
def _local_master(state: Path, store: str, grace: float = 60.0) -> Iterator[_Local]:
    port = free_port()
    with open(state / "master.log", "ab") as log:
        master = subprocess.Popen(
            [
                sys.executable, "-m", "pallet.cli.master", "--port", str(port),
                "--store", store, "--heartbeat-grace", str(grace), "--log-level", "warning",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    local = _Local(f"http://127.0.0.1:{port}", state / "agent", master)
    try:
        poll(lambda: httpx.get(f"{local.url}/ping").status_code == 200, 60, "the master")
        yield local
    finally:
        if local.agent is not None and local.agent.poll() is None:
            local.agent.send_signal(signal.SIGUSR1)  # drain: its tasks end with it
            with contextlib.suppress(subprocess.TimeoutExpired):
                local.agent.wait(60)
        master.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            master.wait(20)
        reap(state)


def run_agent_restart(tasks: int = 100) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="pallet-faults-") as tmp:
        state = Path(tmp)
        with _local_master(state, f"sqlite:///{state / 'state.db'}") as local:
            local.start_agent(f"cpus:{max(2, tasks // 50)};mem:{16 * tasks + 1024};disk:1000")
            poll(lambda: local.get("/v1/nodes")["nodes"], 60, "the agent registered")
            app = {"id": "/steady", "cmd": "sleep 100000", "cpus": 0.01, "mem": 8}
            started = time.monotonic()
            response = httpx.post(f"{local.url}/v2/apps", json={**app, "instances": tasks})
            response.raise_for_status()
            poll(lambda: _all_running(local, tasks), 300, f"{tasks} tasks running")
            launch_s = time.monotonic() - started
            before = local.pids()
            (node,) = local.get("/v1/nodes")["nodes"]
            assert local.agent is not None
            local.agent.send_signal(signal.SIGKILL)
            local.agent.wait(30)
            restarted = time.monotonic()
            local.start_agent(f"cpus:{max(2, tasks // 50)};mem:{16 * tasks + 1024};disk:1000")
            poll(
                lambda: (
                    local.get("/v1/nodes")["nodes"][0]["last_heartbeat"] != node["last_heartbeat"]
                    and _all_running(local, tasks)
                ),
                120,
                "the new agent heard with every task running",
            )
            reattach_s = time.monotonic() - restarted
            after = local.pids()
            ids = {t["id"] for t in local.get("/v2/apps/steady")["app"]["tasks"]}
            restarts = sum(1 for tid, pid in before.items() if after.get(tid) != pid)
            restarts += len(ids - set(before))
    return {
        "scenario": "agent-restart",
        "tasks": tasks,
        "task_restarts": restarts,
        "reattach_s": round(reattach_s, 2),
        "baseline_launch_s": round(launch_s, 2),
    }


def _all_running(local: _Local, count: int) -> bool:
    tasks = local.get("/v2/apps/steady")["app"]["tasks"]
    return len(tasks) == count and all(t["state"] == "TASK_RUNNING" for t in tasks)


@dataclass(frozen=True, slots=True)
class _Write:
    start: float
    end: float
    ok: bool


def _write_for(
    url: str, seconds: float, first: int, during: Callable[[], None] | None
) -> list[_Write]:
    """Create apps back to back for ``seconds`` (``during`` runs once, a second in)."""
    writes: list[_Write] = []
    stop = time.monotonic() + seconds
    n = first
    fired = during is None
    with httpx.Client(timeout=30) as http:
        while time.monotonic() < stop:
            if not fired and writes and time.monotonic() - writes[0].start > 1.0:
                assert during is not None
                during()
                fired = True
            app = {"id": f"/w/a{n}", "cmd": "sleep 1", "cpus": 0.01, "mem": 8, "instances": 0}
            start = time.monotonic()
            try:
                ok = http.post(f"{url}/v2/apps", json=app).status_code == 201
            except httpx.HTTPError:
                ok = False
            writes.append(_Write(start, time.monotonic(), ok))
            n += 1
    return writes


def _error_spans(writes: list[_Write]) -> float:
    """The longest time from the start of a failing write to the end of the next one that
    succeeds (0 when none failed)."""
    longest = 0.0
    failing_since: float | None = None
    for w in writes:
        if not w.ok and failing_since is None:
            failing_since = w.start
        elif w.ok and failing_since is not None:
            longest = max(longest, w.end - failing_since)
            failing_since = None
    if failing_since is not None:
        longest = max(longest, writes[-1].end - failing_since)
    return longest


def _summary(writes: list[_Write]) -> dict[str, Any]:
    latencies = sorted(w.end - w.start for w in writes if w.ok)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else 0.0
    return {
        "writes": len(writes),
        "errors": sum(1 for w in writes if not w.ok),
        "max_error_s": round(_error_spans(writes), 3),
        "max_stall_s": round(max(latencies, default=0.0), 3),
        "p50_ms": round(1000 * statistics.median(latencies), 1) if latencies else None,
        "p99_ms": round(1000 * p99, 1),
    }


def run_etcd_member_kill(seconds: float = 10.0) -> dict[str, Any]:
    from pallet.store.etcd.server import running_etcd

    root = (
        "/dev/shm"
        if os.path.isdir("/dev/shm") and shutil.disk_usage("/dev/shm").free > 2 << 30
        else None
    )
    with tempfile.TemporaryDirectory(prefix="pallet-faults-", dir=root) as tmp:
        state = Path(tmp)
        with running_etcd(state / "etcd", 3) as etcd:
            leader = etcd.members[etcd.leader()]
            order = [leader, *(m for m in etcd.members if m is not leader)]
            store = f"etcd://{','.join(m.endpoint for m in order)}?cluster_id={etcd.cluster_id}"
            with _local_master(state, store) as local:
                baseline = _write_for(local.url, seconds, 0, None)
                killed = _write_for(local.url, seconds, len(baseline), lambda: leader.kill())
    during = _summary(killed)
    return {
        "scenario": "etcd-member-kill",
        "killed": "the leader, first in the master's member list",
        **during,
        "baseline": _summary(baseline),
    }


def run_faults(scenarios: tuple[str, ...], tasks: int, partition_s: float) -> list[dict[str, Any]]:
    """Each scenario's result, in the order asked; one that cannot run here says why."""
    from pallet.bench.faults_partition import run_partition

    results = []
    for name in scenarios:
        if name == "agent-restart":
            results.append(run_agent_restart(tasks))
        elif name == "etcd-member-kill":
            from pallet.store.etcd.server import etcd_available

            if why := etcd_available():
                results.append({"scenario": name, "skipped": why})
            else:
                results.append(run_etcd_member_kill())
        elif name == "partition":
            results.append(run_partition(partition_s))
        elif name == "leader-kill":
            from pallet.bench.faults_leader import run_leader_kill
            from pallet.store.etcd.server import etcd_available

            if why := etcd_available():
                results.append({"scenario": name, "skipped": why})
            else:
                results.append(run_leader_kill())
    return results
