"""GPU fragmentation against a workload's typical shapes (Weng et al., ATC'23); pure.

A node's fragment ``F(n) = sum_t p_t * phi_t(n)`` is the expected idle GPU milli that a
task drawn from the typical shapes ``t`` (with probabilities ``p_t``) could not use:
``phi_t = G`` (all idle milli) when ``t`` needs no GPU, cannot run on the node's model
or does not fit; otherwise the idle milli of the devices too small for ``t``.

Everything is vectorised over (shape, node, device). Because ``phi_t`` adds up over
devices once the fit test is settled, the fragment after a hypothetical placement
on device ``j`` is an O(1) update per (shape, node, device), not a recomputation.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pallet.core.view import BoolArray, ClusterView, IntArray
from pallet.model import GPU_MILLI, PlacementRequest

__all__ = ["Shape", "Workload", "shape_of"]

FloatArray = npt.NDArray[np.float64]

Shape = tuple[int, int, int, str]
"""(millicpus, milli per GPU, GPU count, allowed models joined by '|')."""


def shape_of(req: PlacementRequest) -> Shape:
    g = req.resources.gpu_milli
    models = "|".join(sorted(req.gpu_models)) if g else ""
    return (req.resources.cpu_milli, req.gpu_milli_per_device if g else 0, req.gpu_count, models)


@dataclass(frozen=True, slots=True)
class Workload:
    """Typical task shapes with their probabilities (the FGD paper's "typical pods")."""

    shapes: tuple[Shape, ...]
    weights: tuple[float, ...]

    @classmethod
    def from_shapes(cls, shapes: Iterable[Shape], coverage: float = 0.95) -> Workload:
        """The most frequent shapes covering ``coverage`` of all tasks, renormalised.
        Ties in frequency go to the larger shape key, as the FGD simulator sorts."""
        counts = Counter(shapes)
        total = sum(counts.values())
        if not total:
            return cls((), ())
        ordered = sorted(counts.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)
        kept: list[tuple[Shape, int]] = []
        covered = 0
        for shape, n in ordered:
            kept.append((shape, n))
            covered += n
            if covered >= coverage * total:
                break
        return cls(tuple(s for s, _ in kept), tuple(n / covered for _, n in kept))

    @classmethod
    def from_requests(cls, reqs: Sequence[PlacementRequest], coverage: float = 0.95) -> Workload:
        return cls.from_shapes((shape_of(r) for r in reqs), coverage)

    def compile(self, view: ClusterView) -> CompiledWorkload:
        return CompiledWorkload.build(self, view)


@dataclass(frozen=True, slots=True)
class CompiledWorkload:
    """A workload as arrays over shapes, with the GPU-model test resolved for a view."""

    cpu: IntArray  # (T,)
    milli: IntArray  # (T,) 0 for CPU-only shapes
    count: IntArray  # (T,)
    allowed: BoolArray  # (T, models + 1); the last column answers "no GPU model"
    weight: FloatArray  # (T,)
    gpu_shape: BoolArray  # (T,)

    @classmethod
    def build(cls, w: Workload, view: ClusterView) -> CompiledWorkload:
        t = len(w.shapes)
        allowed = np.zeros((t, len(view.gpu_models) + 1), dtype=bool)
        for i, (_, _, k, models) in enumerate(w.shapes):
            if k == 0:
                continue
            wanted = set(models.split("|")) if models else None
            for code, name in enumerate(view.gpu_models):
                allowed[i, code] = wanted is None or name in wanted
        return cls(
            cpu=np.array([s[0] for s in w.shapes], dtype=np.int64),
            milli=np.array([s[1] for s in w.shapes], dtype=np.int64),
            count=np.array([s[2] for s in w.shapes], dtype=np.int64),
            allowed=allowed,
            weight=np.array(w.weights, dtype=np.float64),
            gpu_shape=np.array([s[2] > 0 for s in w.shapes], dtype=bool),
        )

    # ------------------------------------------------------------------ fragments

    def _parts(self, idle: IntArray) -> tuple[IntArray, IntArray]:
        """Per (shape, node): devices big enough, and idle milli on devices too small."""
        m = self.milli[:, None, None]
        big = idle[None, :, :] >= m
        count = big.sum(axis=2)
        small = np.where(big, 0, idle[None, :, :]).sum(axis=2)
        return count, small

    def _combine(
        self, cpu: IntArray, model: IntArray, total: IntArray, count: IntArray, small: IntArray
    ) -> FloatArray:
        """F from node-shaped ``cpu``, ``model``, ``total`` and (shape, node...)-shaped
        ``count`` and ``small``."""
        lead = (slice(None),) + (None,) * cpu.ndim

        fits = (
            (cpu[None] >= self.cpu[lead])
            & self.allowed[:, model]
            & (count >= self.count[lead])
            & self.gpu_shape[lead]
        )
        phi = np.where(fits, small, total[None])
        # tensordot(weight, phi, axes=1) without its per-call overhead: the same dot
        return (self.weight @ phi.reshape(len(self.weight), -1)).reshape(phi.shape[1:])

    def fragments(
        self, cpu: IntArray, idle: IntArray, model: IntArray, req: PlacementRequest
    ) -> tuple[FloatArray, FloatArray]:
        """``(F(n), F(n'))`` for node states given as arrays (``cpu`` and ``model`` of
        shape (R,), ``idle`` of shape (R, D)), where ``n'`` is ``n`` after placing ``req``.
        ``F(n')`` has shape (R, D) for a GPU share (one column per device, +inf where
        the device is too small), else (R, 1)."""
        total = idle.sum(axis=1)
        count, small = self._parts(idle)
        before = self._combine(cpu, model, total, count, small)
        cpu_after = cpu - req.resources.cpu_milli
        g = req.resources.gpu_milli
        if g == 0:
            return before, self._combine(cpu_after, model, total, count, small)[:, None]
        if g >= GPU_MILLI:
            # Whole devices drop from 1000 to 0: each was big enough for every shape
            # and adds nothing to "small" before or after.
            used_big = (self.milli <= GPU_MILLI)[:, None] * (g // GPU_MILLI)
            after = self._combine(cpu_after, model, total - g, count - used_big, small)
            return before, after[:, None]
        m = self.milli[:, None, None]
        dev_before = idle[None, :, :]
        dev_after = dev_before - g
        was_big = dev_before >= m
        now_big = dev_after >= m
        count2 = count[:, :, None] - was_big + now_big
        small2 = (
            small[:, :, None]
            - np.where(was_big, 0, dev_before)
            + np.where(now_big, 0, np.maximum(dev_after, 0))
        )
        after = self._combine(
            cpu_after[:, None], model[:, None], (total - g)[:, None], count2, small2
        )
        return before, np.where(idle >= g, after, np.inf)

    def node_fragment(self, view: ClusterView, rows: IntArray) -> FloatArray:
        """F(n) for each of ``rows``."""
        idle = view.gpu_idle[rows]
        count, small = self._parts(idle)
        return self._combine(
            view.free_cpu[rows], view.gpu_model[rows], idle.sum(axis=1), count, small
        )


def distinct_states(
    view: ClusterView, rows: IntArray
) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """The distinct (free cpu, idle GPU milli per device, GPU model) states among ``rows``
    and, per row, the index of its state. Many nodes of a cluster look alike (every idle
    node of one shape), so fragment arithmetic runs once per state, not per node."""
    key = np.concatenate(
        [view.free_cpu[rows, None], view.gpu_idle[rows], view.gpu_model[rows, None]], axis=1
    )
    states, inverse = np.unique(key, axis=0, return_inverse=True)
    return states[:, 0], states[:, 1:-1], states[:, -1], inverse.reshape(-1)
