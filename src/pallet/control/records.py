"""What the master keeps per app, task, node, deployment and app backoff, and their JSON; pure.

Records are frozen dataclasses; ``to_json``/``from_json`` give the store's bytes. The
app's Marathon definition is opaque here (``AppRecord.definition``): control acts only
on ``RunSpec``, the part it needs to place, launch, kill, replace and back off.
"""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from pallet.model import (
    Constraint,
    Node,
    NodeState,
    Placement,
    PlacementRequest,
    Resources,
    parse_constraints,
)
from pallet.model.node import node_from_json, node_to_json
from pallet.model.task import TaskState

__all__ = [
    "AppRecord",
    "BackoffRecord",
    "DeploymentRecord",
    "NodeRecord",
    "RunSpec",
    "TaskGoal",
    "TaskRecord",
    "TaskState",
    "decode",
    "encode",
    "node_from_json",
]


class TaskGoal(enum.StrEnum):
    """What the master wants of a task: keep it running, or have its agent kill it."""

    RUN = "run"
    KILL = "kill"


def encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def decode(raw: bytes) -> dict[str, Any]:
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("a stored record must be a JSON object")
    return value


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
    unreachable_inactive_after: float | None = 0.0
    """None: the unreachable strategy is disabled (never replace)."""
    unreachable_expunge_after: float = 0.0
    minimum_health_capacity: float = 1.0
    maximum_over_capacity: float = 1.0
    health_checks: tuple[dict[str, Any], ...] = ()
    """Marathon's checks in the agent's shape, ``port_index`` not yet resolved."""

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["resources"] = list(self.resources.as_tuple())
        doc["constraints"] = [c.to_marathon() for c in self.constraints]
        doc["host_ports"] = list(self.host_ports)
        doc["port_names"] = list(self.port_names)
        doc["args"] = list(self.args)
        doc["accepted_roles"] = list(self.accepted_roles)
        doc["health_checks"] = [dict(c) for c in self.health_checks]
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> RunSpec:
        d = dict(doc)
        d["resources"] = Resources(*d["resources"])
        d["constraints"] = parse_constraints(d.get("constraints") or [])
        for name in ("host_ports", "port_names", "args", "health_checks"):
            d[name] = tuple(d.get(name) or ())
        d["accepted_roles"] = tuple(d.get("accepted_roles") or ("*",))
        return cls(**d)

    def launch_spec(
        self, task_id: str, app_id: str, version: str, ports: tuple[int, ...]
    ) -> dict[str, Any]:
        """The agent's ``TaskSpec`` fields for one placed instance."""
        r = self.resources
        return {
            "task_id": task_id,
            "app_id": app_id,
            "app_version": version,
            "cmd": self.cmd,
            "args": list(self.args),
            "env": dict(self.env),
            "cpus": max(1, r.cpu),
            "mem": max(1, r.mem),
            "disk": r.disk,
            "gpus": r.gpu,
            "ports": list(ports),
            "port_names": list(self.port_names[: len(ports)]),
            "kill_grace_seconds": self.kill_grace_seconds,
            "labels": dict(self.labels),
            "health_checks": [_resolved(c, ports) for c in self.health_checks],
        }


def _resolved(check: dict[str, Any], ports: tuple[int, ...]) -> dict[str, Any]:
    """A check with its port: the task's host port at ``port_index``, else ``port``."""
    doc = {k: v for k, v in check.items() if k != "port_index"}
    index = check.get("port_index")
    if index is not None and 0 <= index < len(ports):
        doc["port"] = ports[index]
    return doc


@dataclass(frozen=True, slots=True)
class AppRecord:
    """One app version: the Marathon definition (opaque JSON) and the ``RunSpec``.

    ``version`` changes on every change; ``config_version`` only when more than the
    instance count changed (tasks of an older config version are replaced)."""

    id: str
    version: str
    last_scaling_at: str
    config_version: str
    definition: dict[str, Any]
    run: RunSpec

    @property
    def instances(self) -> int:
        return self.run.instances

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "version": self.version,
            "last_scaling_at": self.last_scaling_at,
            "config_version": self.config_version,
            "definition": self.definition,
            "run": self.run.to_json(),
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> AppRecord:
        return cls(
            id=doc["id"],
            version=doc["version"],
            last_scaling_at=doc["last_scaling_at"],
            config_version=doc["config_version"],
            definition=doc["definition"],
            run=RunSpec.from_json(doc["run"]),
        )

    def placement_request(self, task_id: str) -> PlacementRequest:
        r = self.run
        return PlacementRequest(
            id=task_id,
            app_id=self.id,
            resources=r.resources,
            ports=r.host_ports,
            constraints=r.constraints,
            role=r.role,
            accepted_roles=frozenset(r.accepted_roles),
        )


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """One task as the master tracks it; ``launch`` is what its agent runs."""

    id: str
    app_id: str
    node_id: str
    host: str
    version: str
    config_version: str
    resources: Resources
    ports: tuple[int, ...]
    requested_ports: tuple[int, ...]
    gpus: tuple[tuple[int, int], ...]
    staged_at: float
    launch: dict[str, Any]
    state: TaskState = TaskState.STAGING
    goal: TaskGoal = TaskGoal.RUN
    seq: int = 0
    started_at: float | None = None
    message: str = ""
    reason: str | None = None
    exit_code: int | None = None
    signal: int | None = None
    unreachable_since: float | None = None
    state_before_unreachable: TaskState | None = None
    replaced: bool = False
    role: str = "*"
    healthy: bool | None = None
    """Mesos' ``TaskStatus.healthy``: None until every health check has a verdict."""
    health: tuple[dict[str, Any], ...] = ()
    """One result per health check (Marathon's ``Health``, times in epoch seconds)."""
    killed_unhealthy: bool = False
    """Killed for failing its health checks: its end counts as a failure (backoff)."""

    @property
    def live(self) -> bool:
        return not self.state.is_terminal

    @property
    def has_health_checks(self) -> bool:
        return bool(self.launch.get("health_checks"))

    def failed_check(self) -> int | None:
        """The first health check whose consecutive failures reached its
        ``max_consecutive_failures`` (Marathon kills the task then; 0 never kills)."""
        checks = self.launch.get("health_checks") or ()
        for i, (check, result) in enumerate(zip(checks, self.health, strict=False)):
            limit = int(check.get("max_consecutive_failures") or 0)
            if 0 < limit <= int(result.get("consecutive_failures") or 0):
                return i
        return None

    @property
    def ready(self) -> bool:
        """RUNNING, and healthy when it has health checks (Marathon's rule for a task
        that counts in a deployment)."""
        if self.state is not TaskState.RUNNING:
            return False
        return self.healthy is True or not self.has_health_checks

    def placement(self) -> Placement:
        request = PlacementRequest(
            id=self.id, app_id=self.app_id, resources=self.resources, ports=self.requested_ports
        )
        return Placement(request, self.node_id, self.ports, self.gpus)

    def with_(self, **changes: Any) -> TaskRecord:
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        doc = {name: getattr(self, name) for name in self.__dataclass_fields__}
        doc["resources"] = list(self.resources.as_tuple())
        doc["ports"] = list(self.ports)
        doc["requested_ports"] = list(self.requested_ports)
        doc["gpus"] = [list(g) for g in self.gpus]
        doc["health"] = [dict(h) for h in self.health]
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> TaskRecord:
        d = dict(doc)
        d["resources"] = Resources(*d["resources"])
        d["ports"] = tuple(d["ports"])
        d["requested_ports"] = tuple(d["requested_ports"])
        d["gpus"] = tuple(tuple(g) for g in d["gpus"])
        d["health"] = tuple(d.get("health") or ())
        d["state"] = TaskState(d["state"])
        d["goal"] = TaskGoal(d["goal"])
        if d.get("state_before_unreachable"):
            d["state_before_unreachable"] = TaskState(d["state_before_unreachable"])
        return cls(**d)


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """A registered node: the fingerprinted ``Node`` (with its state), where its agent
    serves logs, and the agent process's boot id (a new one means its tasks are gone)."""

    node: Node
    address: str
    boot_id: str
    registered_at: float

    @property
    def id(self) -> str:
        return self.node.id

    @property
    def state(self) -> NodeState:
        return self.node.state

    def to_json(self) -> dict[str, Any]:
        return {
            **node_to_json(self.node),
            "address": self.address,
            "boot_id": self.boot_id,
            "registered_at": self.registered_at,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> NodeRecord:
        node = node_from_json(doc)
        return cls(node, doc.get("address", ""), doc.get("boot_id", ""), doc["registered_at"])


@dataclass(frozen=True, slots=True)
class DeploymentRecord:
    """A deployment: an app converging on ``target`` (None when it is being stopped)."""

    id: str
    app_id: str
    version: str
    steps: tuple[tuple[str, ...], ...]
    current_step: int
    original: dict[str, Any] | None
    target: dict[str, Any] | None
    started_at: float

    def to_json(self) -> dict[str, Any]:
        doc = {name: getattr(self, name) for name in self.__dataclass_fields__}
        doc["steps"] = [list(s) for s in self.steps]
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> DeploymentRecord:
        d = dict(doc)
        d["steps"] = tuple(tuple(s) for s in d["steps"])
        return cls(**d)


@dataclass(frozen=True, slots=True)
class BackoffRecord:
    """Marathon's launch delay of one app, and its last task failure."""

    delay: float = 0.0
    launch_after: float = 0.0
    last_failure: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> BackoffRecord:
        return cls(**doc)
