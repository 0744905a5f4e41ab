"""The one fit function: which nodes can take a request, and why the others cannot; pure.

The scheduler calls ``feasible`` over many rows; the verifier calls ``why_not`` on the
row a plan chose. Both run the same filters in the same order, so they never disagree
on what fits (Nomad's ``AllocsFit`` habit). A node's rejection reason is the first
filter it fails, as the Kubernetes scheduler reports it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from pallet.core.disks import assign_disks
from pallet.core.view import BoolArray, ClusterView, IntArray
from pallet.model import GPU_MILLI, Constraint, Operator, PlacementRequest

__all__ = [
    "NO_NETWORK",
    "NO_VOLUME_DISK",
    "PINNED",
    "constraint_is_local",
    "constraints_hold",
    "feasible",
    "network_reason",
    "rejection_reasons",
    "resources_fit",
    "resources_fit_row",
    "why_not",
]

Rows = IntArray | slice
"""Either row indices or ``slice(None)`` for every row (a view, no copy)."""
Filter = Callable[[ClusterView, PlacementRequest, Rows], "BoolArray | None"]


def _state(view: ClusterView, req: PlacementRequest, rows: Rows) -> BoolArray | None:
    return view.active[rows]


def _role(view: ClusterView, req: PlacementRequest, rows: Rows) -> BoolArray | None:
    if len(view.roles) == 1 and "*" in req.accepted_roles:
        return None  # every node is unreserved and the request takes unreserved resources
    allowed = np.array([r in req.accepted_roles for r in view.roles], dtype=bool)
    return allowed[view.role[rows]]


def _cpu(view: ClusterView, req: PlacementRequest, rows: Rows) -> BoolArray | None:
    return view.free_cpu[rows] >= req.resources.cpu_milli if req.resources.cpu_milli else None


def _mem(view: ClusterView, req: PlacementRequest, rows: Rows) -> BoolArray | None:
    return view.free_mem[rows] >= req.resources.mem_mib if req.resources.mem_mib else None


def _disk(view: ClusterView, req: PlacementRequest, rows: Rows) -> BoolArray | None:
    return view.free_disk[rows] >= req.resources.disk_mib if req.resources.disk_mib else None


def _gpu_model(view: ClusterView, req: PlacementRequest, rows: Rows) -> BoolArray | None:
    if not req.gpu_models or not req.resources.gpu_milli:
        return None
    allowed = np.array(
        [m in req.gpu_models for m in view.gpu_models] + [False], dtype=bool
    )  # the extra False answers code -1 (no GPU model)
    return allowed[view.gpu_model[rows]]


def _gpus(view: ClusterView, req: PlacementRequest, rows: Rows) -> BoolArray | None:
    g = req.resources.gpu_milli
    if not g:
        return None
    if g < GPU_MILLI:
        return view.gpu_maxidle[rows] >= g
    return view.gpu_full[rows] >= g // GPU_MILLI


def _ports(view: ClusterView, req: PlacementRequest, rows: Rows) -> BoolArray | None:
    if not req.ports:
        return None
    ok = view.port_free[rows] >= len(req.ports)
    fixed = [p for p in req.ports if p]
    if not fixed:
        return ok
    if isinstance(rows, int | np.integer):
        return ok and _fixed_ports_free(view, int(rows), fixed)
    if isinstance(rows, slice):
        rows = np.arange(len(view), dtype=np.int64)
    for k, r in enumerate(rows):
        if ok[k]:
            ok[k] = _fixed_ports_free(view, int(r), fixed)
    return ok


def _fixed_ports_free(view: ClusterView, row: int, fixed: list[int]) -> bool:
    used = view.ports_used[row]
    ranges = view.port_ranges[row]
    return all(p not in used and any(p in rg for rg in ranges) for p in fixed)


def _networks(view: ClusterView, req: PlacementRequest, rows: Rows) -> BoolArray | None:
    """Nodes whose agent has every container network the request joins."""
    if not req.networks:
        return None
    wanted = set(req.networks)
    if isinstance(rows, int | np.integer):
        return np.bool_(wanted <= set(view.nodes[int(rows)].networks))
    nodes = view.nodes if isinstance(rows, slice) else [view.nodes[int(r)] for r in rows]
    return np.array([wanted <= set(n.networks) for n in nodes], dtype=bool)


def _volume_disks(view: ClusterView, req: PlacementRequest, rows: Rows) -> BoolArray | None:
    """Nodes with operator disks that hold the request's path and mount volumes."""
    if not req.volume_disks:
        return None

    def fits(row: int) -> bool:
        found = assign_disks(view.nodes[row].disks, view.disk_used[row], req.volume_disks)
        return found is not None

    if isinstance(rows, int | np.integer):
        return np.bool_(fits(int(rows)))
    index = range(len(view)) if isinstance(rows, slice) else (int(r) for r in rows)
    return np.array([fits(r) for r in index], dtype=bool)


NO_VOLUME_DISK = "no path or mount disk with room"


NO_NETWORK = "container network not on node"
"""The filter's reason; ``rejection_reasons`` and ``why_not`` name the networks."""


def network_reason(req: PlacementRequest) -> str:
    """``container network dcos not on node``: the reason naming what was asked."""
    return f"container network {','.join(req.networks)} not on node"


PINNED = "persistent volumes on another node"
"""Why a node is refused to a task pinned to another (its instance slot's volumes)."""


def _pinned(view: ClusterView, req: PlacementRequest, rows: Rows) -> BoolArray | None:
    """Only the node a resident task's volumes are on; applied like a constraint (on top
    of the cached resource masks, which do not depend on the request's pin)."""
    if req.node_id is None:
        return None
    target = view.row.get(req.node_id, -1)
    if isinstance(rows, int | np.integer):
        return np.bool_(int(rows) == target)
    index = np.arange(len(view), dtype=np.int64)[rows]
    return index == target


_FILTERS: tuple[tuple[str, Filter], ...] = (
    ("role not accepted", _role),
    ("node not active", _state),
    (NO_NETWORK, _networks),
    ("insufficient cpus", _cpu),
    ("insufficient mem", _mem),
    ("insufficient disk", _disk),
    (NO_VOLUME_DISK, _volume_disks),
    ("GPU model not allowed", _gpu_model),
    ("insufficient gpus", _gpus),
    ("host ports unavailable", _ports),
)


# --------------------------------------------------------------------------- constraints


def constraint_is_local(c: Constraint, view: ClusterView) -> bool:
    """True if placing a task on a node can change this constraint's verdict only for
    nodes sharing that node's field value *and* that value is unique per node, so the
    scheduler may re-check just the node it placed on."""
    if c.operator in (Operator.LIKE, Operator.UNLIKE, Operator.IS, Operator.IN):
        return True
    if c.operator in (Operator.UNIQUE, Operator.MAX_PER):
        return view.field(c.field).unique
    return False


def _constraint_mask(view: ClusterView, app_id: str, c: Constraint, rows: Rows) -> BoolArray:
    index = view.field(c.field)
    codes = index.codes[rows]
    present = codes >= 0
    op = c.operator
    if op in (Operator.LIKE, Operator.UNLIKE):
        pattern = re.compile(c.value)
        matches = np.array(
            [pattern.fullmatch(v) is not None for v in index.values] + [False], dtype=bool
        )
        hit = matches[codes]
        return (present & hit) if op is Operator.LIKE else ~(present & hit)
    if op is Operator.IS:
        code = index.lookup.get(c.value, -2)
        return codes == code
    if op is Operator.IN:
        wanted = {v.strip() for v in c.value.split(",")}
        allowed = np.array([v in wanted for v in index.values] + [False], dtype=bool)
        return present & allowed[codes]

    if index.unique and op in (Operator.UNIQUE, Operator.MAX_PER):
        # One node per value: the tasks with this node's value are the node's own.
        here = view.app_count(app_id, rows)
        if op is Operator.UNIQUE:
            return present & (here == 0)
        return present & (here < int(c.value))
    counts = view.app_count(app_id)
    per_value = _tasks_per_value(index.codes, counts, len(index.values))
    here = np.where(present, per_value[np.maximum(codes, 0)], 0)
    if op is Operator.UNIQUE:
        return present & (here == 0)
    if op is Operator.MAX_PER:
        return present & (here < int(c.value))
    if op is Operator.CLUSTER:
        if c.value:
            return codes == index.lookup.get(c.value, -2)
        if not counts.any():
            return present
        # All placed tasks share one value when the constraint held all along; if an
        # update added it later, follow the value most of the app already has.
        target = int(np.argmax(per_value))
        return codes == target
    if op is Operator.GROUP_BY:
        # Tasks on nodes without the field form a group of their own (Marathon's None key).
        missing_group = int(counts[index.codes < 0].sum())
        sizes = [int(x) for x in per_value[per_value > 0]] + (
            [missing_group] if missing_group else []
        )
        if not sizes:
            return present
        enough_groups = len(sizes) >= c.group_minimum
        return present & ((here == 0) | (enough_groups & (here == min(sizes))))
    raise AssertionError(f"unhandled operator {op}")  # pragma: no cover


def _tasks_per_value(codes: npt.NDArray[np.int64], counts: IntArray, n_values: int) -> IntArray:
    sel = codes >= 0
    return np.bincount(codes[sel], weights=counts[sel], minlength=n_values).astype(np.int64)


# --------------------------------------------------------------------------- public


def _all_rows(view: ClusterView) -> IntArray:
    return np.arange(len(view), dtype=np.int64)


def _count(view: ClusterView, rows: Rows) -> int:
    return len(view) if isinstance(rows, slice) else len(rows)


def resources_fit(view: ClusterView, req: PlacementRequest, rows: Rows | None = None) -> BoolArray:
    """Whether ``req``'s resources, GPU model and ports fit each of ``rows`` (default:
    every node), ignoring constraints: the part that does not depend on the app."""
    sel: Rows = slice(None) if rows is None else rows
    ok = np.ones(_count(view, sel), dtype=bool)
    for _, check in _FILTERS:
        mask = check(view, req, sel)
        if mask is not None:
            ok &= mask
    return ok


def constraints_hold(
    view: ClusterView, req: PlacementRequest, rows: Rows | None = None
) -> BoolArray:
    """Whether every constraint of ``req`` holds on each of ``rows`` (default: every node)."""
    sel: Rows = slice(None) if rows is None else rows
    ok = np.ones(_count(view, sel), dtype=bool)
    pin = _pinned(view, req, sel)
    if pin is not None:
        ok &= pin
    for c in req.constraints:
        ok &= _constraint_mask(view, req.app_id, c, sel)
    return ok


def feasible(view: ClusterView, req: PlacementRequest, rows: Rows | None = None) -> BoolArray:
    """For each of ``rows`` (default: every node), whether ``req`` fits there now."""
    ok = resources_fit(view, req, rows)
    if req.constraints or req.node_id is not None:
        ok &= constraints_hold(view, req, rows)
    return ok


def rejection_reasons(view: ClusterView, req: PlacementRequest) -> list[tuple[str, int]]:
    """Per-node reasons ``req`` fits nowhere: the first failed filter of each node,
    counted, most common first (ties by name)."""
    rows = _all_rows(view)
    undecided = np.ones(len(rows), dtype=bool)
    counts: Counter[str] = Counter()
    checks: list[tuple[str, BoolArray]] = []
    pin = _pinned(view, req, rows)
    if pin is not None:
        checks.append((PINNED, pin))
    for reason, check in _FILTERS:
        mask = check(view, req, rows)
        if mask is not None:
            checks.append((network_reason(req) if reason == NO_NETWORK else reason, mask))
    for c in req.constraints:
        checks.append((f"constraint {c}", _constraint_mask(view, req.app_id, c, rows)))
    for reason, mask in checks:
        failed = undecided & ~mask
        n = int(failed.sum())
        if n:
            counts[reason] += n
            undecided &= mask
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def resources_fit_row(view: ClusterView, req: PlacementRequest, row: int) -> bool:
    """``resources_fit`` for one row, on scalars (the same filters, cheaper)."""
    for _, check in _FILTERS:
        ok = check(view, req, row)  # type: ignore[arg-type]
        if ok is not None and not ok:
            return False
    return True


def why_not(view: ClusterView, req: PlacementRequest, row: int) -> str | None:
    """The first reason ``req`` does not fit on ``row``, or None if it fits."""
    pin = _pinned(view, req, row)  # type: ignore[arg-type]
    if pin is not None and not pin:
        return PINNED
    for reason, check in _FILTERS:
        ok = check(view, req, row)  # type: ignore[arg-type]
        if ok is not None and not ok:
            return network_reason(req) if reason == NO_NETWORK else reason
    rows = np.array([row], dtype=np.int64)
    for c in req.constraints:
        if not _constraint_mask(view, req.app_id, c, rows)[0]:
            return f"constraint {c}"
    return None
