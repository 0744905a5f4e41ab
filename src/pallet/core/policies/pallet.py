"""``pallet``: Pallet's own placement policy (the default); pure.

A node's score has two parts, compared lexicographically.

**1. Expected waste, coarsely** (an integer 0..100). Every placement changes how much
of the node's capacity will in the end go unused; the policy estimates that change
``dW`` (in GPU milli) and scores ``trunc(100 * sigmoid(-dW / 1000))``, the truncated
sigmoid of FGD (Weng et al., "Beware of Fragmentation", USENIX ATC'23), whose integer
steps make moves within about 40 milli of each other equal. ``W`` adds two terms:

- *Device waste* of GPU shares (``pallet_shares``): the workload's share sizes are a
  cutting-stock problem (Gilmore and Gomory, 1961) whose LP duals price each size as
  a fraction of a device; a gap of ``x`` idle milli is worth the best knapsack of
  prices that fits in it, and its waste is what is left. A share goes where it is part
  of a best packing of the whole mix (a 470 next to a 470, a 320 next to a 650), the
  discrete-distribution view of online bin packing that Sum-of-Squares (Csirik et
  al., JACM 2006) also takes, but priced by the LP instead of counted.
- *Stranded GPUs*: GPU tasks bring CPU and memory with them, on average ``rho`` CPU
  (and memory) per GPU milli. A node keeps ``G`` idle GPU milli usable only while it
  has ``rho * G`` CPU and memory for them, so ``D = max(0, G - min(cpu/rho_cpu,
  mem/rho_mem))`` milli are stranded. CPU-heavy tasks (and tasks without GPUs) thus go
  where CPU is in surplus (104-core nodes with 2 GPUs), GPU-dense ones to 12-cores-
  per-GPU nodes: the alignment that Tetris (Grandl et al., SIGCOMM'14) scores with a
  dot product, here measured in the resource that matters.

**2. Packing** (a fraction below 1, for ties): best fit in the L2 norm of the node's
free fractions after placement, over every resource it has (cpu, mem, disk, GPU), the
norm-based greedy of Panigrahy et al. ("Heuristics for vector bin packing", 2011): it
fills used nodes before empty ones, keeps whole nodes free for multi-GPU tasks, and
prefers leaving nodes balanced. It makes the policy pack on its own, without relying
on the simulator's fixed tie-break order (with a fresh random order per call, as the
live scheduler draws, FGD's ties scatter tasks and lose about four points).

On a cluster without GPUs only the packing part varies: a multi-dimensional best fit
over cpu, mem and disk. A node's score depends only on that node and the request
(``prepare`` fixes the rest once per call), so the policy is cacheable, and its work
per request is a few vector operations over the rows (no loop over typical shapes).

The workload's shape comes from the ``Workload`` given (the trace's typical tasks, as
FGD gets them) or is learned from the requests seen so far; memory per GPU is always
learned from the requests seen, since typical shapes carry no memory.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pallet.core.frag import Workload
from pallet.core.gpus import GpuShares, whole_devices
from pallet.core.policies.base import FloatArray, Policy
from pallet.core.policies.pallet_mix import Mix, model_pressure
from pallet.core.policies.pallet_shares import waste_table
from pallet.core.view import ClusterView, IntArray
from pallet.model import GPU_MILLI, PlacementRequest

__all__ = ["PalletPolicy"]

_UNFIT = -1.0
"""Device score where a share does not fit (any fitting device scores >= 0)."""
_TIE = 0.5
"""Scale of the packing term: below one step of the waste score."""
_RELEARN = 1.25
"""Re-solve the share LP when the learned share count grew by this factor."""


class PalletPolicy(Policy):
    """Waste-gradient scoring (LP-priced GPU shares, stranded GPUs, GPU-model
    pressure) with a best-fit tie-break."""

    name = "pallet"

    def __init__(self, workload: Workload | None = None) -> None:
        self.workload = workload
        self._given = Mix.of_workload(workload) if workload is not None else None
        self._seen = Mix()
        self._waste: FloatArray | None = None  # device waste by idle milli, 0..GPU_MILLI
        self._solved_at = 0.0
        self._rho_cpu = 0.0  # CPU milli per GPU milli of GPU tasks
        self._rho_mem = 0.0  # MiB per GPU milli of GPU tasks
        self._pressure = np.zeros(1)  # per GPU model code, last entry "no model"
        self._gpu_cluster = False

    # ------------------------------------------------------------------ workload

    def prepare(self, view: ClusterView, requests: Sequence[PlacementRequest]) -> None:
        for req in requests:
            self._seen.add(req)
        mix = self._given if self._given is not None else self._seen
        stale = self._waste is None or (
            mix is self._seen and mix.share_count >= _RELEARN * self._solved_at
        )
        if stale and mix.shares:
            self._waste = waste_table(mix.shares)
            self._solved_at = mix.share_count
        self._rho_cpu = mix.cpu_per_gpu
        self._rho_mem = self._seen.mem_per_gpu  # typical shapes carry no memory
        self._gpu_cluster = bool(view.cap[:, 3].any())
        self._pressure = model_pressure(view, mix) if self._gpu_cluster else np.zeros(1)

    # ------------------------------------------------------------------ scoring

    def _stranded(self, cpu: FloatArray, mem: FloatArray, gpu: FloatArray) -> FloatArray:
        """GPU milli the node's CPU and memory cannot feed (``D`` in the docstring)."""
        fed = np.full(gpu.shape, np.inf)
        if self._rho_cpu > 0:
            fed = np.minimum(fed, cpu / self._rho_cpu)
        if self._rho_mem > 0:
            fed = np.minimum(fed, mem / self._rho_mem)
        return np.maximum(gpu - np.maximum(fed, 0.0), 0.0)

    def _model_cost(self, view: ClusterView, req: PlacementRequest, rows: IntArray) -> FloatArray:
        """GPU milli that model-restricted tasks are expected to lose if ``req`` takes
        its GPUs from these rows' model rather than its least pressed allowed model."""
        g = req.resources.gpu
        pressure = self._pressure
        if not g or not pressure.any():
            return np.zeros(len(rows))
        names = view.gpu_models
        allowed = [i for i, m in enumerate(names) if not req.gpu_models or m in req.gpu_models]
        floor = pressure[allowed].min() if allowed else 0.0
        return g * np.maximum(pressure[view.gpu_model[rows]] - floor, 0.0)

    def _waste_change(self, view: ClusterView, req: PlacementRequest, rows: IntArray) -> FloatArray:
        """``dW`` (GPU milli) per (row, device) for a GPU share, +inf where the device
        is too small; else per (row, 1)."""
        r = req.resources
        cpu = view.free_cpu[rows].astype(np.float64)
        mem = view.free_mem[rows].astype(np.float64)
        gpu = view.free_gpu[rows].astype(np.float64)
        node = np.where(
            view.cap[rows, 3] > 0,
            self._stranded(cpu - r.cpu, mem - r.mem, gpu - r.gpu) - self._stranded(cpu, mem, gpu),
            0.0,
        ) + self._model_cost(view, req, rows)
        g = r.gpu
        if not 0 < g < GPU_MILLI or self._waste is None:
            return node[:, None]
        idle = view.gpu_idle[rows]
        before = self._waste[np.clip(idle, 0, GPU_MILLI)]
        after = self._waste[np.clip(idle - g, 0, GPU_MILLI)]
        return np.where(idle >= g, after - before + node[:, None], np.inf)

    @staticmethod
    def _steps(waste: FloatArray) -> FloatArray:
        """FGD's truncated sigmoid of ``-dW``: 0..100, -1 where nothing fits."""
        with np.errstate(over="ignore", invalid="ignore"):
            steps = np.trunc(100.0 / (1.0 + np.exp(waste / 1000.0)))
        return np.where(np.isfinite(waste), steps, _UNFIT)

    @staticmethod
    def _packing(view: ClusterView, req: PlacementRequest, rows: IntArray) -> FloatArray:
        """1 - the L2 norm of the node's free fractions after placement (0..1)."""
        cap = view.cap[rows].astype(np.float64)
        free = np.stack(
            [view.free_cpu[rows], view.free_mem[rows], view.free_disk[rows], view.free_gpu[rows]],
            axis=1,
        ) - np.array(req.resources.as_tuple(), dtype=np.float64)
        has = cap > 0
        left = np.where(has, free / np.where(has, cap, 1.0), 0.0)
        norm = np.sqrt((left * left).sum(axis=1) / np.maximum(has.sum(axis=1), 1))
        return 1.0 - np.clip(norm, 0.0, 1.0)

    def score(
        self, view: ClusterView, req: PlacementRequest, rows: IntArray, rng: np.random.Generator
    ) -> FloatArray:
        packing = self._packing(view, req, rows)
        if not self._gpu_cluster:  # no GPUs: only packing varies
            return packing
        steps = self._steps(self._waste_change(view, req, rows)).max(axis=1)
        return steps + _TIE * packing

    def choose_gpus(
        self, view: ClusterView, req: PlacementRequest, row: int, rng: np.random.Generator
    ) -> GpuShares:
        """A share goes to the device with the best waste score, then the one with the
        least idle milli (best fit), then the lowest index; whole GPUs to the
        lowest-index idle devices."""
        g = req.resources.gpu
        if not g:
            return ()
        if g >= GPU_MILLI:
            return whole_devices(view, req, row)
        rows = np.array([row], dtype=np.int64)
        count = int(view.gpu_count[row])
        steps = self._steps(self._waste_change(view, req, rows))[0, :count]
        idle = view.gpu_idle[row, :count]
        order = np.lexsort((np.arange(count), idle, -steps))  # last key sorts first
        return ((int(order[0]), g),)
