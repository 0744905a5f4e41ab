"""A real cluster for end-to-end tests: ``pallet up`` with a master and three agents on
loopback (127.0.0.2-4), short heartbeats, one per test module. Teardown stops it with
SIGINT, as Ctrl-C would, and checks that no process or cgroup is left behind."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from pallet.bench.cluster import cgroup_dirs, free_port, leftovers
from pallet.client.superuser import superuser_client
from polling import wait_for

__all__ = ["GRACE", "HEARTBEAT", "LiveCluster", "free_port", "wait_for"]

HEARTBEAT = 0.5
GRACE = 3.0


@dataclass
class LiveCluster:
    url: str
    state_dir: Path
    process: subprocess.Popen[bytes]
    http: httpx.Client

    def agents(self) -> list[dict[str, Any]]:
        doc: dict[str, Any] = json.loads((self.state_dir / "up.json").read_text())
        return list(doc["agents"])

    def app(self, app_id: str) -> dict[str, Any]:
        r = self.http.get(f"/v2/apps{app_id}")
        r.raise_for_status()
        return dict(r.json()["app"])

    def running(self, app_id: str, count: int) -> list[dict[str, Any]]:
        """The app's tasks once exactly ``count`` run and nothing else is left."""
        app = self.app(app_id)
        tasks = app["tasks"]
        if len(tasks) == count and all(t["state"] == "TASK_RUNNING" for t in tasks):
            return list(tasks)
        return []

    def task_processes(self, task_id: str) -> list[psutil.Process]:
        """The processes running in a task's sandbox."""
        found = []
        for p in psutil.process_iter(["cwd"]):
            with contextlib.suppress(psutil.Error):
                cwd = p.info["cwd"]
                if cwd and Path(cwd).name == task_id and str(self.state_dir) in cwd:
                    found.append(p)
        return found

    def main_process(self, task_id: str) -> psutil.Process:
        """The task's main process: the session leader its agent started."""
        leaders = [p for p in self.task_processes(task_id) if os.getsid(p.pid) == p.pid]
        assert len(leaders) == 1, leaders
        return leaders[0]

    def delete_app(self, app_id: str) -> None:
        self.http.delete(f"/v2/apps{app_id}", params={"force": "true"})
        wait_for(lambda: not self.http.get("/v2/deployments").json(), 30, f"{app_id} deleted")


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports_for_up(masters: int) -> int:
    """A port whose next ``masters - 1`` and the etcd client ports ``up`` puts 100 above
    them are free too (one free port alone made the HA test fail on a taken neighbour)."""
    for _ in range(100):
        port = free_port()
        wanted = [port + i for i in range(masters)]
        if masters > 1:
            wanted += [port + 100 + i for i in range(masters)]
        if max(wanted) < 65536 and all(_bindable(p) for p in wanted[1:]):
            return port
    raise RuntimeError("no run of free ports for pallet up")


@pytest.fixture(scope="module")
def up_args() -> tuple[str, ...]:
    """More ``pallet up`` options for a module's cluster (a module overrides this)."""
    return ()


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, up_args: tuple[str, ...]
) -> Iterator[LiveCluster]:
    state_dir = tmp_path_factory.mktemp("up")
    masters = int(up_args[up_args.index("--masters") + 1]) if "--masters" in up_args else 1
    port = _free_ports_for_up(masters)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pallet.cli.main",
            "up",
            "--agents",
            "3",
            "--port",
            str(port),
            "--state-dir",
            str(state_dir),
            "--agent-port",
            "0",
            "--heartbeat-interval",
            str(HEARTBEAT),
            "--heartbeat-grace",
            str(GRACE),
            *up_args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    secure = "--secure" in up_args
    url = f"{'https' if secure else 'http'}://127.0.0.1:{port}"
    started = time.monotonic()
    assert process.stdout is not None
    first = process.stdout.readline().decode()
    assert "Pallet is up" in first, first + process.stdout.read().decode()
    ready_in = time.monotonic() - started
    node_ids = []
    with superuser_client(url, state_dir, secure, timeout=10.0) as http:
        live = LiveCluster(url, state_dir, process, http)
        live.ready_in = ready_in  # type: ignore[attr-defined]
        node_ids = [n["id"] for n in http.get("/v1/nodes").json()["nodes"]]
        try:
            yield live
        finally:
            for agent in live.agents():  # a test may have left one stopped
                with contextlib.suppress(ProcessLookupError):
                    os.kill(agent["pid"], signal.SIGCONT)
            process.send_signal(signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                raise
    deadline = time.monotonic() + 5
    while leftovers(state_dir) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not leftovers(state_dir), [" ".join(p.cmdline()) for p in leftovers(state_dir)]
    cgroups = cgroup_dirs(set(node_ids))
    assert not cgroups, f"cgroups left behind: {cgroups}"
