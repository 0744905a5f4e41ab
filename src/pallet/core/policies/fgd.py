"""``06-FGD``: Fragmentation Gradient Descent (Weng et al., "Beware of Fragmentation",
USENIX ATC 2023; ``fgd_score.go`` and ``pkg/utils/frag.go`` of the simulator); pure.

The node whose fragment grows least wins: ``trunc(100 sigmoid((F(n) - F(n'))/1000))``,
where ``F`` is measured against the workload's typical shapes (``core.frag``). A GPU
share tries every eligible device and keeps the best truncated score; the device
chosen is the lowest-index one reaching it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pallet.core.frag import CompiledWorkload, Workload, distinct_states
from pallet.core.gpus import GpuShares
from pallet.core.policies.base import FloatArray, Policy
from pallet.core.view import ClusterView, IntArray
from pallet.model import GPU_MILLI, PlacementRequest

__all__ = ["FGD"]


_FEW = 4
"""Up to this many rows are scored as they are; more are first reduced to their
distinct states (idle nodes of one shape look alike)."""


def _sigmoid(x: FloatArray) -> FloatArray:
    return 1.0 / (1.0 + np.exp(-x))


class FGD(Policy):
    """FGD with a fixed workload (the paper uses the original trace's pod specs);
    without one it learns the typical shapes from the requests it is given."""

    name = "fgd"

    def __init__(self, workload: Workload | None = None) -> None:
        self.workload = workload
        self._compiled: CompiledWorkload | None = None
        self._compiled_for: tuple[int, int] = (-1, -1)
        # A node's score depends only on that node, the request and the workload: with
        # the workload fixed, cached scores stay valid from one call to the next.
        self._fixed = workload is not None

    def prepare(self, view: ClusterView, requests: Sequence[PlacementRequest]) -> None:
        workload = self.workload if self.workload is not None else Workload.from_requests(requests)
        key = (id(workload), len(view.gpu_models))
        if self._compiled is None or key != self._compiled_for:
            self._compiled = workload.compile(view)
            self._compiled_for = key
        if self.workload is None:
            self.workload = workload
        self.stable_scores = self._fixed and len(view.gpu_models) == self._compiled_for[1]

    def _device_scores(
        self, view: ClusterView, req: PlacementRequest, rows: IntArray
    ) -> FloatArray:
        assert self._compiled is not None, "prepare() first"
        if len(rows) <= _FEW:  # the refresh of a changed node: nothing to share
            cpu, idle, model = view.free_cpu[rows], view.gpu_idle[rows], view.gpu_model[rows]
            inverse = np.arange(len(rows))
        else:
            cpu, idle, model, inverse = distinct_states(view, rows)
        before, after = self._compiled.fragments(cpu, idle, model, req)
        with np.errstate(over="ignore", invalid="ignore"):
            score = np.trunc(100.0 * _sigmoid((before[:, None] - after) / 1000.0))
        return np.where(np.isinf(after), -1.0, score)[inverse]

    def score(
        self, view: ClusterView, req: PlacementRequest, rows: IntArray, rng: np.random.Generator
    ) -> FloatArray:
        return self._device_scores(view, req, rows).max(axis=1)

    def choose_gpus(
        self, view: ClusterView, req: PlacementRequest, row: int, rng: np.random.Generator
    ) -> GpuShares:
        g = req.resources.gpu_milli
        if 0 < g < GPU_MILLI:
            scores = self._device_scores(view, req, np.array([row], dtype=np.int64))[0]
            return ((int(np.argmax(scores)), g),)
        return super().choose_gpus(view, req, row, rng)
