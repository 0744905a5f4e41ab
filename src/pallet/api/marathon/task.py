"""Marathon's task JSON (``/v2/tasks``, ``/v2/apps/{id}/tasks``) from a Pallet task record; pure.

Fields follow ``task.raml`` and ``TaskConversion.scala``: ``appId``, ``host``, ``id``,
``state``, ``role`` always; ``ports``, ``servicePorts``, ``ipAddresses``,
``healthCheckResults``, ``localVolumes`` always as arrays; ``slaveId``,
``stagedAt``, ``startedAt``, ``version``, ``region``, ``zone`` when known. Marathon
1.x calls the agent ``slaveId`` in task JSON (``agentId`` only in newer events).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from pallet.api.marathon.jsontypes import MarathonModel, Timestamp

__all__ = [
    "HealthResult",
    "IpAddr",
    "LocalVolume",
    "MarathonTask",
    "MesosTaskState",
    "TaskFailure",
    "TaskHealth",
    "TaskView",
    "task_failure_json",
    "task_json",
    "task_model",
    "tasks_json",
]


class MesosTaskState(enum.StrEnum):
    """The ``state`` values of Marathon's task JSON (``MesosTaskState`` in stringTypes.raml)."""

    TASK_ERROR = "TASK_ERROR"
    TASK_FAILED = "TASK_FAILED"
    TASK_FINISHED = "TASK_FINISHED"
    TASK_KILLED = "TASK_KILLED"
    TASK_KILLING = "TASK_KILLING"
    TASK_RUNNING = "TASK_RUNNING"
    TASK_STAGING = "TASK_STAGING"
    TASK_STARTING = "TASK_STARTING"
    TASK_UNREACHABLE = "TASK_UNREACHABLE"
    TASK_UNKNOWN = "TASK_UNKNOWN"
    TASK_GONE = "TASK_GONE"
    TASK_DROPPED = "TASK_DROPPED"


@dataclass(frozen=True, slots=True)
class HealthResult:
    """One health check's verdict on a task, as the agent reports it."""

    alive: bool
    consecutive_failures: int = 0
    first_success: datetime | None = None
    last_success: datetime | None = None
    last_failure: datetime | None = None
    last_failure_cause: str | None = None


@dataclass(frozen=True, slots=True)
class TaskView:
    """What the API needs to know about one task to render it the Marathon way.

    ``instance_id`` defaults to the task id (Pallet runs one task per instance).
    """

    id: str
    app_id: str
    host: str
    state: MesosTaskState
    role: str = "*"
    agent_id: str | None = None
    host_ports: tuple[int, ...] = ()
    service_ports: tuple[int, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    staged_at: datetime | None = None
    started_at: datetime | None = None
    version: datetime | None = None
    region: str | None = None
    zone: str | None = None
    health: tuple[HealthResult, ...] = ()
    instance_id: str | None = None
    local_volumes: tuple[LocalVolume, ...] = ()


class LocalVolume(MarathonModel):
    """One local persistent volume of a resident task (Marathon's ``LocalVolumeId``)."""

    run_spec_id: str
    container_path: str
    uuid: str
    persistence_id: str


class IpAddr(MarathonModel):
    ip_address: str
    protocol: Literal["IPv4", "IPv6"]


class TaskHealth(MarathonModel):
    alive: bool
    consecutive_failures: int
    first_success: Timestamp | None = None
    instance_id: str
    last_success: Timestamp | None = None
    last_failure: Timestamp | None = None
    last_failure_cause: str | None = None


class MarathonTask(MarathonModel):
    """One task as Marathon 1.x renders it."""

    app_id: str
    health_check_results: list[TaskHealth] = Field(default_factory=list)
    host: str
    id: str
    ip_addresses: list[IpAddr] = Field(default_factory=list)
    ports: list[int] = Field(default_factory=list)
    service_ports: list[int] = Field(default_factory=list)
    slave_id: str | None = None
    state: MesosTaskState
    staged_at: Timestamp | None = None
    started_at: Timestamp | None = None
    version: Timestamp | None = None
    local_volumes: list[LocalVolume] = Field(default_factory=list)
    region: str | None = None
    zone: str | None = None
    role: str


class TaskFailure(MarathonModel):
    """``lastTaskFailure`` of an app."""

    app_id: str
    host: str
    message: str
    state: str
    task_id: str
    timestamp: Timestamp
    version: Timestamp
    slave_id: str | None = None


def task_model(record: TaskView) -> MarathonTask:
    instance = record.instance_id or record.id
    return MarathonTask(
        app_id=record.app_id,
        health_check_results=[
            TaskHealth(
                alive=h.alive,
                consecutive_failures=h.consecutive_failures,
                first_success=h.first_success,
                instance_id=instance,
                last_success=h.last_success,
                last_failure=h.last_failure,
                last_failure_cause=h.last_failure_cause,
            )
            for h in record.health
        ],
        host=record.host,
        id=record.id,
        ip_addresses=[
            IpAddr(ip_address=a, protocol="IPv6" if ":" in a else "IPv4")
            for a in record.ip_addresses
        ],
        ports=list(record.host_ports),
        service_ports=list(record.service_ports),
        slave_id=record.agent_id,
        state=record.state,
        staged_at=record.staged_at,
        started_at=record.started_at,
        version=record.version,
        local_volumes=list(record.local_volumes),
        region=record.region,
        zone=record.zone,
        role=record.role,
    )


def task_json(record: TaskView) -> dict[str, Any]:
    """One task's Marathon JSON."""
    return task_model(record).to_json()


def tasks_json(records: Iterable[TaskView]) -> dict[str, Any]:
    """The body of ``GET /v2/tasks`` and ``GET /v2/apps/{id}/tasks``: ``{"tasks": [...]}``."""
    return {"tasks": [task_json(r) for r in records]}


def task_failure_json(record: TaskView, message: str, timestamp: datetime) -> dict[str, Any]:
    """``lastTaskFailure`` for a task that ended in ``record.state`` at ``timestamp``."""
    if record.version is None:
        raise ValueError(f"task {record.id}: a task failure needs the app version it ran")
    return TaskFailure(
        app_id=record.app_id,
        host=record.host,
        message=message,
        state=record.state.value,
        task_id=record.id,
        timestamp=timestamp,
        version=record.version,
        slave_id=record.agent_id,
    ).to_json()
