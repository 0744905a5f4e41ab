"""Policies that need no arithmetic on resources: first-fit and random; pure."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pallet.core.gpus import GpuShares, random_share, whole_devices
from pallet.core.policies.base import FloatArray, Policy
from pallet.core.view import ClusterView, IntArray
from pallet.model import GPU_MILLI, PlacementRequest

__all__ = ["FirstFit", "RandomFit"]


class FirstFit(Policy):
    """Mesos + Marathon: the allocator offers agents in a freshly shuffled order each
    cycle (Mesos' random sorter of agents) and Marathon launches on the first offer
    that fits (``TaskLauncher`` / ``OfferMatcherManager``). One ``schedule`` call is one
    cycle: a fixed shuffled order, first fit within it."""

    name = "first-fit"

    def __init__(self) -> None:
        self._order: IntArray | None = None

    def prepare(self, view: ClusterView, requests: Sequence[PlacementRequest]) -> None:
        self._order = None

    def score(
        self, view: ClusterView, req: PlacementRequest, rows: IntArray, rng: np.random.Generator
    ) -> FloatArray:
        if self._order is None or len(self._order) != len(view):
            self._order = rng.permutation(len(view)).astype(np.int64)
        return -self._order[rows].astype(np.float64)


class RandomFit(Policy):
    """Random-fit (FGD paper's ``01-Random``): any feasible node, uniformly; a GPU
    share goes to a uniformly random eligible device."""

    name = "random"
    cacheable = False

    def score(
        self, view: ClusterView, req: PlacementRequest, rows: IntArray, rng: np.random.Generator
    ) -> FloatArray:
        return rng.random(len(rows))

    def choose_gpus(
        self, view: ClusterView, req: PlacementRequest, row: int, rng: np.random.Generator
    ) -> GpuShares:
        g = req.resources.gpu_milli
        if not g:
            return ()
        if g >= GPU_MILLI:
            return whole_devices(view, req, row)
        return random_share(view, req, row, rng)
