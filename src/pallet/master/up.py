"""``pallet up``: a whole cluster on this machine, in one terminal; spawns and stops processes.

    pallet up --agents 3
      master  127.0.0.1:8080, SQLite under the state directory
      agent i 127.0.0.<i+2> (its hostname and bind address), sandboxes under agent-<i>/,
              a 1/N share of this machine's CPUs, memory, disk and ports 31000-32000;
              with --public-agents K the last K have role slave_public

A process that exits on its own is started again with the same arguments, as a service
manager would: an agent adopts the tasks it left running, a master reloads its store.
One that exits more than ``RESTART_LIMIT`` times a minute stops the cluster.

Ctrl-C (SIGINT) or SIGTERM drains the agents first (SIGUSR1: they kill their tasks;
a plain SIGTERM would leave the tasks running for the next agent, as for an upgrade),
then stops the master; whatever does not stop in time is killed with everything it
started, so no process is left behind. Children also go if ``pallet up`` itself is
killed (agents drained, the master stopped).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from pallet.master.up_discovery import DNS_PORT, discovery_members, lb_ports
from pallet.model.roles import PUBLIC_ROLE

__all__ = [
    "Cluster",
    "Member",
    "UpConfig",
    "default_state_dir",
    "local_share",
    "run_up",
    "start_cluster",
    "supervise",
]

_PR_SET_PDEATHSIG = 1
_FIRST_PORT, _LAST_PORT = 31000, 32000


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "pallet" / "up"


@dataclass(frozen=True, slots=True)
class UpConfig:
    agents: int = 3
    port: int = 8080
    host: str = "127.0.0.1"
    resources: str | None = None
    state_dir: Path = field(default_factory=default_state_dir)
    policy: str = "pallet"
    heartbeat_interval: float = 2.0
    heartbeat_grace: float = 15.0
    agent_port: int = 5051
    ready_timeout: float = 30.0
    public_agents: int = 0
    """The last ``public_agents`` agents run with role ``slave_public`` (DC/OS's public agents)."""
    discovery: bool = False
    """Run the DNS server, the agents' VIP proxies and the edge LB (``up_discovery``)."""
    dns_port: int = DNS_PORT
    lb_ports: tuple[int, int, int] = field(default_factory=lb_ports)
    """The edge LB's HTTP, HTTPS and stats ports."""

    def is_public(self, index: int) -> bool:
        return index >= self.agents - self.public_agents


def agent_address(i: int) -> str:
    """Agent ``i``'s own loopback address: 127.0.0.2, 127.0.0.3, ..."""
    n = i + 2
    return f"127.0.{n // 254}.{n % 254}" if n >= 254 else f"127.0.0.{n}"


def local_share(agents: int, index: int, resources: str | None) -> str:
    """Agent ``index``'s ``--resources``: a 1/``agents`` share of this machine (or what
    ``resources`` says) with its own slice of ports 31000-32000."""
    span = (_LAST_PORT - _FIRST_PORT + 1) // agents
    first = _FIRST_PORT + index * span
    ports = f"ports:[{first}-{first + span - 1}]"
    if resources:
        return resources if "ports" in resources else f"{resources};{ports}"
    cpus = (psutil.cpu_count(logical=True) or 1) / agents
    mem = max(1, (psutil.virtual_memory().total // (1 << 20) - 1024) // agents)
    disk = max(0, (psutil.disk_usage("/").free // (1 << 20) - 5 * 1024) // agents)
    return f"cpus:{cpus:.3f};mem:{mem};disk:{disk};{ports}"


def _stop_signal(command: str) -> signal.Signals:
    """How ``up`` stops a child: an agent is drained (its tasks killed), a master stopped."""
    return signal.SIGUSR1 if command == "agent" else signal.SIGTERM


def _spawn(args: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    """``pallet <command> ...`` started as ``python -m pallet.cli.<command>``: the same
    options, without importing every other command (agents start in a fraction)."""
    command, *rest = args
    death = _stop_signal(command)

    def die_with_parent() -> None:  # in the child: the signal comes when `up` dies
        with contextlib.suppress(Exception):
            ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, death)

    with open(log_path, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", f"pallet.cli.{command}", *rest],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches `up` only; it stops the children in order
            preexec_fn=die_with_parent,
        )


@dataclass
class Member:
    """One process of the cluster and how to start it again."""

    name: str
    args: list[str]
    log: Path
    process: subprocess.Popen[bytes]
    restarts: list[float] = field(default_factory=list)
    """When (monotonic seconds) it was started again."""


@dataclass
class Cluster:
    config: UpConfig
    master: subprocess.Popen[bytes]
    agents: list[subprocess.Popen[bytes]]
    url: str
    members: list[Member] = field(default_factory=list)

    def processes(self) -> list[subprocess.Popen[bytes]]:
        return [*self.agents, self.master, *self.extras()]

    def extras(self) -> list[subprocess.Popen[bytes]]:
        """Discovery's processes (DNS, VIP proxies, edge LB)."""
        return [
            m.process for m in self.members if m.name != "master" and not m.name.startswith("agent")
        ]

    def stop(self, agent_timeout: float = 20.0, master_timeout: float = 10.0) -> None:
        """Discovery first (each stops its HAProxy or unbound), then the agents (they kill
        their tasks and report it), then the master."""
        _terminate(self.extras(), master_timeout, signal.SIGTERM)
        _terminate(self.agents, agent_timeout, _stop_signal("agent"))
        _terminate([self.master], master_timeout, _stop_signal("master"))

    def respawn(self, member: Member, now: float) -> None:
        """Start ``member`` again with the same arguments (an agent with the same work
        dir adopts the tasks it left running; a master reloads the state store)."""
        member.process = _spawn(member.args, member.log)
        member.restarts.append(now)
        if member.name == "master":
            self.master = member.process
        elif member.name.startswith("agent"):
            index = int(member.name.split()[-1])
            self.agents[index] = member.process
        write_up_json(self)


def _terminate(procs: list[subprocess.Popen[bytes]], timeout: float, sig: signal.Signals) -> None:
    for p in procs:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(sig)
    deadline = time.monotonic() + timeout
    for p in procs:
        try:
            p.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _kill_tree(p)


def _kill_tree(p: subprocess.Popen[bytes]) -> None:
    """SIGKILL a process and everything it started (its tasks among them)."""
    try:
        children = psutil.Process(p.pid).children(recursive=True)
    except psutil.Error:
        children = []
    for proc in [*children]:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    with contextlib.suppress(ProcessLookupError):
        p.kill()
    p.wait()


def start_cluster(config: UpConfig) -> Cluster:
    """Start the master and the agents; return once every agent has registered."""
    state = config.state_dir.resolve()
    state.mkdir(parents=True, exist_ok=True)
    url = f"http://{config.host}:{config.port}"
    store = f"sqlite:///{state / 'state.db'}"
    master_args = [
        "master",
        "--host",
        config.host,
        "--port",
        str(config.port),
        "--store",
        store,
        "--policy",
        config.policy,
        "--heartbeat-grace",
        str(config.heartbeat_grace),
    ]
    master = _spawn(master_args, state / "master.log")
    members = [Member("master", master_args, state / "master.log", master)]
    agents = []
    for i in range(config.agents):
        address = agent_address(i)
        work = state / f"agent-{i}"
        work.mkdir(exist_ok=True)
        agent_args = [
            "agent",
            "--master",
            url,
            "--work-dir",
            str(work),
            "--hostname",
            address,
            "--bind",
            address,
            "--port",
            str(config.agent_port),
            "--resources",
            local_share(config.agents, i, config.resources),
            "--heartbeat-interval",
            str(config.heartbeat_interval),
            *(["--role", PUBLIC_ROLE] if config.is_public(i) else []),
        ]
        agents.append(_spawn(agent_args, work / "agent.log"))
        members.append(Member(f"agent {i}", agent_args, work / "agent.log", agents[-1]))
    if config.discovery:
        public = [agent_address(i) for i in range(config.agents) if config.is_public(i)]
        for extra in discovery_members(
            url, state, config.agents, public, config.dns_port, config.lb_ports
        ):
            extra.log.parent.mkdir(parents=True, exist_ok=True)
            members.append(Member(extra.name, extra.args, extra.log, _spawn(extra.args, extra.log)))
    cluster = Cluster(config, master, agents, url, members)
    try:
        _wait_ready(cluster)
    except BaseException:
        cluster.stop(agent_timeout=10.0, master_timeout=5.0)
        raise
    write_up_json(cluster)
    return cluster


def write_up_json(cluster: Cluster) -> None:
    """``up.json`` in the state directory: the URL and the processes' pids, for tools."""
    state = cluster.config.state_dir.resolve()
    doc: dict[str, Any] = {
        "master": {"url": cluster.url, "pid": cluster.master.pid},
        "agents": [
            {
                "address": agent_address(i),
                "pid": p.pid,
                "work_dir": str(state / f"agent-{i}"),
                "role": PUBLIC_ROLE if cluster.config.is_public(i) else "*",
            }
            for i, p in enumerate(cluster.agents)
        ],
    }
    if cluster.config.discovery:
        public = [
            agent_address(i) for i in range(cluster.config.agents) if cluster.config.is_public(i)
        ]
        doc["dns"] = f"127.0.0.1:{cluster.config.dns_port}"
        if public:
            http, _, stats = cluster.config.lb_ports
            doc["lb"] = {"http": f"{public[0]}:{http}", "stats": f"{public[0]}:{stats}"}
    tmp = state / "up.json.tmp"
    tmp.write_text(json.dumps(doc, indent=2))
    tmp.replace(state / "up.json")


def _wait_ready(cluster: Cluster) -> None:
    deadline = time.monotonic() + cluster.config.ready_timeout
    with httpx.Client(base_url=cluster.url, timeout=2.0) as client:
        while True:
            for p in cluster.processes():
                if p.poll() is not None:
                    raise RuntimeError(
                        f"a process of the cluster exited with {p.returncode}; "
                        f"see the logs in {cluster.config.state_dir}"
                    )
            try:
                nodes = client.get("/v1/nodes").json()["nodes"]
                addresses = {agent_address(i) for i in range(cluster.config.agents)}
                up = {n["hostname"] for n in nodes if n["state"] == "ACTIVE"}
                if addresses <= up:
                    return
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the cluster was not ready within {cluster.config.ready_timeout:.0f} s; "
                    f"see the logs in {cluster.config.state_dir}"
                )
            time.sleep(0.05)


RESTART_LIMIT = 5
"""Restarts of one process within ``RESTART_WINDOW`` seconds before ``pallet up`` gives up."""
RESTART_WINDOW = 60.0


def supervise(cluster: Cluster, now: float) -> bool:
    """Start again any process of the cluster that exited (as a service manager would
    restart a Mesos agent: the agent adopts its running tasks). False when one keeps
    exiting: more than ``RESTART_LIMIT`` times within ``RESTART_WINDOW`` seconds."""
    for member in cluster.members:
        code = member.process.poll()
        if code is None:
            continue
        member.restarts = [t for t in member.restarts if now - t < RESTART_WINDOW]
        if len(member.restarts) >= RESTART_LIMIT:
            print(
                f"{member.name} exited with {code} {RESTART_LIMIT + 1} times within "
                f"{RESTART_WINDOW:.0f} s; stopping the cluster (see {member.log})",
                file=sys.stderr,
            )
            return False
        print(f"{member.name} exited with {code}; starting it again", file=sys.stderr)
        cluster.respawn(member, now)
    return True


def run_up(config: UpConfig, announce: Callable[[Cluster], None]) -> int:
    """Start, announce, then keep the processes up until Ctrl-C / SIGTERM, and stop."""
    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        cluster = start_cluster(config)
        announce(cluster)
        code = 0
        while not stop:
            if not supervise(cluster, time.monotonic()):
                code = 1
                break
            time.sleep(0.2)
        cluster.stop()
        return code
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
