"""Re-checking a plan against a view with the scheduler's own fit function; pure."""

from __future__ import annotations

from pallet.core.fit import why_not
from pallet.core.view import ClusterView
from pallet.model import GPU_MILLI, Placement, Plan, PlanError

__all__ = ["check_placement", "verify"]


def check_placement(view: ClusterView, p: Placement) -> str | None:
    """Why ``p`` cannot be bound on ``view`` now, or None if it can."""
    row = view.row.get(p.node_id)
    if row is None:
        return "node is not in the cluster"
    if p.request_id in view.tasks:
        return "task is already placed"
    reason = why_not(view, p.request, row)
    if reason:
        return reason
    req = p.request
    if len(p.ports) != len(req.ports):
        return "plan assigns a different number of host ports than requested"
    used, ranges = view.ports_used[row], view.port_ranges[row]
    if len(set(p.ports)) != len(p.ports):
        return "plan assigns one host port twice"
    for want, got in zip(req.ports, p.ports, strict=True):
        if (want and want != got) or got in used or not any(got in r for r in ranges):
            return f"host port {got} is not free on the node"
    g = req.resources.gpu_milli
    if sum(m for _, m in p.gpus) != g:
        return "plan's GPU shares do not add up to the request"
    count = int(view.gpu_count[row])
    devices = [d for d, _ in p.gpus]
    if len(set(devices)) != len(devices):
        return "plan uses one GPU device twice"
    for dev, milli in p.gpus:
        if not 0 <= dev < count:
            return f"GPU device {dev} does not exist on the node"
        if g >= GPU_MILLI and milli != GPU_MILLI:
            return "a multi-GPU request must take whole devices"
        if view.gpu_idle[row, dev] < milli:
            return f"GPU device {dev} has only {int(view.gpu_idle[row, dev])} milli idle"
    return None


def verify(plan: Plan, view: ClusterView) -> None:
    """Raise ``PlanError`` at the first placement that does not fit ``view``, binding
    each placement on a copy so later ones see earlier ones. ``view`` is not changed."""
    scratch = view.copy()
    for p in plan.placements:
        reason = check_placement(scratch, p)
        if reason:
            raise PlanError(p.request_id, p.node_id, reason)
        scratch.assume(p)
