"""How much of a node's idle GPU its free CPU and memory can feed, for the ``pallet``
policy's stranded-GPU term; pure.

GPU tasks bring CPU with their GPUs, and tasks without GPUs compete for the same CPU.
When the workload asks less CPU per GPU than the cluster has, CPU is a pool: any
node's free CPU feeds ``cpu / rho`` GPU milli at the mix's mean ``rho`` (CPU milli per
GPU milli), since the scheduler can send each node tasks that suit it. As the mix's
CPU per GPU (tasks without GPUs included) nears and passes the cluster's, CPU runs out
before GPUs do, and which task lands where decides how many GPUs end up stranded:

- *spread* ``sigma``: each typical GPU shape ``t`` feeds with its own ``rho_t`` (pulled
  toward the mean by ``1 - sigma``), weighted by its GPU demand. A node then feeds
  less than the pooled estimate when its CPU per idle GPU is below some shapes' (a
  concave mean), so CPU-hungry GPU tasks are steered to CPU-rich nodes and lean ones
  to CPU-poor nodes, and tasks without GPUs take CPU where no shape needs it;
- *floor* ``kappa``: a shape feeds nothing from less than ``kappa * cpu_t`` free CPU
  (one task's worth), so a node is not left with CPU crumbs beside idle GPUs; the
  crumbs go to small GPU tasks, and tasks without GPUs stop fitting sooner.

Both grow with the scarcity ``R``: the CPU per GPU milli of the whole mix over the
cluster's (its nodes with GPUs). On the openb GPU cluster the shared workloads sit at
``R`` 0.83-0.96, where the pooled estimate packs best; spread pays from about 1.0 and
the floor from about 1.1 (the FGD paper's lists with 2 and 2.5 times the default's CPU
work without GPUs). Memory stays pooled (``mem / rho_mem``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["SCARCITY", "Feed", "scarcity_knobs"]

FloatArray = npt.NDArray[np.float64]

SCARCITY = {"spread_from": 0.96, "spread_to": 1.11, "floor_from": 1.09, "floor_to": 1.13}
"""Where spread and floor start (0) and reach full strength (1), in ``R``."""
MAX_SHAPES = 48
"""GPU shapes kept, by GPU demand; the rest feed at the mean."""


def _ramp(x: float, lo: float, hi: float) -> float:
    return float(min(max((x - lo) / (hi - lo), 0.0), 1.0))


def scarcity_knobs(ratio: float) -> tuple[float, float]:
    """``(sigma, kappa)`` for a scarcity ``R``."""
    s = SCARCITY
    return (
        _ramp(ratio, s["spread_from"], s["spread_to"]),
        _ramp(ratio, s["floor_from"], s["floor_to"]),
    )


@dataclass(frozen=True, slots=True)
class Feed:
    """Per GPU shape: CPU milli per GPU milli ``rho`` (spread applied), the CPU floor,
    and the share of GPU demand; plus the pooled ratios."""

    rho_cpu: float
    rho_mem: float
    rho: FloatArray
    floor: FloatArray
    weight: FloatArray
    sigma: float
    kappa: float

    @classmethod
    def build(
        cls,
        rho_cpu: float,
        rho_mem: float,
        shapes: dict[tuple[int, int], float],
        sigma: float = 0.0,
        kappa: float = 0.0,
    ) -> Feed:
        """``shapes``: (CPU milli, GPU milli) of GPU tasks -> weight (tasks); ``sigma``
        and ``kappa`` as ``scarcity_knobs`` gives them."""
        kept = sorted(
            ((w * g, c, g) for (c, g), w in shapes.items() if g > 0 and w > 0), reverse=True
        )[:MAX_SHAPES]
        if not kept or rho_cpu <= 0 or not (sigma or kappa):
            empty = np.zeros(0)
            return cls(rho_cpu, rho_mem, empty, empty, empty, 0.0, 0.0)
        demand = np.array([d for d, _, _ in kept])
        cpu = np.array([c for _, c, _ in kept], dtype=np.float64)
        gpu = np.array([g for _, _, g in kept], dtype=np.float64)
        rho = (1.0 - sigma) * rho_cpu + sigma * cpu / gpu
        return cls(rho_cpu, rho_mem, rho, kappa * cpu, demand / demand.sum(), sigma, kappa)

    @property
    def pooled(self) -> bool:
        return not len(self.weight)

    def stranded(self, cpu: FloatArray, mem: FloatArray, gpu: FloatArray) -> FloatArray:
        """Idle GPU milli that the free CPU and memory cannot feed, elementwise."""
        if self.pooled:
            fed = np.full(gpu.shape, np.inf)
            if self.rho_cpu > 0:
                fed = np.minimum(fed, cpu / self.rho_cpu)
        else:
            free = np.maximum(cpu, 0.0).reshape(-1)
            per_shape = np.where(
                free[None, :] >= self.floor[:, None], free[None, :] / self.rho[:, None], 0.0
            )
            idle = gpu.reshape(-1)
            fed = (self.weight @ np.minimum(per_shape, idle[None, :])).reshape(gpu.shape)
        if self.rho_mem > 0:
            fed = np.minimum(fed, mem / self.rho_mem)
        return np.maximum(gpu - np.maximum(fed, 0.0), 0.0)
