"""What the master keeps per app, task, node, deployment and app backoff, and their JSON; pure.

Records are frozen dataclasses; ``to_json``/``from_json`` give the store's bytes. An app
is stored once, as its typed ``AppSpec`` (``model.app_codec``'s encoding); its
``RunSpec``, the part control needs to place, launch, kill, replace and back off, is the
pure projection ``model.app_run.run_spec`` of it, computed on load. Control compares an
app's definition whole and reads no Marathon key (``tests/control/test_no_marathon_keys``).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from pallet.model import (
    HealthResult,
    Node,
    NodeState,
    Placement,
    PlacementRequest,
    ReadinessResult,
    Resources,
    TaskSpec,
)
from pallet.model.app import AppSpec, RunSpec
from pallet.model.app_codec import app_from_json, app_to_json, stored_form
from pallet.model.app_run import run_spec
from pallet.model.frozen import FrozenMap, freeze, thaw
from pallet.model.node import node_from_json, node_to_json
from pallet.model.task import TaskState

__all__ = [
    "AppDefinition",
    "AppRecord",
    "BackoffRecord",
    "DeploymentRecord",
    "GroupRecord",
    "NodeDrain",
    "NodeRecord",
    "RunSpec",
    "TaskGoal",
    "TaskRecord",
    "TaskState",
    "decode",
    "encode",
    "node_from_json",
    "read_legacy_apps_with",
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


APP_FORMAT = 3
"""The encoding of ``AppRecord``: 3 since an app is stored as its ``AppSpec`` alone (a
pod as its definition and ``RunSpec``); 2 kept the app's Marathon definition beside its
``RunSpec``; 1 (no ``format``) had the count inside the definition. 1 and 2 are
upgraded when read."""

AppDefinition = AppSpec | FrozenMap[Any]
"""What an app record keeps besides its count: an app's ``AppSpec`` with ``instances``
0, or a pod's canonical Marathon definition without ``scaling.instances`` (the API
edge's to read: pods are parsed and projected to their ``RunSpec`` in
``api.pod_spec``)."""

LegacyReader = Callable[[dict[str, Any], int], AppSpec]
"""The API edge's reader of an app's stored Marathon definition (without its count)
and its count."""

_read_marathon: list[LegacyReader] = []


def read_legacy_apps_with(reader: LegacyReader) -> None:
    """Give the reader of Marathon app JSON (the API edge's) that upgrades app records
    of formats 1 and 2, which kept the app as its Marathon definition. Control itself
    reads no Marathon key; the API package registers its reader when it is imported."""
    _read_marathon[:] = [reader]


def _upgrade_format_1(definition: dict[str, Any], run: RunSpec) -> tuple[dict[str, Any], RunSpec]:
    """A record written before format 2: its definition still holds Marathon's count (an
    app's ``instances``, a pod's ``scaling.instances``) and its dependencies were read
    from it. The only place control reads a Marathon key, to move it out of the way."""
    upgraded = {k: v for k, v in definition.items() if k != "instances"}
    scaling = upgraded.get("scaling")
    if isinstance(scaling, dict):
        upgraded["scaling"] = {k: v for k, v in scaling.items() if k != "instances"}
    dependencies = tuple(str(d) for d in definition.get("dependencies") or ())
    return upgraded, replace(run, dependencies=dependencies)


def _upgrade_format_2(definition: dict[str, Any], run: RunSpec) -> tuple[AppDefinition, RunSpec]:
    """A record of format 2 (or 1, once upgraded to 2): a pod keeps its definition and
    ``RunSpec``; an app's Marathon definition is read by the API edge's reader into the
    ``AppSpec`` format 3 stores, its ``RunSpec`` projected from it."""
    if run.is_pod:
        return freeze(definition), run
    if not _read_marathon:
        raise ValueError("an app record of format 2 needs the API's reader to upgrade it")
    spec = stored_form(_read_marathon[0](definition, run.instances))
    return replace(spec, instances=0), run_spec(spec)


@dataclass(frozen=True, slots=True)
class AppRecord:
    """One app version: ``run`` (what control acts on, the instance count included) and
    ``definition``, the rest of the app (``AppDefinition``): control only compares it
    whole, and it never holds the instance count (a scale is ``run.instances`` alone,
    so "only the count changed" is "the definitions are equal").

    An app's ``run`` is always ``run_spec`` of its ``spec`` (the API edge builds both
    from one ``AppSpec``; a scale changes the count alone): only the spec is stored and
    ``run`` is computed again when the record is read.

    ``version`` changes on every change; ``config_version`` only when more than the
    instance count changed (tasks of an older config version are replaced)."""

    id: str
    version: str
    last_scaling_at: str
    config_version: str
    definition: AppDefinition
    run: RunSpec
    stable_version: str | None = None
    """The last version whose deployment finished (every instance ready): where an
    ``autoRollback`` returns to."""
    _json: dict[str, Any] | None = field(default=None, init=False, repr=False, compare=False)
    """``to_json``'s answer, kept: a write renders the record for the store, for its
    deployment's target and, as the next write's original or when its deployment ends,
    again (about 0.3 ms each, a tenth of a write's CPU in ``bench api --mixed``)."""

    @property
    def instances(self) -> int:
        return self.run.instances

    def with_stable(self) -> AppRecord:
        """This version recorded as the app's stable one (its JSON derived from this one's)."""
        stable = replace(self, stable_version=self.version)
        if self._json is not None:
            object.__setattr__(stable, "_json", {**self._json, "stable_version": self.version})
        return stable

    @property
    def is_pod(self) -> bool:
        """A Marathon pod (``/v2/pods``), not an app: it shares the app id space and
        everything control does, but the app routes do not show it."""
        return self.run.is_pod

    @property
    def spec(self) -> AppSpec:
        """The app (count included); a pod has none (its definition is the edge's)."""
        definition = self.definition
        if not isinstance(definition, AppSpec):
            raise TypeError(f"{self.id} is a pod, not an app")
        return replace(definition, instances=self.run.instances)

    def to_json(self) -> dict[str, Any]:
        """The stored form (a new dict each time; what it holds is shared: change none)."""
        if self._json is None:
            object.__setattr__(self, "_json", self._render())
        assert self._json is not None
        return dict(self._json)

    def _render(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "id": self.id,
            "version": self.version,
            "last_scaling_at": self.last_scaling_at,
            "config_version": self.config_version,
            "stable_version": self.stable_version,
            "format": APP_FORMAT,
        }
        definition = self.definition
        if isinstance(definition, AppSpec):
            doc["app"] = app_to_json(replace(definition, instances=self.run.instances))
        else:  # as text, so the pod keeps its key order (the store's encoding sorts keys)
            doc["pod"] = json.dumps(thaw(definition), separators=(",", ":"))
            doc["run"] = self.run.to_json()
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> AppRecord:
        definition: AppDefinition
        form = doc.get("format", 1)
        if form >= 3 and "app" in doc:
            spec = app_from_json(doc["app"])
            definition, run = replace(spec, instances=0), run_spec(spec)
        elif form >= 3:
            definition = freeze(json.loads(doc["pod"]))
            run = RunSpec.from_json(doc["run"])
        else:
            legacy, run = doc["definition"], RunSpec.from_json(doc["run"])
            if form < 2:
                legacy, run = _upgrade_format_1(legacy, run)
            definition, run = _upgrade_format_2(legacy, run)
        return cls(
            id=doc["id"],
            version=doc["version"],
            last_scaling_at=doc["last_scaling_at"],
            config_version=doc["config_version"],
            definition=definition,
            run=run,
            stable_version=doc.get("stable_version"),
        )

    def placement_request(
        self,
        task_id: str,
        slot: str | None = None,
        node_id: str | None = None,
        priority: int = 0,
    ) -> PlacementRequest:
        """One instance of this app to place (``RunSpec.placement_request``)."""
        return self.run.placement_request(self.id, task_id, slot, node_id, priority)


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
    launch: TaskSpec
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
    health: tuple[HealthResult, ...] = ()
    """One result per health check (Marathon's ``Health``, times in epoch seconds)."""
    readiness: tuple[ReadinessResult, ...] = ()
    """One result per readiness check, once the agent has probed them."""
    killed_unhealthy: bool = False
    """Killed for failing its health checks: its end counts as a failure (backoff)."""
    reservation: str | None = None
    """The instance slot (``control.reservations``) of a resident app's task."""
    ip_addresses: tuple[str, ...] = ()
    """Its own addresses on a container network, as its agent reported them."""

    @property
    def live(self) -> bool:
        return not self.state.is_terminal

    @property
    def has_health_checks(self) -> bool:
        return bool(self.launch.health_checks)

    def failed_check(self) -> int | None:
        """The first health check whose consecutive failures reached its
        ``max_consecutive_failures`` (Marathon kills the task then; 0 never kills)."""
        for i, (check, result) in enumerate(
            zip(self.launch.health_checks, self.health, strict=False)
        ):
            if 0 < check.max_consecutive_failures <= result.consecutive_failures:
                return i
        return None

    @property
    def ready(self) -> bool:
        """RUNNING, healthy when it has health checks, and past every readiness check
        when it has them (Marathon's rule for a task that counts in a deployment)."""
        if self.state is not TaskState.RUNNING:
            return False
        if self.has_health_checks and self.healthy is not True:
            return False
        wanted = self.launch.readiness_checks
        if not wanted:
            return True
        return len(self.readiness) == len(wanted) and all(r.ready for r in self.readiness)

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
        doc["launch"] = self.launch.to_json()
        doc["health"] = [h.to_json() for h in self.health]
        doc["readiness"] = [r.to_json() for r in self.readiness]
        doc["ip_addresses"] = list(self.ip_addresses)
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> TaskRecord:
        d = dict(doc)
        d["resources"] = Resources(*d["resources"])
        d["ports"] = tuple(d["ports"])
        d["requested_ports"] = tuple(d["requested_ports"])
        d["gpus"] = tuple(tuple(g) for g in d["gpus"])
        d["launch"] = TaskSpec.from_json(d["launch"], "/launch")
        d["health"] = tuple(HealthResult.from_json(h) for h in d.get("health") or ())
        d["readiness"] = tuple(ReadinessResult.from_json(r) for r in d.get("readiness") or ())
        d["state"] = TaskState(d["state"])
        d["goal"] = TaskGoal(d["goal"])
        d["ip_addresses"] = tuple(d.get("ip_addresses") or ())
        if d.get("state_before_unreachable"):
            d["state_before_unreachable"] = TaskState(d["state_before_unreachable"])
        return cls(**d)


@dataclass(frozen=True, slots=True)
class NodeDrain:
    """An operator's drain (``pallet node drain``): the node is offered nothing and its
    tasks move elsewhere, each app keeping its minimumHealthCapacity; those left at
    ``deadline`` (epoch seconds; None: no deadline) are killed. It holds across agent
    restarts until undrained."""

    started_at: float
    deadline: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"started_at": self.started_at, "deadline": self.deadline}

    @classmethod
    def from_json(cls, doc: dict[str, Any] | None) -> NodeDrain | None:
        if not doc:
            return None
        return cls(float(doc["started_at"]), doc.get("deadline"))


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """A registered node: the fingerprinted ``Node`` (with its state), where its agent
    serves logs, the id of its agent's run (``boot_id``, kept under that name in the store
    and on the wire; not the kernel's boot id: a new one means its tasks are gone) and
    the operator's drain, if any."""

    node: Node
    address: str
    boot_id: str
    registered_at: float
    drain: NodeDrain | None = None

    @property
    def id(self) -> str:
        return self.node.id

    @property
    def state(self) -> NodeState:
        return self.node.state

    def to_json(self) -> dict[str, Any]:
        doc = {
            **node_to_json(self.node),
            "address": self.address,
            "boot_id": self.boot_id,
            "registered_at": self.registered_at,
        }
        if self.drain is not None:
            doc["drain"] = self.drain.to_json()
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> NodeRecord:
        node = node_from_json(doc)
        return cls(
            node,
            doc.get("address", ""),
            doc.get("boot_id", ""),
            doc["registered_at"],
            NodeDrain.from_json(doc.get("drain")),
        )


Step = tuple[tuple[str, str], ...]
"""One step of a deployment: its actions, each ``(action, app id)``."""


@dataclass(frozen=True, slots=True)
class DeploymentRecord:
    """A deployment: apps converging on their targets, step by step.

    ``steps`` run in order (apps of a later dependency level wait for those of the
    earlier ones); ``current_step`` counts from 1. ``originals``/``targets`` hold each
    affected app's JSON before and after (None: created / stopped).

    Progress is what the deadline watches: ``ready_seen`` tasks of the targets were
    ready at ``progress_at`` (the start, or when the last one became ready). With
    canaries (one app), the deployment holds at ``canaries`` new tasks until
    ``promoted``; ``paused_at`` is when all canaries were first ready."""

    id: str
    version: str
    steps: tuple[Step, ...]
    current_step: int
    originals: Mapping[str, dict[str, Any] | None]
    targets: Mapping[str, dict[str, Any] | None]
    started_at: float
    progress_at: float = 0.0
    ready_seen: int = 0
    canaries: int = 0
    promoted: bool = False
    paused_at: float | None = None
    group: str | None = None
    """The group whose change this is (None: one app's)."""

    @property
    def app_ids(self) -> tuple[str, ...]:
        """The affected apps, in the order of the steps."""
        return tuple(dict.fromkeys(app for step in self.steps for _, app in step))

    @property
    def app_id(self) -> str:
        """The first affected app (the only one of a one-app deployment)."""
        return self.app_ids[0]

    def step_of(self, app_id: str) -> int:
        """The first step (from 1) acting on ``app_id``."""
        for i, step in enumerate(self.steps, 1):
            if any(app == app_id for _, app in step):
                return i
        raise KeyError(app_id)

    def waits(self, app_id: str) -> bool:
        """Whether ``app_id`` is left as it is until an earlier step is done."""
        return app_id in self.targets and self.step_of(app_id) > self.current_step

    @property
    def holding(self) -> int | None:
        """How many new tasks the app may have while the canaries wait to be promoted;
        None once promoted (or without canaries)."""
        return self.canaries if self.canaries and not self.promoted else None

    def with_(self, **changes: Any) -> DeploymentRecord:
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        doc = {name: getattr(self, name) for name in self.__dataclass_fields__}
        doc["steps"] = [[list(a) for a in step] for step in self.steps]
        doc["originals"] = dict(self.originals)
        doc["targets"] = dict(self.targets)
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> DeploymentRecord:
        d = dict(doc)
        if "app_id" in d:  # written before deployments had several apps
            app_id = d.pop("app_id")
            d["steps"] = [[[action, app_id] for action in step] for step in d["steps"]]
            d["originals"] = {app_id: d.pop("original")}
            d["targets"] = {app_id: d.pop("target")}
        d["steps"] = tuple(tuple((str(a), str(app)) for a, app in step) for step in d["steps"])
        return cls(**d)


@dataclass(frozen=True, slots=True)
class GroupRecord:
    """A group created through ``/v2/groups``: what its apps depend on, and its version."""

    id: str
    dependencies: tuple[str, ...] = ()
    version: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "dependencies": list(self.dependencies), "version": self.version}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> GroupRecord:
        return cls(doc["id"], tuple(doc.get("dependencies") or ()), doc.get("version", ""))


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
