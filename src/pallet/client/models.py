"""What the client returns: small frozen dataclasses read from Marathon's and Pallet's JSON; pure.

Units stay those of the API (``cpus`` as a float, ``mem`` and ``disk`` in MiB). Each
object keeps the JSON it was read from in ``raw`` (left out of equality and repr), so
``--json`` output is exactly what the master said.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pallet.client.errors import ProtocolError
from pallet.client.reader import Fields

__all__ = [
    "LIVE_TASK_STATES",
    "App",
    "Deployment",
    "DeploymentRef",
    "Info",
    "KillResult",
    "LogChunk",
    "Node",
    "NodeDetail",
    "NodeResources",
    "QueueItem",
    "RejectCount",
    "Task",
    "TaskFailure",
]

LIVE_TASK_STATES = frozenset(
    {"TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING", "TASK_UNREACHABLE"}
)
"""Mesos task states of a task that has not ended (it may still write to its log)."""


def _raw() -> Any:
    return field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Task:
    """One instance of an app on one node (Marathon's task JSON)."""

    id: str
    app_id: str
    state: str
    host: str
    node_id: str | None = None
    ports: tuple[int, ...] = ()
    staged_at: datetime | None = None
    started_at: datetime | None = None
    version: str | None = None
    raw: Mapping[str, Any] = _raw()

    @property
    def live(self) -> bool:
        return self.state in LIVE_TASK_STATES

    @classmethod
    def from_json(cls, doc: object, where: str = "task") -> Task:
        f = Fields(doc, where)
        return cls(
            id=f.string("id"),
            app_id=f.string("appId"),
            state=f.string("state"),
            host=f.opt_string("host", "") or "",
            node_id=f.opt_string("slaveId"),
            ports=tuple(int(p) for p in f.array("ports")),
            staged_at=f.time("stagedAt"),
            started_at=f.time("startedAt"),
            version=f.opt_string("version"),
            raw=f.doc,
        )


@dataclass(frozen=True, slots=True)
class TaskFailure:
    """``lastTaskFailure``: how the app's most recent failed task ended."""

    task_id: str
    state: str
    message: str
    host: str
    timestamp: datetime | None

    @classmethod
    def from_json(cls, doc: object, where: str) -> TaskFailure:
        f = Fields(doc, where)
        return cls(
            task_id=f.string("taskId"),
            state=f.string("state"),
            message=f.opt_string("message", "") or "",
            host=f.opt_string("host", "") or "",
            timestamp=f.time("timestamp"),
        )


@dataclass(frozen=True, slots=True)
class App:
    """A Marathon app. The counts are None when the master was not asked to embed them."""

    id: str
    instances: int
    cpus: float
    mem: float
    disk: float = 0.0
    gpus: float = 0.0
    cmd: str | None = None
    args: tuple[str, ...] = ()
    role: str | None = None
    version: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    constraints: tuple[tuple[str, ...], ...] = ()
    tasks_running: int | None = None
    tasks_staged: int | None = None
    tasks_healthy: int | None = None
    tasks_unhealthy: int | None = None
    deployment_ids: tuple[str, ...] = ()
    tasks: tuple[Task, ...] = ()
    last_task_failure: TaskFailure | None = None
    raw: Mapping[str, Any] = _raw()

    @property
    def deploying(self) -> bool:
        return bool(self.deployment_ids)

    @property
    def command(self) -> str:
        """What the app runs: its ``cmd``, or its ``args`` joined, or ``""``."""
        return self.cmd if self.cmd is not None else " ".join(self.args)

    @classmethod
    def from_json(cls, doc: object, where: str = "app") -> App:
        f = Fields(doc, where)
        failure = f.doc.get("lastTaskFailure")
        return cls(
            id=f.string("id"),
            instances=f.integer("instances", 1),
            cpus=f.number("cpus", 1.0),
            mem=f.number("mem", 128.0),
            disk=f.number("disk", 0.0),
            gpus=f.number("gpus", 0.0),
            cmd=f.opt_string("cmd"),
            args=f.strings("args"),
            role=f.opt_string("role"),
            version=f.opt_string("version"),
            labels=f.mapping("labels"),
            constraints=tuple(
                tuple(str(part) for part in c)
                for c in f.array("constraints")
                if isinstance(c, list)
            ),
            tasks_running=f.opt_integer("tasksRunning"),
            tasks_staged=f.opt_integer("tasksStaged"),
            tasks_healthy=f.opt_integer("tasksHealthy"),
            tasks_unhealthy=f.opt_integer("tasksUnhealthy"),
            deployment_ids=tuple(d.string("id") for d in f.objs("deployments")),
            tasks=tuple(Task.from_json(t.doc, t.where) for t in f.objs("tasks")),
            last_task_failure=None
            if failure is None
            else TaskFailure.from_json(failure, f"{where}.lastTaskFailure"),
            raw=f.doc,
        )


@dataclass(frozen=True, slots=True)
class DeploymentRef:
    """The answer to a change that started a deployment: ``{"deploymentId", "version"}``."""

    deployment_id: str
    version: str
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, doc: object, where: str = "deployment result") -> DeploymentRef:
        f = Fields(doc, where)
        return cls(f.string("deploymentId"), f.opt_string("version", "") or "", raw=f.doc)


@dataclass(frozen=True, slots=True)
class Deployment:
    """A running deployment (``GET /v2/deployments``); ``current_step`` counts from 1."""

    id: str
    version: str
    affected_apps: tuple[str, ...]
    current_step: int
    total_steps: int
    current_actions: tuple[tuple[str, str], ...] = ()
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, doc: object, where: str = "deployment") -> Deployment:
        f = Fields(doc, where)
        return cls(
            id=f.string("id"),
            version=f.opt_string("version", "") or "",
            affected_apps=(*f.strings("affectedApps"), *f.strings("affectedPods")),
            current_step=f.integer("currentStep", 0),
            total_steps=f.integer("totalSteps", 0),
            current_actions=tuple(
                (a.string("action"), a.opt_string("app", "") or a.opt_string("pod", "") or "")
                for a in f.objs("currentActions")
            ),
            raw=f.doc,
        )


@dataclass(frozen=True, slots=True)
class RejectCount:
    """One step of the queue's reject funnel: ``declined`` of ``processed`` nodes, and why."""

    reason: str
    declined: int
    processed: int


@dataclass(frozen=True, slots=True)
class QueueItem:
    """An app (or a pod: Marathon's queue names it ``pod``) with ``count`` instances
    waiting to be placed, and why nodes turned them down."""

    app_id: str
    count: int
    delay_seconds: int
    overdue: bool
    since: datetime | None
    nodes_considered: int
    rejections: tuple[RejectCount, ...] = ()
    raw: Mapping[str, Any] = _raw()

    @property
    def reasons(self) -> tuple[RejectCount, ...]:
        """Only the funnel steps that turned a node down."""
        return tuple(r for r in self.rejections if r.declined > 0)

    @classmethod
    def from_json(cls, doc: object, where: str = "queue item") -> QueueItem:
        f = Fields(doc, where)
        delay = f.obj("delay")
        summary = f.obj("processedOffersSummary")
        return cls(
            app_id=f.obj("pod" if "pod" in f.doc and "app" not in f.doc else "app").string("id"),
            count=f.integer("count"),
            delay_seconds=delay.integer("timeLeftSeconds", 0),
            overdue=delay.boolean("overdue"),
            since=f.time("since"),
            nodes_considered=summary.integer("processedOffersCount", 0),
            rejections=tuple(
                RejectCount(r.string("reason"), r.integer("declined"), r.integer("processed"))
                for r in summary.objs("rejectSummaryLastOffers")
            ),
            raw=f.doc,
        )


@dataclass(frozen=True, slots=True)
class NodeResources:
    """A node's resources in API units; ``ports`` as ranges such as ``31000-32000``."""

    cpus: float = 0.0
    mem: float = 0.0
    disk: float = 0.0
    gpus: float = 0.0
    ports: tuple[str, ...] = ()

    @classmethod
    def from_fields(cls, f: Fields) -> NodeResources:
        return cls(
            cpus=f.number("cpus", 0.0),
            mem=f.number("mem", 0.0),
            disk=f.number("disk", 0.0),
            gpus=f.number("gpus", 0.0),
            ports=f.strings("ports"),
        )


@dataclass(frozen=True, slots=True)
class Node:
    """One machine as ``GET /v1/nodes`` shows it: what it has, what is promised, what is used."""

    id: str
    hostname: str
    state: str
    capacity: NodeResources
    allocated: NodeResources
    used: NodeResources
    attributes: Mapping[str, str] = field(default_factory=dict)
    gpu_model: str | None = None
    task_ids: tuple[str, ...] = ()
    role: str = "*"
    last_heartbeat: datetime | None = None
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, doc: object, where: str = "node") -> Node:
        f = Fields(doc, where)
        return cls(**_node_fields(f))


def _node_fields(f: Fields) -> dict[str, Any]:
    return {
        "id": f.string("id"),
        "hostname": f.opt_string("hostname", "") or "",
        "state": f.opt_string("state", "") or "",
        "capacity": NodeResources.from_fields(f.obj("capacity")),
        "allocated": NodeResources.from_fields(f.obj("allocated")),
        "used": NodeResources.from_fields(f.obj("used")),
        "attributes": f.mapping("attributes"),
        "gpu_model": f.opt_string("gpu_model") or None,
        "role": f.opt_string("role") or "*",
        "task_ids": f.strings("tasks"),
        "last_heartbeat": f.time("last_heartbeat"),
        "raw": f.doc,
    }


@dataclass(frozen=True, slots=True)
class NodeDetail:
    """``GET /v1/nodes/{id}``: the node and the Marathon JSON of its tasks."""

    node: Node
    tasks: tuple[Task, ...]
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, doc: object, where: str = "node") -> NodeDetail:
        f = Fields(doc, where)
        tasks = tuple(Task.from_json(t.doc, t.where) for t in f.objs("task_details"))
        return cls(Node(**_node_fields(f)), tasks, raw=f.doc)


@dataclass(frozen=True, slots=True)
class KillResult:
    """What killing tasks did: the tasks killed, or the deployment that scaled the app down."""

    tasks: tuple[Task, ...] = ()
    deployment: DeploymentRef | None = None


@dataclass(frozen=True, slots=True)
class Info:
    """``GET /v2/info``: who the master is."""

    name: str
    version: str
    leader: str | None
    elected: bool
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, doc: object, where: str = "info") -> Info:
        f = Fields(doc, where)
        return cls(
            name=f.opt_string("name", "") or "",
            version=f.opt_string("version", "") or "",
            leader=f.opt_string("leader"),
            elected=f.boolean("elected"),
            raw=f.doc,
        )


@dataclass(frozen=True, slots=True)
class LogChunk:
    """Bytes of a task's log read from ``offset``; the next read starts at ``next_offset``.
    ``size`` is the log's length at the read, when the master says it."""

    data: bytes
    offset: int
    next_offset: int
    size: int | None = None

    @classmethod
    def from_json(cls, doc: object, requested: int, where: str = "log") -> LogChunk:
        """The JSON form ``{"data", "offset", "next_offset", "size"}`` (as Mesos'
        ``/files/read``); ``data`` is text, or base64 when ``"encoding": "base64"``."""
        f = Fields(doc, where)
        text = f.string("data")
        if f.opt_string("encoding") == "base64":
            try:
                data = base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError):
                raise ProtocolError(f"{where}.data: expected base64 text") from None
        else:
            data = text.encode()
        offset = f.integer("offset", max(requested, 0))
        return cls(
            data, offset, f.integer("next_offset", offset + len(data)), f.opt_integer("size")
        )
