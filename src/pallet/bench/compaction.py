"""``pallet bench compaction``: the fewest machines each policy needs for a whole
workload (Borg's cell compaction), against the volume and LP lower bounds."""

from __future__ import annotations

import time
from dataclasses import dataclass

from pallet.bench.runner import run_parallel
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

    def to_json(self) -> dict[str, object]:
        r = self.result
        return {
            "workload": r.workload,
            "policy": r.policy,
            "machines": r.machines,
            "lower_bound": r.lower_bound,
            "volume_bound": r.volume_bound,
            "lp_bound": r.lp_bound,
            "ratio": round(r.machines / r.lower_bound, 4) if r.machines and r.lower_bound else None,
            "seconds": round(self.seconds, 1),
        }


def _one(job: tuple[str, str, tuple[int, ...]]) -> CompactionRow:
    workload, policy, seeds = job
    w = load_workload(workload)
    bounds = {s: compaction_bounds(w, s) for s in seeds}
    start = time.perf_counter()
    result = run_compaction(w, policy, seeds=seeds, bounds=bounds)
    return CompactionRow(result, time.perf_counter() - start)


def run_compaction_bench(
    workloads: tuple[str, ...], policies: tuple[str, ...], seeds: tuple[int, ...], jobs: int
) -> list[CompactionRow]:
    for w in workloads:
        load_workload(w)  # read once before forking; a bad name fails here
    work = [(w, p, seeds) for w in workloads for p in policies]
    return list(run_parallel(_one, work, jobs))
