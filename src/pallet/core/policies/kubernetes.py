"""Kubernetes' default scoring, from ``pkg/scheduler/framework/plugins/noderesources``; pure.

- ``k8s-default``: NodeResourcesFit with the LeastAllocated strategy plus
  NodeResourcesBalancedAllocation, weight 1 each (the default profile), over CPU and
  memory. LeastAllocated per resource: ``(alloc - req) * 100 // alloc`` (integer),
  averaged; BalancedAllocation: ``(1 - std(fractions)) * 100`` truncated, with each
  fraction ``requested / allocatable`` capped at 1.
- ``k8s-most``: NodeResourcesFit MostAllocated: ``req * 100 // alloc`` averaged.

"requested" is what the node has allocated plus this pod's request.
"""

from __future__ import annotations

import numpy as np

from pallet.core.policies.base import FloatArray, Policy
from pallet.core.view import ClusterView, IntArray
from pallet.model import PlacementRequest

__all__ = ["K8sDefault", "K8sMostAllocated"]


def _requested(view: ClusterView, req: PlacementRequest, rows: IntArray) -> tuple[IntArray, ...]:
    cap_cpu = view.cap[rows, 0]
    cap_mem = view.cap[rows, 1]
    used_cpu = cap_cpu - view.free_cpu[rows] + req.resources.cpu_milli
    used_mem = cap_mem - view.free_mem[rows] + req.resources.mem_mib
    return cap_cpu, cap_mem, used_cpu, used_mem


def _least(cap: IntArray, used: IntArray) -> IntArray:
    safe = np.maximum(cap, 1)
    return np.where((cap > 0) & (used <= cap), (cap - used) * 100 // safe, 0)


def _most(cap: IntArray, used: IntArray) -> IntArray:
    safe = np.maximum(cap, 1)
    return np.where((cap > 0) & (used <= cap), used * 100 // safe, 0)


class K8sDefault(Policy):
    """Kubernetes' default: LeastAllocated + BalancedAllocation (spreads)."""

    name = "k8s-default"
    stable_scores = True

    def score(
        self, view: ClusterView, req: PlacementRequest, rows: IntArray, rng: np.random.Generator
    ) -> FloatArray:
        cap_cpu, cap_mem, used_cpu, used_mem = _requested(view, req, rows)
        least = (_least(cap_cpu, used_cpu) + _least(cap_mem, used_mem)) // 2
        f_cpu = np.minimum(used_cpu / np.maximum(cap_cpu, 1), 1.0)
        f_mem = np.minimum(used_mem / np.maximum(cap_mem, 1), 1.0)
        std = np.abs(f_cpu - f_mem) / 2  # population std of two values
        balanced = np.trunc((1.0 - std) * 100)
        return (least + balanced).astype(np.float64)


class K8sMostAllocated(Policy):
    """Kubernetes NodeResourcesFit with the MostAllocated strategy (packs)."""

    name = "k8s-most"
    stable_scores = True

    def score(
        self, view: ClusterView, req: PlacementRequest, rows: IntArray, rng: np.random.Generator
    ) -> FloatArray:
        cap_cpu, cap_mem, used_cpu, used_mem = _requested(view, req, rows)
        return ((_most(cap_cpu, used_cpu) + _most(cap_mem, used_mem)) // 2).astype(np.float64)
