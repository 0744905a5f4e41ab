"""What ``pallet up`` runs, from its options: the config, each agent's plan (address,
work dir, share of the machine, slice of ports) and each process's command line; pure
but for reading the machine's size, the environment and making the secrets key once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from pallet.master.up_discovery import DNS_PORT, lb_ports
from pallet.master.up_secure import secure_dir
from pallet.model.net import agent_subnet
from pallet.model.roles import PUBLIC_ROLE

__all__ = [
    "FIRST_PORT",
    "LAST_PORT",
    "AgentPlan",
    "StartFailed",
    "UpConfig",
    "agent_address",
    "agent_args",
    "agent_plans",
    "default_state_dir",
    "local_share",
    "master_args",
    "master_urls",
    "port_slices",
    "secrets_key",
]

FIRST_PORT, LAST_PORT = 31000, 32000


def default_state_dir() -> Path:
    """``$XDG_STATE_HOME/pallet/up``; for root ``/var/lib/pallet/up``, where an
    unprivileged task user can reach its sandbox (``/root`` is closed to others)."""
    base = os.environ.get("XDG_STATE_HOME")
    if base is None and os.geteuid() == 0:
        return Path("/var/lib/pallet/up")
    return Path(base or Path.home() / ".local" / "state") / "pallet" / "up"


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
    ready_timeout: float = 60.0
    attributes: tuple[str, ...] = ()
    """Each agent's ``--attributes`` (the agent's syntax, ``zone:a;rack:r1``), in order;
    empty: none."""
    masters: int = 1
    """Masters to run; several share a ``masters``-member etcd under the state directory
    and elect a leader (``up_ha``)."""
    public_agents: int = 0
    """The last ``public_agents`` agents run with role ``slave_public`` (DC/OS's public agents)."""
    discovery: bool = False
    """Run the DNS server, the agents' VIP proxies and the edge LB (``up_discovery``)."""
    dns_port: int = DNS_PORT
    lb_ports: tuple[int, int, int] = field(default_factory=lb_ports)
    """The edge LB's HTTP, HTTPS and stats ports."""
    task_user: str | None = None
    """``--task-user`` of every agent (None: the agents' own user)."""
    token_ttl: float | None = None
    """``--token-ttl`` of the masters (with ``secure``; None: theirs, an hour)."""
    allowed_task_users: tuple[str, ...] = ()
    """Users apps may name besides ``task_user`` (``--allow-task-user``). With
    ``secure`` and a task user, none but it unless given; else any unless given."""
    allowed_host_paths: tuple[str, ...] = ()
    allow_privileged: bool = False
    registry_port: int | None = None
    networks: tuple[tuple[str, str], ...] = ()
    """Container networks (name, subnet): agent i gets its share (``agent_subnet``)."""
    """Run Debian's docker-registry on 127.0.0.1 at this port (``pallet image load``)."""
    secure: bool = False
    """Authentication and TLS (``<state dir>/secure``: the CA, the superuser's password)."""

    def is_public(self, index: int) -> bool:
        return index >= self.agents - self.public_agents


class StartFailed(RuntimeError):
    """The cluster could not be brought up; the message says which process and why."""


def agent_address(i: int) -> str:
    """Agent ``i``'s own loopback address: 127.0.0.2, 127.0.0.3, ..."""
    n = i + 2
    return f"127.0.{n // 254}.{n % 254}" if n >= 254 else f"127.0.0.{n}"


def port_slices(agents: int) -> list[tuple[int, int]]:
    """Each agent's slice of ports 31000-32000, first and last: the agents share one
    machine's ports, so each offers its own."""
    span = (LAST_PORT - FIRST_PORT + 1) // agents
    return [(FIRST_PORT + i * span, FIRST_PORT + (i + 1) * span - 1) for i in range(agents)]


def _item_names(resources: str) -> set[str]:
    return {part.split(":", 1)[0].strip() for part in resources.split(";") if ":" in part}


def local_share(agents: int, index: int, resources: str | None) -> str:
    """Agent ``index``'s ``--resources``: a 1/``agents`` share of this machine's CPUs,
    memory and disk and its own slice of ports 31000-32000, with whatever ``resources``
    names (``gpus:1``, ``cpus:2`` ...) instead of the share's item of that name."""
    first, last = port_slices(agents)[index]
    given = _item_names(resources) if resources else set()
    items = []
    if "cpus" not in given:
        items.append(f"cpus:{(psutil.cpu_count(logical=True) or 1) / agents:.3f}")
    if "mem" not in given:
        items.append(f"mem:{max(1, (psutil.virtual_memory().total // (1 << 20) - 1024) // agents)}")
    if "disk" not in given:
        free = psutil.disk_usage("/").free // (1 << 20)
        items.append(f"disk:{max(0, (free - 5 * 1024) // agents)}")
    if "ports" not in given:
        items.append(f"ports:[{first}-{last}]")
    if resources:
        items.append(resources.strip().strip(";"))
    return ";".join(items)


@dataclass(frozen=True, slots=True)
class AgentPlan:
    """How ``pallet up`` runs agent ``index``."""

    index: int
    address: str
    work_dir: Path
    resources: str
    attributes: str | None

    @property
    def ports(self) -> str:
        for item in self.resources.split(";"):
            if item.startswith("ports:"):
                return item.removeprefix("ports:").strip("[]")
        return ""


def agent_plans(config: UpConfig, state: Path) -> list[AgentPlan]:
    return [
        AgentPlan(
            i,
            agent_address(i),
            state / f"agent-{i}",
            local_share(config.agents, i, config.resources),
            config.attributes[i] if i < len(config.attributes) else None,
        )
        for i in range(config.agents)
    ]


def secrets_key(directory: Path) -> Path:
    """``<directory>/secrets.key``, the key sealing the cluster's secrets, made once
    (0600): under the state dir, or the secure dir with ``--secure``."""
    from pallet.auth.ca import write_private
    from pallet.auth.secretbox import new_key_line

    path = directory / "secrets.key"
    if not path.exists():
        write_private(path, (new_key_line() + "\n").encode())
    return path


def master_args(config: UpConfig, state: Path, store: str, port: int) -> list[str]:
    secure = ["--secrets-key-file", str(state / "secrets.key")]
    if config.secure:
        directory = secure_dir(state)
        secure = [
            "--secure-dir",
            str(directory),
            "--superuser-password-file",
            str(directory / "admin-password"),
        ]
        if config.token_ttl is not None:
            secure += ["--token-ttl", str(config.token_ttl)]
    args = [
        "master",
        *secure,
        "--host",
        config.host,
        "--port",
        str(port),
        "--store",
        store,
        "--policy",
        config.policy,
        "--heartbeat-grace",
        str(config.heartbeat_grace),
    ]
    for path in config.allowed_host_paths:
        args += ["--allow-host-path", path]
    if config.allow_privileged:
        args.append("--allow-privileged")
    return args


def master_urls(config: UpConfig) -> list[str]:
    scheme = "https" if config.secure else "http"
    return [f"{scheme}://{config.host}:{config.port + i}" for i in range(config.masters)]


def agent_args(config: UpConfig, url: str, plan: AgentPlan) -> list[str]:
    args = [
        "agent",
        "--master",
        url,
        "--work-dir",
        str(plan.work_dir),
        "--hostname",
        plan.address,
        "--bind",
        plan.address,
        "--port",
        str(config.agent_port),
        "--resources",
        plan.resources,
        "--heartbeat-interval",
        str(config.heartbeat_interval),
    ]
    if config.secure:
        directory = secure_dir(plan.work_dir.parent)
        args += [
            "--ca",
            str(directory / "ca.crt"),
            "--bootstrap-secret-file",
            str(directory / "bootstrap-secret"),
        ]
    if plan.attributes:
        args += ["--attributes", plan.attributes]
    if config.is_public(plan.index):
        args += ["--role", PUBLIC_ROLE]
    if config.task_user is not None:
        args += ["--task-user", config.task_user]
    allowed = config.allowed_task_users
    if not allowed and config.secure and config.task_user is not None:
        allowed = (config.task_user,)  # a secure cluster runs apps as nobody, not as root
    for name in allowed:
        args += ["--allow-task-user", name]
    if config.secure and config.task_user is not None:
        args.append("--dynamic-task-users")  # as root: no task reads another's sandbox
    args += ["--bridge-subnet", f"10.88.{plan.index % 256}.0/24"]  # one bridge per agent
    for name, subnet in config.networks:
        share = agent_subnet(subnet, plan.index, config.agents)
        args += ["--network", f"name={name},subnet={share}"]
    return args
