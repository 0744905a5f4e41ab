"""``pallet up``: a whole cluster on this machine, in one terminal; spawns and stops processes.

    pallet up --agents 3 --attributes 'zone=a;zone=b;zone=c'
      master  127.0.0.1:8080, SQLite under the state directory
      agent i 127.0.0.<i+2> (its hostname and bind address), sandboxes under agent-<i>/,
              a 1/N share of this machine's CPUs, memory and disk, its own slice of
              ports 31000-32000 (they share one machine's ports), its own attributes;
              with --public-agents K the last K have role slave_public
      with --discovery (default with public agents): the DNS server, a VIP proxy per
              agent and, on the first public agent, the edge LB (``up_discovery``)

"Up" is said only when the master answers and every agent has registered with it. A
process that exits on its own is started again with the same arguments, as a service
manager would (an agent adopts the tasks it left running, a master reloads its store),
backing off when it keeps exiting (``restarts``); one process that crash-loops never
stops the others, nor their tasks.

Ctrl-C (SIGINT) or SIGTERM drains the agents first (SIGUSR1: they kill their tasks;
a plain SIGTERM would leave the tasks running for the next agent, as for an upgrade),
then stops the master; whatever does not stop in time is killed with everything it
started, and tasks an agent that was down left behind are killed, so no process is
left behind. Children also go if ``pallet up`` itself is killed (agents drained, the
master stopped).
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

from pallet.master.restarts import RestartPolicy
from pallet.master.up_discovery import discovery_members
from pallet.master.up_ha import etcd_for_up
from pallet.master.up_plan import (
    FIRST_PORT,
    LAST_PORT,
    AgentPlan,
    StartFailed,
    UpConfig,
    agent_address,
    agent_args,
    agent_plans,
    default_state_dir,
    local_share,
    master_args,
    master_urls,
    port_slices,
    secrets_key,
)
from pallet.master.up_report import SupervisorReports
from pallet.master.up_secure import (
    discovery_env,
    enroll_discovery,
    prepare_secure,
    secure_dir,
    superuser_client,
)
from pallet.model.roles import PUBLIC_ROLE
from pallet.store.errors import StoreError
from pallet.store.etcd.server import EtcdCluster, EtcdMember

__all__ = [
    "FIRST_PORT",
    "LAST_PORT",
    "AgentPlan",
    "Cluster",
    "Member",
    "StartFailed",
    "UpConfig",
    "agent_address",
    "agent_plans",
    "default_state_dir",
    "local_share",
    "port_slices",
    "run_up",
    "start_cluster",
    "supervise",
]

_PR_SET_PDEATHSIG = 1


def _stop_signal(command: str) -> signal.Signals:
    """How ``up`` stops a child: an agent is drained (its tasks killed), a master stopped."""
    return signal.SIGUSR1 if command == "agent" else signal.SIGTERM


def _spawn(
    args: list[str], log_path: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``pallet <command> ...`` started as ``python -m pallet.cli.<command>``: the same
    options, without importing every other command (agents start in a fraction);
    ``env`` adds to this process's environment."""
    command, *rest = args
    death = _stop_signal(command)

    def die_with_parent() -> None:  # in the child: the signal comes when `up` dies
        with contextlib.suppress(Exception):
            ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, death)

    # 0600: a task (another user) may pass through the state dir to its sandbox, and
    # must not read what the master and agents log on the way
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    os.fchmod(fd, 0o600)
    with open(fd, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", f"pallet.cli.{command}", *rest],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches `up` only; it stops the children in order
            preexec_fn=die_with_parent,
            env={**os.environ, **env} if env else None,
        )


def last_line(log: Path) -> str:
    """The last non-empty line of a log (what a process said before it exited)."""
    try:
        with open(log, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
            lines = [line.strip() for line in f.read().decode(errors="replace").splitlines()]
    except OSError:
        return ""
    return next((line for line in reversed(lines) if line), "")


@dataclass
class Member:
    """One process of the cluster and how to start it again."""

    name: str
    args: list[str]
    log: Path
    process: subprocess.Popen[bytes]
    restarts: RestartPolicy = field(default_factory=lambda: RestartPolicy(time.monotonic()))
    env: dict[str, str] = field(default_factory=dict)
    """Added to ``up``'s environment (the discovery processes' credential)."""
    last_words: str = ""
    """The last line of its log when it last exited."""

    @property
    def running(self) -> bool:
        return self.process.poll() is None


@dataclass
class Cluster:
    config: UpConfig
    url: str
    members: list[Member] = field(default_factory=list)
    plans: list[AgentPlan] = field(default_factory=list)

    etcd: EtcdCluster | None = None
    etcd_restarts: dict[str, RestartPolicy] = field(default_factory=dict)
    """Each etcd member's exits and next start, by member name."""

    @property
    def master(self) -> subprocess.Popen[bytes]:
        return self.members[0].process

    @property
    def master_members(self) -> list[Member]:
        return [m for m in self.members if m.name.startswith("master")]

    @property
    def agent_members(self) -> list[Member]:
        return [m for m in self.members if m.name.startswith("agent")]

    @property
    def agents(self) -> list[subprocess.Popen[bytes]]:
        return [m.process for m in self.agent_members]

    def extras(self) -> list[subprocess.Popen[bytes]]:
        """Discovery's processes (DNS, VIP proxies, edge LB)."""
        return [
            m.process
            for m in self.members
            if not m.name.startswith("agent") and not m.name.startswith("master")
        ]

    def processes(self) -> list[subprocess.Popen[bytes]]:
        return [*self.agents, *(m.process for m in self.master_members), *self.extras()]

    def stop(self, agent_timeout: float = 20.0, master_timeout: float = 10.0) -> int:
        """Discovery first (each stops its HAProxy or unbound), then the agents (they kill
        their tasks and report it), then the master; then the tasks of an agent that was
        down (or did not drain in time) are killed. How many such task processes there
        were."""
        _terminate(self.extras(), master_timeout, signal.SIGTERM)
        _terminate(self.agents, agent_timeout, _stop_signal("agent"))
        _terminate([m.process for m in self.master_members], master_timeout, _stop_signal("master"))
        if self.etcd is not None:
            self.etcd.stop()
        return _kill_left_behind(self.config.state_dir.resolve())

    def respawn(self, member: Member, now: float) -> None:
        """Start ``member`` again with the same arguments (an agent with the same work
        dir adopts the tasks it left running; a master reloads the state store)."""
        member.process = _spawn(member.args, member.log, member.env)
        member.restarts.started(now)
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


def _kill_left_behind(state: Path) -> int:
    """Kill processes still working in the cluster's sandboxes (tasks of an agent that
    could not drain them); how many there were."""
    mark = str(state) + os.sep
    found = []
    for p in psutil.process_iter(["cwd"]):
        with contextlib.suppress(psutil.Error):
            if (p.info["cwd"] or "").startswith(mark) and p.pid != os.getpid():
                found.append(p)
    for p in found:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(found, timeout=5)
    return len(found)


def start_cluster(config: UpConfig, stopping: Callable[[], bool] = lambda: False) -> Cluster:
    """Start the master and the agents; return once the master answers and every agent
    has registered with it. ``StartFailed`` says which process did not, and why."""
    state = config.state_dir.resolve()
    state.mkdir(parents=True, exist_ok=True)
    # Tasks pass through it to their sandboxes (agent-N/sandboxes/<task>), but may not
    # list it; the store, logs and secure/ in it are the master's alone (0600/0700).
    state.chmod(0o711)
    url = f"{'https' if config.secure else 'http'}://{config.host}:{config.port}"
    if config.secure:
        prepare_secure(state, config.host)
        secrets_key(secure_dir(state))  # before the masters start: not one each
    else:
        secrets_key(state)
    etcd = None
    store = f"sqlite:///{state / 'state.db'}"
    if config.masters > 1:
        try:
            etcd = etcd_for_up(state, config.masters, config.port + 100)
        except (ValueError, StoreError) as e:
            raise StartFailed(f"etcd for {config.masters} masters: {e}") from None
        store = etcd.url
    members = []
    for i in range(config.masters):
        args = master_args(config, state, store, config.port + i)
        log = state / ("master.log" if i == 0 else f"master-{i}.log")
        name = "master" if i == 0 else f"master {i}"
        members.append(Member(name, args, log, _spawn(args, log)))
    if config.registry_port is not None:
        args = ["image", "registry", "--port", str(config.registry_port)]
        args += ["--dir", str(state / "registry")]
        log = state / "registry.log"
        members.append(Member("registry", args, log, _spawn(args, log)))
    plans = agent_plans(config, state)
    masters = ",".join(master_urls(config))
    for plan in plans:
        plan.work_dir.mkdir(exist_ok=True)
        args = agent_args(config, masters, plan)
        log = plan.work_dir / "agent.log"
        members.append(Member(f"agent {plan.index}", args, log, _spawn(args, log)))
    cluster = Cluster(config, url, members, plans, etcd)
    if config.discovery and not config.secure:
        _start_discovery(cluster, {})
    try:
        _wait_ready(cluster, stopping)
        if config.discovery and config.secure:
            # they log in as a service account, which needs a master to make it
            with admin_client(cluster) as client:
                enroll_discovery(client, state)
            _start_discovery(cluster, discovery_env(state))
    except BaseException:
        cluster.stop(agent_timeout=10.0, master_timeout=5.0)
        raise
    write_up_json(cluster)
    return cluster


def _start_discovery(cluster: Cluster, env: dict[str, str]) -> None:
    """The DNS server, the VIP proxies and the edge LB, as members of ``cluster``."""
    config = cluster.config
    public = [plan.address for plan in cluster.plans if config.is_public(plan.index)]
    state = config.state_dir.resolve()
    for extra in discovery_members(
        cluster.url, state, config.agents, public, config.dns_port, config.lb_ports
    ):
        extra.log.parent.mkdir(parents=True, exist_ok=True)
        process = _spawn(extra.args, extra.log, env)
        cluster.members.append(Member(extra.name, extra.args, extra.log, process, env=env))


def write_up_json(cluster: Cluster) -> None:
    """``up.json`` in the state directory: the URL, the processes' pids and how each is
    doing (restarts, backing off), for tools."""
    state = cluster.config.state_dir.resolve()
    doc: dict[str, Any] = {
        "master": {"url": cluster.url, "pid": cluster.master.pid},
        "masters": [
            {"url": u, "pid": m.process.pid}
            for u, m in zip(master_urls(cluster.config), cluster.master_members, strict=True)
        ],
        "agents": [
            {
                "address": plan.address,
                "pid": member.process.pid,
                "work_dir": str(plan.work_dir),
                "ports": plan.ports,
                "attributes": plan.attributes or "",
                "role": PUBLIC_ROLE if cluster.config.is_public(plan.index) else "*",
                "exits_in_a_row": member.restarts.exits,
                "backing_off": member.restarts.backing_off,
            }
            for plan, member in zip(cluster.plans, cluster.agent_members, strict=True)
        ],
    }
    if cluster.etcd is not None:
        doc["etcd"] = [_etcd_member_json(cluster, m) for m in cluster.etcd.members]
    if cluster.config.discovery:
        public = [p.address for p in cluster.plans if cluster.config.is_public(p.index)]
        doc["dns"] = f"127.0.0.1:{cluster.config.dns_port}"
        if public:
            http, _, stats = cluster.config.lb_ports
            doc["lb"] = {"http": f"{public[0]}:{http}", "stats": f"{public[0]}:{stats}"}
    tmp = state / "up.json.tmp"
    tmp.write_text(json.dumps(doc, indent=2))
    tmp.chmod(0o600)
    tmp.replace(state / "up.json")


def _etcd_member_json(cluster: Cluster, m: EtcdMember) -> dict[str, Any]:
    policy = cluster.etcd_restarts.get(m.name)
    return {
        "name": m.name,
        "client_url": m.client_url,
        "pid": None if m.process is None else m.process.pid,
        "exits_in_a_row": policy.exits if policy else 0,
        "backing_off": bool(policy and policy.backing_off),
    }


def _node_ids(cluster: Cluster) -> dict[str, str]:
    """Node id -> member name, for the agents that have written theirs."""
    found = {}
    for plan, member in zip(cluster.plans, cluster.agent_members, strict=True):
        with contextlib.suppress(OSError):
            node_id = (plan.work_dir / "node-id").read_text().strip()
            if node_id:
                found[node_id] = member.name
    return found


def admin_client(cluster: Cluster) -> httpx.Client:
    """A client of the cluster's master; on a secure cluster it trusts the cluster CA and
    logs in as the superuser (again whenever its token is refused)."""
    return superuser_client(cluster.url, cluster.config.state_dir, cluster.config.secure)


def _wait_ready(cluster: Cluster, stopping: Callable[[], bool]) -> None:
    deadline = time.monotonic() + cluster.config.ready_timeout
    waiting_for = "the master"
    with admin_client(cluster) as client:
        while not stopping():
            for member in cluster.members:
                code = member.process.poll()
                if code is not None:
                    said = last_line(member.log)
                    raise StartFailed(
                        f"{member.name} exited with {code} while starting"
                        + (f": {said}" if said else "")
                        + f" (log: {member.log})"
                    )
            try:
                nodes = client.get("/v1/nodes").json()["nodes"]
                ours = _node_ids(cluster)
                registered = {
                    ours[n["id"]] for n in nodes if n["state"] == "ACTIVE" and n["id"] in ours
                }
                missing = [m.name for m in cluster.agent_members if m.name not in registered]
                if not missing:
                    return
                waiting_for = ", ".join(missing) + " to register"
            except (httpx.HTTPError, ValueError, KeyError, TypeError):
                waiting_for = "the master to answer"
            if time.monotonic() > deadline:
                raise StartFailed(
                    f"the cluster was not up within {cluster.config.ready_timeout:.0f} s: still "
                    f"waiting for {waiting_for}; see the logs in {cluster.config.state_dir}"
                )
            time.sleep(0.05)
    raise StartFailed("stopped while starting")


def supervise(cluster: Cluster, now: float, say: Callable[[str], None]) -> None:
    """Start again any process of the cluster that exited, at once the first time and
    then backing off (``restarts``); never stop the others because of it."""
    for member in cluster.members:
        policy = member.restarts
        if policy.backing_off:
            if policy.due(now):
                say(f"starting {member.name} again")
                cluster.respawn(member, now)
            continue
        code = member.process.poll()
        if code is None:
            continue
        delay = policy.exited(now)
        said = last_line(member.log)
        member.last_words = said
        reason = f" ({said[:160]})" if said else ""
        if delay == 0:
            say(f"{member.name} exited with {code}{reason}; starting it again")
            cluster.respawn(member, now)
        else:
            say(
                f"{member.name} exited with {code}{reason}, {len(policy.history)} times within a "
                f"minute; starting it again in {delay:.0f} s (log: {member.log})"
            )
            write_up_json(cluster)
    if cluster.etcd is not None:
        _supervise_etcd(cluster, cluster.etcd, now, say)


def _agent_reports(cluster: Cluster) -> list[tuple[Path, RestartPolicy, str]]:
    """What ``up_report`` tells the master of each agent: its work dir (where its node id
    is), its restarts and the last line it said before it last exited."""
    return [
        (plan.work_dir, member.restarts, member.last_words)
        for plan, member in zip(cluster.plans, cluster.agent_members, strict=True)
    ]


def _supervise_etcd(
    cluster: Cluster, etcd: EtcdCluster, now: float, say: Callable[[str], None]
) -> None:
    """The same for the etcd members: one that dies is started again on its own data (it
    rejoins and catches up from the others), backing off if it keeps dying."""
    for m in etcd.members:
        policy = cluster.etcd_restarts.setdefault(m.name, RestartPolicy(now))
        name = f"etcd member {m.name}"
        if policy.backing_off:
            if policy.due(now):
                say(f"starting {name} again")
                m.start()
                policy.started(now)
                write_up_json(cluster)
            continue
        code = None if m.process is None else m.process.poll()
        if code is None:
            continue
        delay = policy.exited(now)
        said = last_line(m.log_path)
        reason = f" ({said[:160]})" if said else ""
        if delay == 0:
            say(f"{name} exited with {code}{reason}; starting it again")
            m.start()
            policy.started(now)
        else:
            say(
                f"{name} exited with {code}{reason}, {len(policy.history)} times within a "
                f"minute; starting it again in {delay:.0f} s (log: {m.log_path})"
            )
        write_up_json(cluster)


def run_up(
    config: UpConfig,
    announce: Callable[[Cluster], None],
    say: Callable[[str], None] = lambda text: print(text, file=sys.stderr, flush=True),
) -> int:
    """Start, announce, then keep the processes up until Ctrl-C / SIGTERM, and stop."""
    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        cluster = start_cluster(config, lambda: stop)
        announce(cluster)
        reports = SupervisorReports(lambda: admin_client(cluster))
        while not stop:
            now = time.monotonic()
            supervise(cluster, now, say)
            reports.tick(_agent_reports(cluster), now, time.time())
            time.sleep(0.2)
        reports.close()
        left = cluster.stop()
        if left:
            say(f"killed {left} task processes that an agent could not drain")
        return 0
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
