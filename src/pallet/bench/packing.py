"""``pallet bench packing``: the FGD arrival protocol, every policy side by side with the
paper's published means (the peers measured in the same run are the baseline)."""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pallet.bench.runner import run_parallel
from pallet.core.policies import make_policy
from pallet.model import Node
from pallet.sim.packing import PackingRun, PackingSummary, ceiling, run_packing, summarise
from pallet.sim.published import published_mean
from pallet.sim.traces.openb import OpenbPod, read_openb_nodes, read_openb_pods, resolve_workload

__all__ = ["PackingReport", "run_packing_bench"]

DEFAULT_SEEDS = tuple(range(42, 52))
CEILING_POINTS = (100, 130)


@cache
def _nodes() -> list[Node]:
    return read_openb_nodes()


@cache
def _pods(path: str) -> list[OpenbPod]:
    return read_openb_pods(Path(path))


def _one(job: tuple[str, str, int]) -> tuple[PackingRun, float]:
    path, policy, seed = job
    start = time.perf_counter()
    run = run_packing(_nodes(), _pods(path), lambda w: make_policy(policy, w), policy, seed)
    return run, time.perf_counter() - start


def _ceiling(job: tuple[str, int, int]) -> tuple[int, int, float]:
    path, seed, percent = job
    return seed, percent, ceiling(_nodes(), _pods(path), seed, percent).alloc_pct


@dataclass(frozen=True, slots=True)
class PackingReport:
    workload: str
    seeds: tuple[int, ...]
    summaries: list[PackingSummary]
    ceilings: dict[int, float] | None = None  # percent -> mean over the seeds

    def to_json(self) -> dict[str, object]:
        results = []
        for s in self.summaries:
            results.append(
                {
                    "policy": s.policy,
                    "alloc_at_100": s.at(100),
                    "alloc_at_130": s.at(130),
                    "published_at_100": published_mean(self.workload, s.policy, 100, self.seeds),
                    "published_at_130": published_mean(self.workload, s.policy, 130, self.seeds),
                    "failed_pods": round(s.failed, 1),
                    "seconds_per_run": round(s.seconds, 2),
                }
            )
        doc: dict[str, object] = {"workload": self.workload, "seeds": list(self.seeds)}
        if self.ceilings is not None:
            for percent, value in self.ceilings.items():
                doc[f"ceiling_at_{percent}"] = value
        doc["results"] = results
        return doc


def run_packing_bench(
    workload: str,
    seeds: tuple[int, ...],
    policies: tuple[str, ...],
    jobs: int,
    with_ceiling: bool = False,
) -> PackingReport:
    label, path = resolve_workload(workload)
    pods = _pods(str(path))  # read once up front so a bad file fails before forking
    if not pods:
        from pallet.model.errors import TraceError

        raise TraceError(str(path), 1, "-", "the pod list has no pods")
    for p in policies:
        make_policy(p)  # unknown names fail here, clearly
    jobs_list = [(str(path), p, s) for p in policies for s in seeds]
    runs: dict[str, list[PackingRun]] = defaultdict(list)
    seconds: dict[str, float] = defaultdict(float)
    for run, took in run_parallel(_one, jobs_list, jobs):
        runs[run.policy].append(run)
        seconds[run.policy] += took
    summaries = [summarise(label, p, runs[p], seconds[p]) for p in policies]
    ceilings = None
    if with_ceiling:
        found: dict[int, list[float]] = defaultdict(list)
        bound_jobs = [(str(path), s, percent) for percent in CEILING_POINTS for s in seeds]
        for _, percent, value in run_parallel(_ceiling, bound_jobs, jobs):
            found[percent].append(value)
        # rounded up: it stays a bound
        ceilings = {p: math.ceil(100 * sum(found[p]) / len(found[p])) / 100 for p in CEILING_POINTS}
    return PackingReport(label, seeds, summaries, ceilings)
