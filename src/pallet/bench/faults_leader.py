"""``pallet bench faults`` leader-kill: three masters on a three-member etcd, one agent
that knows all of them running a steady app; a client writes without pause (new apps),
going on to the next master when one cannot be reached and following redirects to the
leader. The leader master is killed with SIGKILL a second in. Measured: seconds from the
kill to the next acknowledged write, acknowledged writes missing afterwards, and the
steady app's task processes restarted; spawns processes.

The baseline is the same client writing for as long with no fault, in the same run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from pallet.bench.cluster import reap
from pallet.bench.lab_cluster import poll

__all__ = ["run_leader_kill"]


def _masters(store: str, ports: list[int], state: Path) -> list[subprocess.Popen[bytes]]:
    procs = []
    for i, port in enumerate(ports):
        with open(state / f"master-{i}.log", "ab") as log:
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable, "-m", "pallet.cli.master", "--port", str(port),
                        "--store", store, "--leader-ttl", "3", "--heartbeat-grace", "15",
                        "--log-level", "warning",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )  # fmt: skip
    return procs


def _leader(urls: list[str]) -> int | None:
    for i, url in enumerate(urls):
        with contextlib.suppress(httpx.HTTPError, ValueError):
            if httpx.get(f"{url}/v2/info", timeout=2).json().get("elected"):
                return i
    return None


class _Writer:
    """Creates apps back to back through whichever master answers."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.current = 0
        self.http = httpx.Client(timeout=10, follow_redirects=True)
        self.acked: list[str] = []
        self.times: list[tuple[float, float, bool]] = []

    def write(self, n: int) -> bool:
        app = {"id": f"/w/a{n}", "cmd": "sleep 1", "cpus": 0.01, "mem": 8, "instances": 0}
        start = time.monotonic()
        ok = False
        for _ in range(len(self.urls)):
            try:
                r = self.http.post(f"{self.urls[self.current]}/v2/apps", json=app)
                ok = r.status_code == 201
                if r.status_code in (201, 409, 422):
                    break
            except httpx.HTTPError:
                pass
            self.current = (self.current + 1) % len(self.urls)  # that master is gone
        if ok:
            self.acked.append(f"/w/a{n}")
        self.times.append((start, time.monotonic(), ok))
        return ok


def _steady_pids(work: Path) -> set[int]:
    root = str(work / "sandboxes") + "/"
    found = set()
    for p in psutil.process_iter(["cwd"]):
        with contextlib.suppress(psutil.Error):
            if (p.info["cwd"] or "").startswith(root) and os.getsid(p.pid) == p.pid:
                found.add(p.pid)
    return found


def run_leader_kill(seconds: float = 12.0, tasks: int = 20) -> dict[str, Any]:
    from pallet.store.etcd.server import free_ports, running_etcd

    shm = os.path.isdir("/dev/shm") and shutil.disk_usage("/dev/shm").free > 2 << 30
    root = "/dev/shm" if shm else None
    with tempfile.TemporaryDirectory(prefix="pallet-faults-", dir=root) as tmp:
        state = Path(tmp)
        with running_etcd(state / "etcd", 3) as etcd:
            ports = free_ports(3)
            urls = [f"http://127.0.0.1:{p}" for p in ports]
            procs = _masters(etcd.url, ports, state)
            work = state / "agent"
            agent = None
            try:
                poll(lambda: _leader(urls) is not None, 90, "a leader")
                with open(state / "agent.log", "ab") as log:
                    agent = subprocess.Popen(
                        [
                            sys.executable, "-m", "pallet.cli.agent", "--master", ",".join(urls),
                            "--work-dir", str(work), "--port", "0", "--hostname", "127.0.0.1",
                            "--heartbeat-interval", "0.5", "--resources",
                            "cpus:4;mem:4096;disk:1000;ports:[31000-31100]",
                        ],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )  # fmt: skip
                http = httpx.Client(timeout=10, follow_redirects=True)
                steady = {
                    "id": "/steady",
                    "cmd": "sleep 600",
                    "cpus": 0.01,
                    "mem": 8,
                    "instances": tasks,
                }
                http.post(f"{urls[0]}/v2/apps", json=steady).raise_for_status()

                def running() -> bool:
                    found = http.get(f"{urls[_leader(urls) or 0]}/v2/apps/steady").json()["app"]
                    return int(found["tasksRunning"]) == tasks

                poll(running, 120, f"{tasks} tasks running")
                pids = _steady_pids(work)
                baseline = _Writer(urls)
                end = time.monotonic() + seconds
                n = 0
                while time.monotonic() < end:
                    baseline.write(n)
                    n += 1
                writer = _Writer(urls)
                lead = _leader(urls)
                assert lead is not None
                killed_at = 0.0
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    if not killed_at and writer.times and time.monotonic() - writer.times[0][0] > 1:
                        procs[lead].kill()
                        killed_at = time.monotonic()
                    writer.write(n)
                    n += 1
                after = [t for t in writer.times if killed_at and t[0] >= killed_at and t[2]]
                writable = (after[0][1] - killed_at) if after else None
                survivor = _leader([u for i, u in enumerate(urls) if i != lead])
                rest = [u for i, u in enumerate(urls) if i != lead]
                listed = http.get(f"{rest[survivor or 0]}/v2/apps").json()["apps"]
                present = {a["id"] for a in listed}
                lost = [a for a in baseline.acked + writer.acked if a not in present]
                poll(lambda: len(_steady_pids(work)) == tasks, 60, "the steady tasks")
                restarts = len(pids - _steady_pids(work))
            finally:
                if agent is not None:
                    agent.send_signal(signal.SIGUSR1)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        agent.wait(60)
                for p in procs:
                    if p.poll() is None:
                        p.terminate()
                for p in procs:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        p.wait(20)
                reap(state)

    def p99(times: list[tuple[float, float, bool]]) -> float:
        lat = sorted(e - s for s, e, ok in times if ok)
        return round(1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))], 1) if lat else 0.0

    return {
        "scenario": "leader-kill",
        "writable_after_s": None if writable is None else round(writable, 2),
        "lost_writes": len(lost),
        "task_restarts": restarts,
        "writes": len(writer.times),
        "errors": sum(1 for *_, ok in writer.times if not ok),
        "p99_ms": p99(writer.times),
        "baseline": {
            "writes": len(baseline.times),
            "errors": sum(1 for *_, ok in baseline.times if not ok),
            "p99_ms": p99(baseline.times),
        },
    }
