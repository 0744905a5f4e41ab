"""``pallet bench compaction``: the fewest machines each policy needs for a whole
workload (Borg's cell compaction), against the volume, assignment-LP and
configuration-LP lower bounds. Does process management and reads the wall clock."""

from __future__ import annotations

import time
from dataclasses import dataclass

from pallet.bench.runner import run_parallel
from pallet.sim.bounds import Bounds
from pallet.sim.compaction import (
    CompactionResult,
    compaction_bounds,
    load_workload,
    run_compaction,
)

__all__ = ["CompactionRow", "run_compaction_bench"]


@dataclass(frozen=True, slots=True)
class CompactionRow:
    result: CompactionResult
    seconds: float
    bound_seconds: float
    """Wall time of the lower bounds of this row's workload (all seeds)."""

    def to_json(self) -> dict[str, object]:
        r = self.result
        return {
            "workload": r.workload,
            "policy": r.policy,
            "machines": r.machines,
            "lower_bound": r.lower_bound,
            "volume_bound": r.volume_bound,
            "lp_bound": r.lp_bound,
            "config_lp_bound": r.config_lp_bound,
            "ratio": round(r.machines / r.lower_bound, 4) if r.machines and r.lower_bound else None,
            "seconds": round(self.seconds, 1),
            "bound_seconds": round(self.bound_seconds, 1),
        }


def _bounds(job: tuple[str, int]) -> tuple[Bounds, float]:
    workload, seed = job
    start = time.perf_counter()
    bounds = compaction_bounds(load_workload(workload), seed)
    return bounds, time.perf_counter() - start


def _one(job: tuple[str, str, tuple[int, ...], dict[int, Bounds]]) -> CompactionRow:
    workload, policy, seeds, bounds = job
    start = time.perf_counter()
    result = run_compaction(load_workload(workload), policy, seeds=seeds, bounds=bounds)
    return CompactionRow(result, time.perf_counter() - start, 0.0)


def run_compaction_bench(
    workloads: tuple[str, ...], policies: tuple[str, ...], seeds: tuple[int, ...], jobs: int
) -> list[CompactionRow]:
    for w in workloads:
        load_workload(w)  # read once before forking; a bad name fails here
    # The bounds (the configuration LP takes a minute or two) are computed once per
    # workload and seed, in parallel, and shared by every policy.
    pairs = [(w, s) for w in workloads for s in seeds]
    computed = dict(zip(pairs, run_parallel(_bounds, pairs, jobs), strict=True))
    bounds = {w: {s: computed[w, s][0] for s in seeds} for w in workloads}
    bound_seconds = {w: sum(computed[w, s][1] for s in seeds) for w in workloads}
    work = [(w, p, seeds, bounds[w]) for w in workloads for p in policies]
    rows = run_parallel(_one, work, jobs)
    return [CompactionRow(r.result, r.seconds, bound_seconds[r.result.workload]) for r in rows]
