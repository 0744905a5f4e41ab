"""Nomad's scoring, from ``nomad/structs/funcs.go`` and ``scheduler/stack.go``; pure.

``ScoreFitBinPack``: with ``free_cpu`` and ``free_mem`` the fractions of the node left
free *after* the placement, ``20 - (10**free_cpu + 10**free_mem)``, clamped to
[0, 18] and normalised by 18. ``ScoreFitSpread`` is ``10**free_cpu + 10**free_mem - 2``.
Nomad scores only a sample: the generic stack shuffles the nodes and its limit
iterator stops after ``max(2, ceil(log2 N))`` feasible nodes for service jobs.
"""

from __future__ import annotations

import math

import numpy as np

from pallet.core.policies.base import FloatArray, Policy
from pallet.core.view import ClusterView, IntArray
from pallet.model import PlacementRequest

__all__ = ["NomadBinPack", "NomadSpread"]


def _free_fractions(
    view: ClusterView, req: PlacementRequest, rows: IntArray
) -> tuple[FloatArray, FloatArray]:
    cap_cpu = np.maximum(view.cap[rows, 0], 1)
    cap_mem = np.maximum(view.cap[rows, 1], 1)
    free_cpu = (view.free_cpu[rows] - req.resources.cpu_milli) / cap_cpu
    free_mem = (view.free_mem[rows] - req.resources.mem_mib) / cap_mem
    return free_cpu, free_mem


class _NomadSampled(Policy):
    def sample_size(self, n_nodes: int) -> int | None:
        return max(2, math.ceil(math.log2(n_nodes))) if n_nodes > 1 else 2


class NomadBinPack(_NomadSampled):
    """Nomad's default ``binpack`` scheduler algorithm."""

    name = "nomad-binpack"
    stable_scores = True

    def score(
        self, view: ClusterView, req: PlacementRequest, rows: IntArray, rng: np.random.Generator
    ) -> FloatArray:
        free_cpu, free_mem = _free_fractions(view, req, rows)
        raw = 20.0 - (np.power(10.0, free_cpu) + np.power(10.0, free_mem))
        return np.clip(raw, 0.0, 18.0) / 18.0


class NomadSpread(_NomadSampled):
    """Nomad's ``spread`` scheduler algorithm."""

    name = "nomad-spread"
    stable_scores = True

    def score(
        self, view: ClusterView, req: PlacementRequest, rows: IntArray, rng: np.random.Generator
    ) -> FloatArray:
        free_cpu, free_mem = _free_fractions(view, req, rows)
        raw = np.power(10.0, free_cpu) + np.power(10.0, free_mem) - 2.0
        return np.clip(raw, 0.0, 18.0) / 18.0
