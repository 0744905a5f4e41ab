"""Marathon's ``/v2`` data shapes at the HTTP edge: request models, validation with
Marathon's exact error bodies, conversion to Pallet's pure types and back; pure.

Reading an app::

    body = parse_json_body(raw)            # 400 / 413 as MarathonApiError
    app = read_app(body)                   # 422 "Invalid JSON" (Play codes)
    spec = normalize_app(app)              # 422 "Object is not valid" (Marathon rules)
    run_spec(spec)                         # -> RunSpec (pallet.model.app_run)
    app_json(spec, version)                # -> Marathon's JSON, defaults written out
"""

from pallet.api.marathon.app import AppDefinition, AppUpdate
from pallet.api.marathon.appinfo import (
    AppInfo,
    TaskCounts,
    app_json,
    apply_update,
    rollback_version,
)
from pallet.api.marathon.deployment import (
    ActionName,
    Canary,
    Deployment,
    DeploymentAction,
    DeploymentPlan,
    DeploymentResult,
    DeploymentStep,
    Group,
    ReadinessCheckResult,
    deployment_result_json,
    deployments_json,
)
from pallet.api.marathon.errors import (
    INVALID_JSON,
    MAX_BODY_BYTES,
    OBJECT_NOT_VALID,
    MarathonApiError,
    Violation,
    app_exists,
    app_locked,
    app_not_found,
    from_model_error,
    not_valid,
    parse_json_body,
    shape_error,
    task_not_found,
)
from pallet.api.marathon.events import (
    ApiPostEvent,
    AppTerminatedEvent,
    DeploymentFailedEvent,
    DeploymentInfoEvent,
    DeploymentStepFailureEvent,
    DeploymentStepSuccessEvent,
    DeploymentSuccessEvent,
    EventStreamAttached,
    EventStreamDetached,
    FailedHealthCheckEvent,
    HealthStatusChangedEvent,
    InstanceChangedEvent,
    MarathonEvent,
    ReadinessCheckResultEvent,
    StatusUpdateEvent,
    UnhealthyInstanceKillEvent,
    sse_frame,
)
from pallet.api.marathon.info import InfoSettings, MarathonInfo, info_json, leader_json
from pallet.api.marathon.jsontypes import format_timestamp
from pallet.api.marathon.normalize import normalize_app, read_app, read_update
from pallet.api.marathon.params import parse_bool, parse_embed
from pallet.api.marathon.pathid import canonical_path, is_path_syntax
from pallet.api.marathon.queue import (
    OffersSummary,
    QueueDelay,
    QueueItem,
    offers_summary,
    queue_json,
)
from pallet.api.marathon.specbuild import spec_definition
from pallet.api.marathon.task import (
    HealthResult,
    LocalVolume,
    MarathonTask,
    MesosTaskState,
    TaskView,
    task_failure_json,
    task_json,
    tasks_json,
)
from pallet.model.app import (
    AppSpec,
    KillSelection,
    NetworkMode,
    NetworkSpec,
    PortSpec,
    SecretRef,
    UnreachableSpec,
    UpgradeSpec,
)
from pallet.model.frozen import FrozenMap, freeze, thaw

__all__ = [
    "INVALID_JSON",
    "MAX_BODY_BYTES",
    "OBJECT_NOT_VALID",
    "ActionName",
    "ApiPostEvent",
    "AppDefinition",
    "AppInfo",
    "AppSpec",
    "AppTerminatedEvent",
    "AppUpdate",
    "Canary",
    "Deployment",
    "DeploymentAction",
    "DeploymentFailedEvent",
    "DeploymentInfoEvent",
    "DeploymentPlan",
    "DeploymentResult",
    "DeploymentStep",
    "DeploymentStepFailureEvent",
    "DeploymentStepSuccessEvent",
    "DeploymentSuccessEvent",
    "EventStreamAttached",
    "EventStreamDetached",
    "FailedHealthCheckEvent",
    "FrozenMap",
    "Group",
    "HealthResult",
    "HealthStatusChangedEvent",
    "InfoSettings",
    "InstanceChangedEvent",
    "KillSelection",
    "LocalVolume",
    "MarathonApiError",
    "MarathonEvent",
    "MarathonInfo",
    "MarathonTask",
    "MesosTaskState",
    "NetworkMode",
    "NetworkSpec",
    "OffersSummary",
    "PortSpec",
    "QueueDelay",
    "QueueItem",
    "ReadinessCheckResult",
    "ReadinessCheckResultEvent",
    "SecretRef",
    "StatusUpdateEvent",
    "TaskCounts",
    "TaskView",
    "UnhealthyInstanceKillEvent",
    "UnreachableSpec",
    "UpgradeSpec",
    "Violation",
    "app_exists",
    "app_json",
    "app_locked",
    "app_not_found",
    "apply_update",
    "canonical_path",
    "deployment_result_json",
    "deployments_json",
    "format_timestamp",
    "freeze",
    "from_model_error",
    "info_json",
    "is_path_syntax",
    "leader_json",
    "normalize_app",
    "not_valid",
    "offers_summary",
    "parse_bool",
    "parse_embed",
    "parse_json_body",
    "queue_json",
    "read_app",
    "read_update",
    "rollback_version",
    "shape_error",
    "spec_definition",
    "sse_frame",
    "task_failure_json",
    "task_json",
    "task_not_found",
    "tasks_json",
    "thaw",
]
