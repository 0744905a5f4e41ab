"""The app: ``AppSpec`` (one version of a Marathon app, normalised, frozen) and
``RunSpec``, what control acts on, with its one projection to a placement request; pure.

``AppSpec`` types the fields Pallet acts on (resources, ports, constraints, role,
backoff ...) and keeps the parts it reads later (container, health checks, secrets ...)
as frozen JSON in the normalised form Marathon returns them in; the fields it stores
only to render them back are in one bag, ``AppSpec.kept`` (``KeptFields``).
The API edge (``pallet.api.marathon``) reads and writes Marathon's JSON to and from it.
``RunSpec`` is what placing, launching, killing, replacing and backing off an app's
tasks need, in Pallet's own units and names; control reads no Marathon key.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any

from pallet.model.checks import HealthCheckSpec, ReadinessCheckSpec
from pallet.model.constraints import Constraint, parse_constraints
from pallet.model.frozen import FrozenMap
from pallet.model.messages import ContainerSpec, FetchUri, PersistentVolume, TaskSpec
from pallet.model.pods import PodContainer, endpoint_env_name
from pallet.model.request import PlacementRequest, VolumeNeed
from pallet.model.resources import Resources
from pallet.model.secrets import TaskSecret

__all__ = [
    "AppSpec",
    "KeptFields",
    "KillSelection",
    "NetworkMode",
    "NetworkSpec",
    "PortSpec",
    "RunSpec",
    "SecretRef",
    "UnreachableSpec",
    "UpgradeSpec",
]

_RENAMED = (
    ("unreachable_inactive_after", "unreachable_inactive_after_seconds"),
    ("unreachable_expunge_after", "unreachable_expunge_after_seconds"),
)
"""Fields stored under an earlier name (read under the new one)."""


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
class KeptFields:
    """The fields of a Marathon app Pallet stores and renders back for compatibility but
    does not act on: ``executor`` ('' or '//cmd', both the command executor Pallet
    runs), ``tty`` (unset or false: a TTY is refused), ``residency`` (a resident app's
    task-lost behaviour; Marathon's rules check only that it is there exactly when
    persistent volumes are), and those accepted only while unset (``api.marathon.support``
    refuses them otherwise): ``check`` (Mesos checks), ``executor_resources``,
    ``resource_limits``."""

    executor: str = ""
    tty: bool | None = None
    residency: FrozenMap[object] | None = None
    check: FrozenMap[object] | None = None
    executor_resources: FrozenMap[object] | None = None
    resource_limits: FrozenMap[object] | None = None


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
    readiness_checks: tuple[FrozenMap[object], ...] = ()
    task_kill_grace_period_seconds: int | None = None
    dependencies: tuple[str, ...] = ()
    upgrade_strategy: UpgradeSpec = UpgradeSpec()
    labels: FrozenMap[str] = _EMPTY
    accepted_resource_roles: tuple[str, ...] = ()
    networks: tuple[NetworkSpec, ...] = (NetworkSpec(),)
    secrets: FrozenMap[str] = _EMPTY
    # None means "disabled" (resident apps).
    unreachable_strategy: UnreachableSpec | None = field(default_factory=UnreachableSpec)
    kill_selection: KillSelection = KillSelection.YOUNGEST_FIRST
    role: str = "*"
    kept: KeptFields = KeptFields()
    """What Pallet keeps only to render it back (``KeptFields``)."""

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


@dataclass(frozen=True, slots=True)
class RunSpec:
    """The part of an app version control acts on. Resources are Pallet's integers."""

    instances: int = 1
    resources: Resources = field(default_factory=lambda: Resources(1000, 128, 0, 0))
    host_ports: tuple[int, ...] = ()
    port_names: tuple[str, ...] = ()
    constraints: tuple[Constraint, ...] = ()
    role: str = "*"
    accepted_roles: tuple[str, ...] = ("*",)
    """Marathon's ``acceptedResourceRoles``: the node roles its tasks may land on."""
    cmd: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    kill_grace_seconds: float = 3.0
    backoff_seconds: float = 1.0
    backoff_factor: float = 1.15
    max_launch_delay_seconds: float = 300.0
    kill_selection: str = "YOUNGEST_FIRST"
    unreachable_inactive_after_seconds: float | None = 0.0
    """None: the unreachable strategy is disabled (never replace)."""
    unreachable_expunge_after_seconds: float = 0.0
    minimum_health_capacity: float = 1.0
    maximum_over_capacity: float = 1.0
    progress_deadline_seconds: float | None = None
    """No newly ready task for this long fails a deployment (None: never)."""
    auto_rollback: bool = False
    """A failed deployment returns the app to its last fully deployed, healthy version."""
    canary_instances: int = 0
    """A deployment starts this many new tasks beside the old ones, then pauses."""
    auto_promote_after_seconds: float | None = None
    """Continue a paused deployment once its canaries have been ready this long."""
    health_checks: tuple[HealthCheckSpec, ...] = ()
    """``port_index`` not yet resolved to a host port."""
    readiness_checks: tuple[ReadinessCheckSpec, ...] = ()
    """``port_name`` not yet resolved to a host port."""
    user: str | None = None
    """Marathon's ``user``: who the agent runs the task as (None: its default)."""
    fetch: tuple[FetchUri, ...] = ()
    """Marathon's ``fetch`` (and ``uris``): fetched into the sandbox before it starts."""
    container: ContainerSpec | None = None
    """The container (image) the task runs in; None: a plain command."""
    persistent: tuple[PersistentVolume, ...] = ()
    """Local persistent volumes (no ids): each instance slot gets its own, on its node
    (``control.reservations``); the app is resident."""
    containers: tuple[PodContainer, ...] = ()
    """A Marathon pod's containers: each instance runs them all, placed as one task
    asking for ``resources`` (their sum and the executor's); ``cmd``/``args`` unset."""
    secrets: tuple[TaskSecret, ...] = ()
    """Marathon's secrets as each task gets them (references, never values)."""
    dependencies: tuple[str, ...] = ()
    """The apps and groups whose deployment this app's waits for (Marathon's
    ``dependencies``): the order of a deployment's steps."""

    @property
    def is_pod(self) -> bool:
        return bool(self.containers)

    @property
    def networks(self) -> tuple[str, ...]:
        """The named container networks an instance joins (a node must have them)."""
        c = self.container
        return (c.network_name,) if c is not None and c.network == "container" else ()

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["resources"] = list(self.resources.as_tuple())
        doc["constraints"] = [c.to_marathon() for c in self.constraints]
        doc["host_ports"] = list(self.host_ports)
        doc["port_names"] = list(self.port_names)
        doc["args"] = list(self.args)
        doc["dependencies"] = list(self.dependencies)
        doc["accepted_roles"] = list(self.accepted_roles)
        doc["health_checks"] = [c.to_json() for c in self.health_checks]
        doc["readiness_checks"] = [c.to_json() for c in self.readiness_checks]
        doc["fetch"] = [f.to_json() for f in self.fetch]
        doc["container"] = None if self.container is None else self.container.to_json()
        doc["persistent"] = [v.to_json() for v in self.persistent]
        doc["containers"] = [c.to_json() for c in self.containers]
        doc["secrets"] = [s.to_json() for s in self.secrets]
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> RunSpec:
        d = dict(doc)
        for old, new in _RENAMED:
            if old in d:
                d[new] = d.pop(old)
        d["resources"] = Resources(*d["resources"])
        d["constraints"] = parse_constraints(d.get("constraints") or [])
        for name in ("host_ports", "port_names", "args", "dependencies"):
            d[name] = tuple(d.get(name) or ())
        d["health_checks"] = tuple(
            HealthCheckSpec.from_json(c) for c in d.get("health_checks") or ()
        )
        d["readiness_checks"] = tuple(
            ReadinessCheckSpec.from_json(c) for c in d.get("readiness_checks") or ()
        )
        d["accepted_roles"] = tuple(d.get("accepted_roles") or ("*",))
        d["fetch"] = tuple(FetchUri.from_json(f) for f in d.get("fetch") or ())
        container = d.get("container")
        d["container"] = None if container is None else ContainerSpec.from_json(container)
        d["persistent"] = tuple(PersistentVolume.from_json(v) for v in d.get("persistent") or ())
        d["containers"] = tuple(PodContainer.from_json(c) for c in d.get("containers") or ())
        d["secrets"] = tuple(TaskSecret.from_json(s) for s in d.get("secrets") or ())
        return cls(**d)

    def launch_spec(
        self,
        task_id: str,
        app_id: str,
        version: str,
        ports: tuple[int, ...],
        gpus: tuple[tuple[int, int], ...] = (),
        volumes: tuple[PersistentVolume, ...] = (),
    ) -> TaskSpec:
        """What the agent runs for one placed instance, checks bound to its host ports
        (``gpus``: the placement's ``(device, milli)`` shares; the task is given those
        devices; ``volumes``: its slot's persistent volumes)."""
        r = self.resources
        names = self.port_names[: len(ports)]
        env = dict(self.env)
        if self.containers:  # Marathon names each endpoint's host port to every container
            env.update(
                (endpoint_env_name(name), str(port))
                for name, port in zip(names, ports, strict=False)
                if name
            )
        return TaskSpec(
            task_id=task_id,
            app_id=app_id,
            app_version=version,
            cmd=self.cmd,
            args=self.args,
            env=env,
            cpu_milli=max(1, r.cpu_milli),
            mem_mib=max(1, r.mem_mib),
            disk_mib=r.disk_mib,
            gpu_milli=r.gpu_milli,
            ports=ports,
            port_names=names,
            kill_grace_seconds=self.kill_grace_seconds,
            labels=dict(self.labels),
            health_checks=tuple(c.resolved(ports) for c in self.health_checks),
            readiness_checks=tuple(c.resolved(ports, names) for c in self.readiness_checks),
            gpu_devices=tuple(device for device, _ in gpus),
            user=self.user,
            fetch=self.fetch,
            container=self.container,
            persistent_volumes=volumes,
            containers=self.containers,
            secrets=self.secrets,
        )

    def placement_request(
        self,
        app_id: str,
        task_id: str,
        slot: str | None = None,
        node_id: str | None = None,
        priority: int = 0,
    ) -> PlacementRequest:
        """One instance of app ``app_id`` to place as ``task_id``: the one place a
        placement request is built from an app. A resident app's names its instance
        slot: an existing one on ``node_id`` (pinned there; the slot holds its volumes'
        disk already, and its constraints held when it was made), else a new one (its
        volumes' disk asked on top of the task's)."""
        resources = self.resources
        volume_disks: tuple[VolumeNeed, ...] = ()
        if slot is not None and node_id is None:
            disk = resources.disk_mib + sum(v.size for v in self.persistent if v.type == "root")
            resources = Resources(resources.cpu_milli, resources.mem_mib, disk, resources.gpu_milli)
            volume_disks = tuple(
                VolumeNeed(v.type, v.size, max_size=v.max_size)
                for v in self.persistent
                if v.type != "root"
            )
        return PlacementRequest(
            id=task_id,
            app_id=app_id,
            resources=resources,
            ports=self.host_ports,
            constraints=self.constraints if node_id is None else (),
            role=self.role,
            priority=priority,
            accepted_roles=frozenset(self.accepted_roles),
            node_id=node_id,
            reservation=slot,
            networks=self.networks,
            volume_disks=volume_disks,
        )
