"""What a workload asks for, in the terms the ``pallet`` policy prices; pure.

A ``Mix`` sums the tasks of a workload: how often each GPU share size occurs, the CPU
and memory GPU tasks bring per GPU milli, the GPU demand restricted to each set of
GPU models, and the mean shape of the tasks without GPUs. It is built from a ``Workload`` (typical shapes with weights) or grown
one request at a time from what the scheduler has been asked so far.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from pallet.core.frag import Workload
from pallet.core.view import ClusterView
from pallet.model import GPU_MILLI, PlacementRequest

__all__ = ["Mix", "model_pressure"]

FloatArray = npt.NDArray[np.float64]


@dataclass(slots=True)
class Mix:
    """Weighted sums over tasks (weights are task counts or probabilities)."""

    shares: dict[int, float] = field(default_factory=dict)
    """Share size (milli of one device, below ``GPU_MILLI``) -> weight."""
    gpu: float = 0.0
    """GPU milli asked, weighted."""
    cpu: float = 0.0
    """CPU milli asked by GPU tasks, weighted."""
    mem: float = 0.0
    """Memory MiB asked by GPU tasks, weighted (0 when unknown)."""
    restricted: dict[frozenset[str], float] = field(default_factory=dict)
    """GPU milli asked by tasks allowed only on these GPU models, weighted."""
    plain: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    """Tasks without GPUs: count and summed cpu, mem and disk, weighted."""
    gpu_shapes: dict[tuple[int, int], float] = field(default_factory=dict)
    """(CPU milli, GPU milli) of GPU tasks -> weight."""

    @classmethod
    def of_workload(cls, workload: Workload) -> Mix:
        mix = cls()
        for (cpu, milli, count, models), weight in zip(
            workload.shapes, workload.weights, strict=True
        ):
            models_set = frozenset(m for m in models.split("|") if m)
            if count:
                mix._add(cpu, 0, milli, count, models_set, weight)
            else:  # typical shapes carry CPU only
                n, plain_cpu, mem, disk = mix.plain
                mix.plain = (n + weight, plain_cpu + cpu * weight, mem, disk)
        return mix

    def add_all(self, reqs: Sequence[PlacementRequest]) -> None:
        """``add`` each request; tasks without GPUs are summed in one step."""
        n, cpu, mem, disk = self.plain
        for req in reqs:
            r = req.resources
            if r.gpu_milli:
                self.add(req)
            else:
                n, cpu, mem, disk = n + 1, cpu + r.cpu_milli, mem + r.mem_mib, disk + r.disk_mib
        self.plain = (n, cpu, mem, disk)

    def add(self, req: PlacementRequest) -> None:
        r = req.resources
        if r.gpu_milli:
            self._add(
                r.cpu_milli, r.mem_mib, req.gpu_milli_per_device, req.gpu_count, req.gpu_models, 1.0
            )
            return
        n, cpu, mem, disk = self.plain
        self.plain = (n + 1, cpu + r.cpu_milli, mem + r.mem_mib, disk + r.disk_mib)

    def _add(
        self, cpu: int, mem: int, milli: int, count: int, models: frozenset[str], weight: float
    ) -> None:
        if not count:
            return
        g = milli * count * weight
        self.gpu += g
        self.cpu += cpu * weight
        self.mem += mem * weight
        key = (cpu, milli * count)
        self.gpu_shapes[key] = self.gpu_shapes.get(key, 0.0) + weight
        if count == 1 and milli < GPU_MILLI:
            self.shares[milli] = self.shares.get(milli, 0.0) + weight
        if models:
            self.restricted[models] = self.restricted.get(models, 0.0) + g

    @property
    def cpu_per_gpu(self) -> float:
        return self.cpu / self.gpu if self.gpu else 0.0

    @property
    def all_cpu_per_gpu(self) -> float:
        """CPU milli asked by every task, with or without GPUs, per GPU milli asked."""
        return (self.cpu + self.plain[1]) / self.gpu if self.gpu else 0.0

    @property
    def mem_per_gpu(self) -> float:
        return self.mem / self.gpu if self.gpu else 0.0

    @property
    def share_count(self) -> float:
        return sum(self.shares.values())

    @property
    def plain_mean(self) -> FloatArray:
        """The mean (cpu, mem, disk) of tasks without GPUs; zeros before any."""
        n, cpu, mem, disk = self.plain
        return np.array([cpu, mem, disk]) / n if n else np.zeros(3)


def model_pressure(view: ClusterView, mix: Mix) -> FloatArray:
    """Per GPU model code (plus a last entry for "no model", always 0): the fraction
    of the model's idle GPU milli that model-restricted tasks are expected to claim.

    Until the cluster is full, the demand still to come is about as large as the idle
    GPU milli, split like the mix. Each restricted class spreads its part over its
    allowed models in proportion to their idle milli (a fluid relaxation of the
    transportation problem), and a model's pressure is what lands on it per idle milli.
    """
    n_models = len(view.gpu_models)
    pressure = np.zeros(n_models + 1)
    if not mix.restricted or not mix.gpu:
        return pressure
    has_model = view.active & (view.gpu_model >= 0)
    idle = np.bincount(
        view.gpu_model[has_model], weights=view.free_gpu[has_model], minlength=n_models
    )[:n_models].astype(np.float64)
    total = idle.sum()
    if total <= 0:
        return pressure
    for models, demand in mix.restricted.items():
        allowed = np.array([m in models for m in view.gpu_models], dtype=bool)
        room = idle[allowed].sum()
        if room > 0:
            pressure[np.flatnonzero(allowed)] += (demand / mix.gpu) * total / room
    return np.minimum(pressure, 1.0)
