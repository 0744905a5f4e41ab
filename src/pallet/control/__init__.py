"""The master's control loops: app controller, scheduling worker, serial applier, node monitor, event bus.

``Control`` assembles them over one ``Store``; the API reads ``Control.state`` and
changes the cluster only through ``Control.apps`` and ``Control.nodes``.
"""

from pallet.control.applier import Applier
from pallet.control.apps import AppService, Change
from pallet.control.bus import (
    AppTerminated,
    DeploymentChanged,
    EventBus,
    HealthChanged,
    HealthCheckFailed,
    ReadinessChanged,
    Subscription,
    TaskChanged,
    UnhealthyKilled,
)
from pallet.control.control import Control, ControlConfig
from pallet.control.deployments import RESTART, SCALE, START, STOP, iso
from pallet.control.errors import (
    AppExists,
    AppLocked,
    AppNotFound,
    ControlError,
    DeploymentNotFound,
    GroupNotFound,
    NodeBusy,
    NodeNotFound,
    NotLeader,
    NotPromotable,
    TaskNotFound,
)
from pallet.control.groups import AppChange, GroupService
from pallet.control.nodes import NodeService
from pallet.control.preview import Preview, preview
from pallet.control.reconcile import AppDecision, backoff_after_failure, reconcile_app
from pallet.control.records import (
    AppRecord,
    BackoffRecord,
    DeploymentRecord,
    GroupRecord,
    NodeRecord,
    RunSpec,
    TaskGoal,
    TaskRecord,
    TaskState,
    node_from_json,
)
from pallet.control.scheduler import SchedulingWorker, task_id_for
from pallet.control.state import ClusterState, NodeLiveness, QueueEntry

__all__ = [
    "RESTART",
    "SCALE",
    "START",
    "STOP",
    "AppChange",
    "AppDecision",
    "AppExists",
    "AppLocked",
    "AppNotFound",
    "AppRecord",
    "AppService",
    "AppTerminated",
    "Applier",
    "BackoffRecord",
    "Change",
    "ClusterState",
    "Control",
    "ControlConfig",
    "ControlError",
    "DeploymentChanged",
    "DeploymentNotFound",
    "DeploymentRecord",
    "EventBus",
    "GroupNotFound",
    "GroupRecord",
    "GroupService",
    "HealthChanged",
    "HealthCheckFailed",
    "NodeBusy",
    "NodeLiveness",
    "NodeNotFound",
    "NodeRecord",
    "NodeService",
    "NotLeader",
    "NotPromotable",
    "Preview",
    "QueueEntry",
    "ReadinessChanged",
    "RunSpec",
    "SchedulingWorker",
    "Subscription",
    "TaskChanged",
    "TaskGoal",
    "TaskNotFound",
    "TaskRecord",
    "TaskState",
    "UnhealthyKilled",
    "backoff_after_failure",
    "iso",
    "node_from_json",
    "preview",
    "reconcile_app",
    "task_id_for",
]
