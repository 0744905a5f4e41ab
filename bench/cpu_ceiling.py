"""Where CPU binds: how far the pallet policy is from what any scheduler could reach.

For points of the CPU-only sweep (``pallet bench packing --sweep cpu-only=...``) and
seeds, at the protocol's 100 % point, prints:

- ``pallet``: the pallet policy's allocation;
- ``witness``: a second work-conserving run on the same arrivals, pallet for GPU pods,
  and each pod without GPUs sent where the CPU left beyond the node's reserve for its
  idle GPUs (``--reserve`` x the list's CPU per GPU milli) is smallest and still
  enough, else where the shortfall is least. It is a real run of the protocol, so
  whatever it reaches, the best scheduler reaches too: where it beats pallet, no valid
  ceiling can come closer to pallet than that;
- ``share``: the share-based ceiling (``sim.ceiling``);
- ``cpu``: the CPU-aware ceiling (``sim.ceiling_cpu``) and its MIP gap if HiGHS hit
  ``--time-limit`` (the bound is then the proven one, larger).

    python bench/cpu_ceiling.py --factors 2.75,3 --seeds 42,43 [--windows 12] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from pallet.core.frag import Workload
from pallet.core.policies import make_policy
from pallet.core.policies.pallet import PalletPolicy
from pallet.core.view import ClusterView, IntArray
from pallet.model import PlacementRequest
from pallet.sim.packing import ceiling, cpu_ceiling, run_packing
from pallet.sim.sweep import cpu_only_scaled
from pallet.sim.traces.openb import read_openb_nodes, read_openb_pods, resolve_workload


class Witness(PalletPolicy):
    """Pallet, except where a pod without GPUs goes (see the module docstring)."""

    name = "witness"

    def __init__(self, workload: Workload | None, reserve: float) -> None:
        super().__init__(workload)
        self.reserve = reserve  # CPU milli kept per idle GPU milli

    def score(
        self, view: ClusterView, req: PlacementRequest, rows: IntArray, rng: np.random.Generator
    ) -> np.ndarray:
        if req.resources.gpu:
            return super().score(view, req, rows, rng)
        left = view.free_cpu[rows] - req.resources.cpu - view.free_gpu[rows] * self.reserve
        return np.where(left >= 0, 1e12 - left, left).astype(np.float64)


def measure(
    factor: float, seed: int, reserve: float, windows: int, limit: float
) -> dict[str, float]:
    nodes = read_openb_nodes()
    pods = cpu_only_scaled(read_openb_pods(resolve_workload("default")[1]), factor)
    with_gpus = [p for p in pods if p.num_gpu]
    per_gpu = sum(p.cpu_milli for p in with_gpus) / sum(p.gpu_total for p in with_gpus)
    pallet = run_packing(nodes, pods, lambda w: make_policy("pallet", w), "pallet", seed)
    witness = run_packing(nodes, pods, lambda w: Witness(w, reserve * per_gpu), "witness", seed)
    start = time.perf_counter()
    cpu = cpu_ceiling(nodes, pods, seed, 100, windows=windows, time_limit=limit)
    return {
        "factor": factor,
        "seed": seed,
        "pallet": pallet.alloc_at(100),
        "witness": witness.alloc_at(100),
        "share": round(ceiling(nodes, pods, seed, 100).alloc_pct, 2),
        "cpu": round(cpu.alloc_pct, 2),
        "cpu_gap": round(cpu.gap, 4),
        "cpu_seconds": round(time.perf_counter() - start, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--factors", default="2,2.5,2.75,3")
    parser.add_argument("--seeds", default="42")
    parser.add_argument("--reserve", type=float, default=0.8)
    parser.add_argument("--windows", type=int, default=12)
    parser.add_argument("--time-limit", type=float, default=300.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = [
        measure(float(f), int(s), args.reserve, args.windows, args.time_limit)
        for f in args.factors.split(",")
        for s in args.seeds.split(",")
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(
        "| factor | seed | pallet | witness | share ceiling | CPU ceiling | best ceiling - pallet |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        best = min(r["share"], r["cpu"])
        gap = f" (gap {r['cpu_gap']:.2%})" if r["cpu_gap"] else ""
        print(
            f"| {r['factor']:g} | {r['seed']:.0f} | {r['pallet']:.2f} | {r['witness']:.2f} | "
            f"{r['share']:.2f} | {r['cpu']:.2f}{gap} | {best - r['pallet']:.2f} |"
        )


if __name__ == "__main__":
    main()
