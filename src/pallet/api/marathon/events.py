"""The payloads of Marathon's event stream (``GET /v2/events``) and their SSE frames; pure.

Field sets follow ``core/event/Events.scala`` and the writers in
``api/v2/json/Formats.scala``. Every event has ``eventType`` and ``timestamp``;
the stream frames each as ``event: <eventType>\\ndata: <json>\\n\\n``. Deployment
events carry a ``plan`` with the before/after groups (see ``deployment.py``).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Literal

from pydantic import Field

from pallet.api.marathon.deployment import DeploymentPlan, DeploymentStep
from pallet.api.marathon.jsontypes import MarathonModel, Timestamp
from pallet.api.marathon.task import IpAddr, MesosTaskState

__all__ = [
    "ApiPostEvent",
    "AppTerminatedEvent",
    "DeploymentFailedEvent",
    "DeploymentInfoEvent",
    "DeploymentStepFailureEvent",
    "DeploymentStepSuccessEvent",
    "DeploymentSuccessEvent",
    "EventStreamAttached",
    "EventStreamDetached",
    "FailedHealthCheckEvent",
    "HealthStatusChangedEvent",
    "InstanceChangedEvent",
    "MarathonEvent",
    "PodCreatedEvent",
    "PodDeletedEvent",
    "PodUpdatedEvent",
    "ReadinessCheckResultEvent",
    "StatusUpdateEvent",
    "UnhealthyInstanceKillEvent",
    "sse_frame",
]


class MarathonEvent(MarathonModel):
    """Base of every event: its type name and when it happened."""

    event_type: str
    timestamp: Timestamp
    type_name: ClassVar[str] = ""

    def __init__(self, **data: Any) -> None:
        data.setdefault("event_type", self.type_name)
        super().__init__(**data)


class ApiPostEvent(MarathonEvent):
    """An app was created or changed through the API; ``app_definition`` is its JSON."""

    type_name: ClassVar[str] = "api_post_event"
    event_type: Literal["api_post_event"]
    client_ip: str
    uri: str
    app_definition: dict[str, Any]


class _PodEvent(MarathonEvent):
    """A pod was created, replaced or deleted through the API: who asked, and the URI
    (Marathon's ``PodEvent``: nothing more)."""

    client_ip: str
    uri: str


class PodCreatedEvent(_PodEvent):
    type_name: ClassVar[str] = "pod_created_event"
    event_type: Literal["pod_created_event"]


class PodUpdatedEvent(_PodEvent):
    type_name: ClassVar[str] = "pod_updated_event"
    event_type: Literal["pod_updated_event"]


class PodDeletedEvent(_PodEvent):
    type_name: ClassVar[str] = "pod_deleted_event"
    event_type: Literal["pod_deleted_event"]


class StatusUpdateEvent(MarathonEvent):
    """A task changed state (Mesos ``TaskStatus``)."""

    type_name: ClassVar[str] = "status_update_event"
    event_type: Literal["status_update_event"]
    slave_id: str
    task_id: str
    task_status: MesosTaskState
    message: str = ""
    app_id: str
    host: str
    ip_addresses: list[IpAddr] = Field(default_factory=list)
    ports: list[int] = Field(default_factory=list)
    version: Timestamp


class InstanceChangedEvent(MarathonEvent):
    """An instance's condition changed (``Running``, ``Killed`` ...)."""

    type_name: ClassVar[str] = "instance_changed_event"
    event_type: Literal["instance_changed_event"]
    instance_id: str
    condition: str
    run_spec_id: str
    agent_id: str | None = None
    host: str
    run_spec_version: Timestamp


class AppTerminatedEvent(MarathonEvent):
    type_name: ClassVar[str] = "app_terminated_event"
    event_type: Literal["app_terminated_event"]
    app_id: str


class DeploymentSuccessEvent(MarathonEvent):
    type_name: ClassVar[str] = "deployment_success"
    event_type: Literal["deployment_success"]
    id: str
    plan: DeploymentPlan


class DeploymentFailedEvent(MarathonEvent):
    type_name: ClassVar[str] = "deployment_failed"
    event_type: Literal["deployment_failed"]
    id: str
    plan: DeploymentPlan
    reason: str | None = None


class DeploymentInfoEvent(MarathonEvent):
    """A deployment moved to ``current_step``."""

    type_name: ClassVar[str] = "deployment_info"
    event_type: Literal["deployment_info"]
    plan: DeploymentPlan
    current_step: DeploymentStep


class DeploymentStepSuccessEvent(MarathonEvent):
    type_name: ClassVar[str] = "deployment_step_success"
    event_type: Literal["deployment_step_success"]
    plan: DeploymentPlan
    current_step: DeploymentStep


class DeploymentStepFailureEvent(MarathonEvent):
    type_name: ClassVar[str] = "deployment_step_failure"
    event_type: Literal["deployment_step_failure"]
    plan: DeploymentPlan
    current_step: DeploymentStep


class FailedHealthCheckEvent(MarathonEvent):
    """A health check failed; Marathon puts the instance id in ``taskId``."""

    type_name: ClassVar[str] = "failed_health_check_event"
    event_type: Literal["failed_health_check_event"]
    app_id: str
    health_check: dict[str, Any]
    task_id: str


class HealthStatusChangedEvent(MarathonEvent):
    type_name: ClassVar[str] = "health_status_changed_event"
    event_type: Literal["health_status_changed_event"]
    app_id: str
    instance_id: str
    version: Timestamp
    alive: bool


class UnhealthyInstanceKillEvent(MarathonEvent):
    type_name: ClassVar[str] = "unhealthy_instance_kill_event"
    event_type: Literal["unhealthy_instance_kill_event"]
    app_id: str
    task_id: str
    instance_id: str
    version: Timestamp
    reason: str
    host: str
    slave_id: str | None = None


class ReadinessCheckResultEvent(MarathonEvent):
    """A task's readiness check answered differently than before (Pallet's; Marathon
    shows the same results only in ``/v2/deployments``)."""

    type_name: ClassVar[str] = "readiness_check_result"
    event_type: Literal["readiness_check_result"]
    app_id: str
    task_id: str
    version: Timestamp
    readiness_check_result: dict[str, Any]


class EventStreamAttached(MarathonEvent):
    type_name: ClassVar[str] = "event_stream_attached"
    event_type: Literal["event_stream_attached"]
    remote_address: str


class EventStreamDetached(MarathonEvent):
    type_name: ClassVar[str] = "event_stream_detached"
    event_type: Literal["event_stream_detached"]
    remote_address: str


def sse_frame(event: MarathonEvent) -> bytes:
    """One server-sent-events frame, as Marathon's stream writes it."""
    payload = json.dumps(event.to_json(), separators=(",", ":"))
    return f"event: {event.event_type}\ndata: {payload}\n\n".encode()
