"""A Pallet cluster on a network-namespace ``Lab``: the master on host 0, one agent on each
other host, all speaking over the lab's bridge; stops and cleans up after itself; spawns
processes (root only).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil

from pallet.bench.cluster import reap
from pallet.bench.netns import Host, Lab

__all__ = ["LabCluster", "lab_cluster", "poll"]

T = TypeVar("T")

MASTER_PORT = 8080


def poll(predicate: Callable[[], T], timeout: float, what: str) -> T:
    """``predicate()``'s first truthy answer, tried every 0.1 s; HTTP errors count as not yet."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = predicate()
        except (httpx.HTTPError, KeyError, IndexError, ValueError) as e:
            last = e
        if last and not isinstance(last, Exception):
            return last
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}: {last!r}")
        time.sleep(0.1)


@dataclass
class LabCluster:
    lab: Lab
    state_dir: Path
    master: subprocess.Popen[bytes]
    agents: dict[str, subprocess.Popen[bytes]]
    """By the agent host's address (its node's hostname)."""

    @property
    def master_host(self) -> Host:
        return self.lab.hosts[0]

    @property
    def agent_hosts(self) -> list[Host]:
        return self.lab.hosts[1:]

    @property
    def url(self) -> str:
        return f"http://{self.master_host.address}:{MASTER_PORT}"

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A request to the master's API, from inside the master's host."""
        return self.lab.http(self.master_host, method, f"{self.url}{path}", **kwargs)

    def get(self, path: str) -> Any:
        response = self.api("GET", path)
        response.raise_for_status()
        return response.json()

    def nodes(self) -> dict[str, str]:
        """Each node's state by hostname."""
        return {n["hostname"]: n["state"] for n in self.get("/v1/nodes")["nodes"]}

    def tasks(self, app_id: str) -> list[dict[str, Any]]:
        return list(self.get(f"/v2/apps{app_id}")["app"]["tasks"])

    def task_processes(self, host: Host | None = None) -> list[psutil.Process]:
        """Live task processes (session leaders in a sandbox), of one agent host or all."""
        work = str(self.state_dir / (f"agent-{host.index}" if host else "agent-"))
        found = []
        for p in psutil.process_iter(["cwd", "pid"]):
            with contextlib.suppress(psutil.Error):
                cwd = p.info["cwd"] or ""
                if cwd.startswith(work) and "/sandboxes/" in cwd and p.pid == os.getsid(p.pid):
                    found.append(p)
        return found

    def stop(self) -> None:
        """Drain the agents (their tasks killed), stop the master, then remove whatever is
        left: processes, cgroups, namespaces."""
        for process in self.agents.values():
            if process.poll() is None:
                process.send_signal(signal.SIGUSR1)
        for process in self.agents.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(20)
        if self.master.poll() is None:
            self.master.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.master.wait(10)
        self.lab.destroy()
        reap(self.state_dir)


@contextlib.contextmanager
def lab_cluster(
    state_dir: Path,
    agents: int,
    *,
    resources: str = "cpus:2;mem:2048;disk:2000;ports:[31000-31999]",
    heartbeat_interval: float = 0.5,
    heartbeat_grace: float = 3.0,
    store: str | None = None,
) -> Iterator[LabCluster]:
    """A master and ``agents`` agents, each in its own namespace; yields once every agent's
    node is ACTIVE; stops everything however the block ends."""
    state_dir = state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    with Lab(agents + 1) as lab:
        master_host = lab.hosts[0]
        master = lab.spawn(
            master_host,
            [
                sys.executable, "-m", "pallet.cli.master",
                "--host", master_host.address, "--port", str(MASTER_PORT),
                "--store", store or f"sqlite:///{state_dir / 'state.db'}",
                "--heartbeat-grace", str(heartbeat_grace),
                "--insecure",  # a lab network of its own: no TLS nor tokens to set up
            ],
            state_dir / "master.log",
            death=signal.SIGTERM,
        )  # fmt: skip
        started: dict[str, subprocess.Popen[bytes]] = {}
        cluster = LabCluster(lab, state_dir, master, started)
        try:
            poll(lambda: cluster.api("GET", "/ping").status_code == 200, 60, "the master")
            for host in lab.hosts[1:]:
                work = state_dir / f"agent-{host.index}"
                work.mkdir(exist_ok=True)
                started[host.address] = lab.spawn(
                    host,
                    [
                        sys.executable, "-m", "pallet.cli.agent",
                        "--master", cluster.url, "--work-dir", str(work),
                        "--hostname", host.address, "--bind", host.address,
                        "--resources", resources,
                        "--heartbeat-interval", str(heartbeat_interval),
                        "--insecure",
                    ],
                    work / "agent.log",
                    death=signal.SIGUSR1,
                )  # fmt: skip
            addresses = set(started)
            poll(
                lambda: {h for h, s in cluster.nodes().items() if s == "ACTIVE"} >= addresses,
                60,
                "every agent's node ACTIVE",
            )
            yield cluster
        finally:
            cluster.stop()
