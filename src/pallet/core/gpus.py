"""Choosing GPU devices inside one node; pure.

Whole-GPU requests take the lowest-index fully idle devices (every policy, as in the
FGD simulator's ``AllocateExclusiveGpuId``). A share of one GPU goes to the device a
policy picks: ``best_share`` takes the eligible device with the least idle milli.
"""

from __future__ import annotations

import numpy as np

from pallet.core.view import ClusterView
from pallet.model import GPU_MILLI, PlacementRequest

__all__ = ["best_share", "random_share", "whole_devices"]

GpuShares = tuple[tuple[int, int], ...]


def whole_devices(view: ClusterView, req: PlacementRequest, row: int) -> GpuShares:
    k = req.resources.gpu_milli // GPU_MILLI
    idle = view.gpu_idle[row, : view.gpu_count[row]]
    devices = np.flatnonzero(idle == GPU_MILLI)[:k]
    return tuple((int(d), GPU_MILLI) for d in devices)


def best_share(view: ClusterView, req: PlacementRequest, row: int) -> GpuShares:
    """The eligible device with the smallest idle milli; lowest index on ties."""
    m = req.resources.gpu_milli
    idle = view.gpu_idle[row, : view.gpu_count[row]]
    eligible = np.flatnonzero(idle >= m)
    dev = eligible[np.argmin(idle[eligible])]  # argmin keeps the first (lowest index)
    return ((int(dev), m),)


def random_share(
    view: ClusterView, req: PlacementRequest, row: int, rng: np.random.Generator
) -> GpuShares:
    m = req.resources.gpu_milli
    idle = view.gpu_idle[row, : view.gpu_count[row]]
    eligible = np.flatnonzero(idle >= m)
    return ((int(eligible[rng.integers(len(eligible))]), m),)
