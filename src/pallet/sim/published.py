"""The FGD paper's published curves (``published_results/analysis_allo_discrete.csv``);
does file I/O."""

from __future__ import annotations

from functools import cache

from pallet.sim.traces.csvrows import read_rows
from pallet.sim.traces.openb import openb_dir

__all__ = ["PUBLISHED_NAMES", "published_curve", "published_mean"]

PUBLISHED_NAMES = {
    "random": "01-Random",
    "dotprod": "02-DotProd",
    "gpu-clustering": "03-GpuClustering",
    "gpu-packing": "04-GpuPacking",
    "bestfit": "05-BestFit",
    "fgd": "06-FGD",
}


@cache
def _table() -> dict[tuple[str, str, int], dict[int, float]]:
    path = openb_dir() / "published_results" / "analysis_allo_discrete.csv"
    table: dict[tuple[str, str, int], dict[int, float]] = {}
    for row in read_rows(path, ("workload", "sc_policy", "seed", "100", "130")):
        workload = row.text("workload").removeprefix("openb_pod_list_")
        key = (workload, row.text("sc_policy"), row.integer("seed"))
        table[key] = {x: row.number(str(x)) for x in range(131) if str(x) in row.values}
    return table


def published_mean(
    workload: str, policy: str, percent: int, seeds: tuple[int, ...]
) -> float | None:
    """The paper's mean GPU allocation % at ``percent`` arrived load over ``seeds``, or
    None when the paper has no such policy, workload or seed."""
    label = PUBLISHED_NAMES.get(policy)
    if label is None:
        return None
    table = _table()
    values = [
        table[(workload, label, s)].get(percent) for s in seeds if (workload, label, s) in table
    ]
    found = [v for v in values if v is not None]
    if not found or len(found) != len(seeds):
        return None
    return round(sum(found) / len(found), 2)


def published_curve(workload: str, label: str, seed: int) -> list[float] | None:
    """One published run's GPU allocation % at 0..130 % arrived load (``label`` as the
    paper names the policy, e.g. ``06-FGD``), or None when it was not published."""
    points = _table().get((workload, label, seed))
    if points is None:
        return None
    return [points[x] for x in sorted(points)]
