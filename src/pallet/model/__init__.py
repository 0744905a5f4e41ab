"""Pure data: resources, nodes, ports, constraints, placement requests, plans, and the
master–agent messages."""

from pallet.model.checks import (
    CheckProtocol,
    HealthCheckSpec,
    HealthResult,
    HttpResponse,
    ReadinessCheckSpec,
    ReadinessResult,
)
from pallet.model.constraints import Constraint, Operator, parse_constraints
from pallet.model.errors import PalletError, PlanError, TraceError, ValidationError
from pallet.model.messages import (
    ContainerPort,
    ContainerSpec,
    DesiredSet,
    FetchUri,
    PersistentVolume,
    TaskSpec,
    VolumeSpec,
    check_task_id,
)
from pallet.model.node import GPU_MILLI, Node, NodeDisk, NodeState, field_value
from pallet.model.plan import Placement, Plan, Unplaced
from pallet.model.ports import PortRange, assign_ports, free_port_count, parse_port_ranges
from pallet.model.reports import Acks, Heartbeat, Registration, StatusBatch, TaskStatus, TaskUsage
from pallet.model.request import PlacementRequest, VolumeNeed
from pallet.model.resources import DIMENSIONS, Resources
from pallet.model.task import TERMINAL, Reason, TaskState

__all__ = [
    "DIMENSIONS",
    "GPU_MILLI",
    "TERMINAL",
    "Acks",
    "CheckProtocol",
    "Constraint",
    "ContainerPort",
    "ContainerSpec",
    "DesiredSet",
    "FetchUri",
    "HealthCheckSpec",
    "HealthResult",
    "Heartbeat",
    "HttpResponse",
    "Node",
    "NodeDisk",
    "NodeState",
    "Operator",
    "PalletError",
    "PersistentVolume",
    "Placement",
    "PlacementRequest",
    "Plan",
    "PlanError",
    "PortRange",
    "ReadinessCheckSpec",
    "ReadinessResult",
    "Reason",
    "Registration",
    "Resources",
    "StatusBatch",
    "TaskSpec",
    "TaskState",
    "TaskStatus",
    "TaskUsage",
    "TraceError",
    "Unplaced",
    "ValidationError",
    "VolumeNeed",
    "VolumeSpec",
    "assign_ports",
    "check_task_id",
    "field_value",
    "free_port_count",
    "parse_constraints",
    "parse_port_ranges",
]
