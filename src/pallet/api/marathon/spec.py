"""``AppSpec``: one app version as Pallet keeps it, with Marathon's defaults filled in; pure.

Frozen and free of pydantic so it can move into ``pallet.model``. The fields Pallet
acts on are typed (resources, ports, constraints, role, backoff ...); the parts it
stores for later consumers (container, health checks, secrets ...) are frozen JSON in
the normalised form Marathon returns them in.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from pallet.api.marathon.frozen import FrozenMap
from pallet.model import Constraint, Resources

__all__ = [
    "AppSpec",
    "KillSelection",
    "NetworkMode",
    "NetworkSpec",
    "PortSpec",
    "SecretRef",
    "UnreachableSpec",
    "UpgradeSpec",
]

_EMPTY: FrozenMap[str] = FrozenMap()
_EMPTY_ENV: FrozenMap[str | SecretRef] = FrozenMap()


class NetworkMode(enum.StrEnum):
    HOST = "host"
    CONTAINER = "container"
    BRIDGE = "container/bridge"


class KillSelection(enum.StrEnum):
    YOUNGEST_FIRST = "YOUNGEST_FIRST"
    OLDEST_FIRST = "OLDEST_FIRST"


@dataclass(frozen=True, slots=True)
class PortSpec:
    """A ``portDefinition``: ``port`` is the service port (0 = Marathon assigns one) and,
    with ``requirePorts``, also the host port."""

    port: int = 0
    protocol: str = "tcp"
    name: str | None = None
    labels: FrozenMap[str] = _EMPTY


@dataclass(frozen=True, slots=True)
class NetworkSpec:
    mode: NetworkMode = NetworkMode.HOST
    name: str | None = None
    labels: FrozenMap[str] = _EMPTY


@dataclass(frozen=True, slots=True)
class UpgradeSpec:
    """Fractions of ``instances`` kept healthy / launched extra during a deployment."""

    minimum_health_capacity: float = 1.0
    maximum_over_capacity: float = 1.0
    progress_deadline_seconds: float | None = None
    auto_rollback: bool | None = None
    canary_instances: int | None = None
    auto_promote_after_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class UnreachableSpec:
    """Seconds after which an unreachable instance is replaced, then forgotten."""

    inactive_after_seconds: int = 0
    expunge_after_seconds: int = 0


@dataclass(frozen=True, slots=True)
class SecretRef:
    """An environment value taken from the named secret."""

    secret: str


@dataclass(frozen=True, slots=True)
class AppSpec:
    """One version of a Marathon app, normalised; the defaults are Marathon 1.x's."""

    id: str
    cmd: str | None = None
    args: tuple[str, ...] = ()
    user: str | None = None
    env: FrozenMap[str | SecretRef] = _EMPTY_ENV
    instances: int = 1
    cpus: float = 1.0
    mem: float = 128.0
    disk: float = 0.0
    gpus: float = 0.0
    executor: str = ""
    constraints: tuple[Constraint, ...] = ()
    fetch: tuple[FrozenMap[object], ...] = ()
    # None when the app is not on the host network (ports come from container.portMappings).
    port_definitions: tuple[PortSpec, ...] | None = (PortSpec(name="default"),)
    require_ports: bool = False
    backoff_seconds: int = 1
    backoff_factor: float = 1.15
    max_launch_delay_seconds: int = 300
    container: FrozenMap[object] | None = None
    health_checks: tuple[FrozenMap[object], ...] = ()
    check: FrozenMap[object] | None = None
    readiness_checks: tuple[FrozenMap[object], ...] = ()
    task_kill_grace_period_seconds: int | None = None
    dependencies: tuple[str, ...] = ()
    upgrade_strategy: UpgradeSpec = UpgradeSpec()
    labels: FrozenMap[str] = _EMPTY
    accepted_resource_roles: tuple[str, ...] = ()
    networks: tuple[NetworkSpec, ...] = (NetworkSpec(),)
    residency: FrozenMap[object] | None = None
    secrets: FrozenMap[str] = _EMPTY
    # None means "disabled" (resident apps).
    unreachable_strategy: UnreachableSpec | None = field(default_factory=UnreachableSpec)
    kill_selection: KillSelection = KillSelection.YOUNGEST_FIRST
    tty: bool | None = None
    executor_resources: FrozenMap[object] | None = None
    resource_limits: FrozenMap[object] | None = None
    role: str = "*"

    @property
    def resources(self) -> Resources:
        """Per-instance resources in Pallet's integer units (rounded up)."""
        return Resources.from_marathon(self.cpus, self.mem, self.disk, self.gpus)

    @property
    def on_host_network(self) -> bool:
        return all(n.mode is NetworkMode.HOST for n in self.networks)

    @property
    def host_ports(self) -> tuple[int, ...]:
        """Host ports one instance needs, 0 meaning any free port.

        Host networking: one per port definition; with ``requirePorts`` the port is the
        definition's own, else dynamic. Other networks: each port mapping that names a
        ``hostPort`` (0 = dynamic); mappings without one take no host port.
        """
        if self.port_definitions is not None:
            if self.require_ports:
                return tuple(p.port for p in self.port_definitions)
            return (0,) * len(self.port_definitions)
        mappings = self.container.get("portMappings", ()) if self.container else ()
        ports: list[int] = []
        for mapping in mappings if isinstance(mappings, tuple) else ():
            host_port = mapping.get("hostPort") if isinstance(mapping, FrozenMap) else None
            if isinstance(host_port, int):
                ports.append(host_port)
        return tuple(ports)
