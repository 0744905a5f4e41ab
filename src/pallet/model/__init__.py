"""Pure data: resources, nodes, ports, constraints, placement requests and plans."""

from pallet.model.constraints import Constraint, Operator, parse_constraints
from pallet.model.errors import PalletError, PlanError, TraceError, ValidationError
from pallet.model.node import GPU_MILLI, Node, NodeState, field_value
from pallet.model.plan import Placement, Plan, Unplaced
from pallet.model.ports import PortRange, assign_ports, free_port_count, parse_port_ranges
from pallet.model.request import PlacementRequest
from pallet.model.resources import DIMENSIONS, Resources
from pallet.model.task import TERMINAL, TaskState

__all__ = [
    "DIMENSIONS",
    "GPU_MILLI",
    "TERMINAL",
    "Constraint",
    "Node",
    "NodeState",
    "Operator",
    "PalletError",
    "Placement",
    "PlacementRequest",
    "Plan",
    "PlanError",
    "PortRange",
    "Resources",
    "TaskState",
    "TraceError",
    "Unplaced",
    "ValidationError",
    "assign_ports",
    "field_value",
    "free_port_count",
    "parse_constraints",
    "parse_port_ranges",
]
