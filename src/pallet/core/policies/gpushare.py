"""The GPU-sharing baselines of the FGD paper (Weng et al., ATC'23), as implemented in
hkust-adsl/kubernetes-scheduler-simulator ``pkg/simulator/plugin``; pure.

``MaxSpecCpu`` and ``MaxSpecGpu`` there are the largest node's CPU and GPU milli
(128,000 and 8,000 on the openb cluster); here they are read off the view. On a
cluster with no GPUs the GPU term is replaced by memory so the formulas stay useful.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pallet.core.policies.base import FloatArray, Policy
from pallet.core.view import ClusterView, IntArray, gpu_tag
from pallet.model import GPU_MILLI, PlacementRequest

__all__ = ["BestFit", "DotProd", "GpuClustering", "GpuPacking"]


class _MaxSpec(Policy):
    def __init__(self) -> None:
        self.max_cpu = 1
        self.max_second = 1
        self.second_is_gpu = True

    def prepare(self, view: ClusterView, requests: Sequence[PlacementRequest]) -> None:
        self.max_cpu = max(int(view.cap[:, 0].max(initial=0)), 1)
        max_gpu = int(view.cap[:, 3].max(initial=0))
        self.second_is_gpu = max_gpu > 0
        self.max_second = max(
            max_gpu if self.second_is_gpu else int(view.cap[:, 1].max(initial=0)), 1
        )

    def _second(
        self, view: ClusterView, req: PlacementRequest, rows: IntArray
    ) -> tuple[IntArray, int]:
        if self.second_is_gpu:
            return view.free_gpu[rows], req.resources.gpu_milli
        return view.free_mem[rows], req.resources.mem_mib


class DotProd(_MaxSpec):
    """``02-DotProd`` (dimext=merge, norm=max): the smaller dot product of the node's
    free vector and the request wins: ``trunc(100 (1 - (cpu_free*c/MaxCpu^2 +
    G*g/MaxGpu^2) / 2))``. GPU share: best-fit device."""

    name = "dotprod"
    stable_scores = True

    def score(
        self, view: ClusterView, req: PlacementRequest, rows: IntArray, rng: np.random.Generator
    ) -> FloatArray:
        free2, want2 = self._second(view, req, rows)
        dot = (view.free_cpu[rows] / self.max_cpu) * (req.resources.cpu_milli / self.max_cpu) + (
            free2 / self.max_second
        ) * (want2 / self.max_second)
        return np.trunc(100.0 * (1.0 - dot / 2.0))


class BestFit(_MaxSpec):
    """``05-BestFit``: least resources left after placing, CPU and GPU weighted equally:
    ``trunc(100 (1 - (0.5 (cpu_free - c)/MaxCpu + 0.5 (G - g)/MaxGpu)))``."""

    name = "bestfit"
    stable_scores = True

    def score(
        self, view: ClusterView, req: PlacementRequest, rows: IntArray, rng: np.random.Generator
    ) -> FloatArray:
        free2, want2 = self._second(view, req, rows)
        left = (
            0.5 * (view.free_cpu[rows] - req.resources.cpu_milli) / self.max_cpu
            + 0.5 * (free2 - want2) / self.max_second
        )
        return np.trunc(100.0 * (1.0 - left))


class GpuPacking(Policy):
    """``04-GpuPacking``: prefer, in order, (1) sharing an already shared GPU, scored
    ``max(100 - sum(floor(idle*100/1000))/10, 50)``; (2) idle GPUs on a node already in
    use, ``max(50 - idle devices taken, 33)``; (3) an idle node, ``max(33 - #idle, #idle)``.
    Tasks without GPUs score 0 everywhere."""

    name = "gpu-packing"
    stable_scores = True

    def score(
        self, view: ClusterView, req: PlacementRequest, rows: IntArray, rng: np.random.Generator
    ) -> FloatArray:
        g = req.resources.gpu_milli
        if not g:
            return np.zeros(len(rows))
        full = view.gpu_full[rows]
        count = view.gpu_count[rows]
        all_idle = full == count
        case3 = np.maximum(33 - full, full)
        if g >= GPU_MILLI:
            other = np.full(len(rows), max(50 - g // GPU_MILLI, 33))
        else:
            idle = view.gpu_idle[rows]
            chosen = np.where(idle >= g, idle, GPU_MILLI + 1).min(axis=1)
            shared = np.maximum(100 - (chosen * 100 // GPU_MILLI) // 10, 50)
            other = np.where(chosen == GPU_MILLI, 49, shared)
        return np.where(all_idle, case3, other).astype(np.float64)


class GpuClustering(_MaxSpec):
    """``03-GpuClustering``: keep tasks of one GPU shape together. Base
    ``floor(25 (MaxGpu - G)/MaxGpu)``, plus 75 if the node holds only this shape, 50 if
    it holds this and others, 25 if it holds no GPU task. Tasks without GPUs score 0."""

    name = "gpu-clustering"
    stable_scores = True

    def score(
        self, view: ClusterView, req: PlacementRequest, rows: IntArray, rng: np.random.Generator
    ) -> FloatArray:
        tag = gpu_tag(req.resources.gpu_milli)
        if not tag:
            return np.zeros(len(rows))
        base = 25 * (self.max_second - view.free_gpu[rows]) // self.max_second
        n_tags = np.zeros(len(rows), dtype=np.int64)
        for counts in view.gpu_tag_counts.values():
            n_tags += counts[rows] > 0
        mine = view.gpu_tag_counts.get(tag)
        same = mine[rows] > 0 if mine is not None else np.zeros(len(rows), dtype=bool)
        bonus = np.where(same, np.where(n_tags == 1, 75, 50), np.where(n_tags == 0, 25, 0))
        return (base + bonus).astype(np.float64)
