"""Cell compaction (Borg, EuroSys 2015 §5.1; Verma et al., CLUSTER 2014): the fewest
machines of a fixed order on which a policy places a whole workload. Pure, apart from
loading a named workload's trace files (``load_workload``).

Protocol, per seed:

1. **Order.** The workload's machine list (sorted by id) is shuffled once with
   ``numpy.random.default_rng(seed)``; every policy sees the same order for that seed.
   When the workload may not fit on the list at all, the order continues with copies
   of the shuffled list (ids suffixed ``~2``, ``~3``), which keeps the machine mix.
2. **Probe k.** A fresh ``ClusterView`` of the first ``k`` machines (ties go to the
   machine earliest in the order) and a fresh policy; every request is submitted in
   the workload's fixed order in one ``core.schedule`` call with
   ``default_rng(seed)``. The probe fits when nothing is unplaced.
3. **Search.** The lower bound (``sim.bounds``: the largest of the volume,
   assignment-LP and configuration-LP bounds) proves that no policy fits on fewer
   machines, so the search starts there: probe the bound, then gallop upward to the
   first fit (the i-th step is the larger of 2^i and twice the failed probe's
   shortfall, the unplaced demand in machines), then binary-search between the last
   failure and that fit. The answer ``k`` fits and ``k - 1`` failed (probed, or
   proved by the bound). A policy's fit need not be monotone in ``k``; the answer is
   the boundary this search meets, and every probe is kept in the trial.

With several seeds the result is a percentile of the trials (Borg reports the 90th of
11), and the bounds the same percentile of theirs, so ``lower_bound <= machines``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from pallet.core.frag import Workload
from pallet.core.policies import make_policy
from pallet.core.schedule import schedule
from pallet.core.view import ClusterView
from pallet.model import Node, PlacementRequest
from pallet.model.errors import ValidationError
from pallet.sim.bounds import Bounds, compute_bounds
from pallet.sim.workloads import WORKLOAD_NOTES, build_workload

__all__ = [
    "CompactionResult",
    "CompactionWorkload",
    "Probe",
    "Trial",
    "compaction_bounds",
    "compaction_workloads",
    "load_workload",
    "machine_order",
    "percentile_of",
    "run_compaction",
]


@dataclass(frozen=True, slots=True)
class CompactionWorkload:
    """Requests in submission order and the machine list they are compacted onto."""

    name: str
    machines: tuple[Node, ...]
    requests: tuple[PlacementRequest, ...]
    laps: int = 1
    """How many copies of the machine list the order may use (1 = the list only)."""
    note: str = ""
    typical: Workload | None = None
    """Typical shapes for ``pallet`` and ``fgd``; default: the requests' own."""

    def __post_init__(self) -> None:
        if self.typical is None:
            object.__setattr__(self, "typical", Workload.from_requests(self.requests))


@dataclass(frozen=True, slots=True)
class Probe:
    """One run on the first ``machines`` of the order: how many requests stayed
    unplaced, and ``shortfall``, their demand in machines of the prefix's mean size
    (the largest over resources, rounded up)."""

    machines: int
    unplaced: int
    shortfall: int = 0

    @property
    def fits(self) -> bool:
        return self.unplaced == 0


@dataclass(frozen=True, slots=True)
class Trial:
    """One seed: the answer (None: no fit even on every copy), its bounds and probes."""

    seed: int
    machines: int | None
    bounds: Bounds
    probes: tuple[Probe, ...]


@dataclass(frozen=True, slots=True)
class CompactionResult:
    workload: str
    policy: str
    machines: int | None
    lower_bound: int | None
    volume_bound: int | None
    lp_bound: int | None
    config_lp_bound: int | None
    listed: int
    """Machines in the workload's list (an answer above it uses copies)."""
    percentile: int
    trials: tuple[Trial, ...]

    @property
    def probes(self) -> int:
        return sum(len(t.probes) for t in self.trials)


def compaction_workloads() -> tuple[str, ...]:
    """Names ``run_compaction`` and ``load_workload`` accept."""
    return tuple(WORKLOAD_NOTES)


@lru_cache(maxsize=4)
def load_workload(name: str) -> CompactionWorkload:
    """Read a named workload from the shared traces (file I/O; cached per process)."""
    if name not in WORKLOAD_NOTES:
        raise ValidationError(
            "/workload",
            f"unknown compaction workload {name!r}; choose from "
            f"{', '.join(compaction_workloads())}",
        )
    machines, requests, laps = build_workload(name)
    return CompactionWorkload(name, machines, requests, laps, WORKLOAD_NOTES[name])


def machine_order(workload: CompactionWorkload, seed: int) -> list[Node]:
    """The list sorted by id, shuffled with ``seed``, then its copies (``laps``)."""
    base = sorted(workload.machines, key=lambda n: n.id)
    shuffled = [base[i] for i in np.random.default_rng(seed).permutation(len(base))]
    order = list(shuffled)
    for lap in range(2, workload.laps + 1):
        order.extend(
            replace(n, id=f"{n.id}~{lap}", hostname=f"{n.hostname}~{lap}") for n in shuffled
        )
    return order


def compaction_bounds(workload: CompactionWorkload, seed: int) -> Bounds:
    """The lower bounds over the seed's machine order (shared by every policy; the
    configuration LP takes up to a few minutes on the named workloads)."""
    return compute_bounds(workload.requests, machine_order(workload, seed))


def _probe(
    workload: CompactionWorkload, policy_name: str, order: Sequence[Node], k: int, seed: int
) -> Probe:
    view = ClusterView(order[:k])
    view.rank = np.arange(k, dtype=np.int64)
    policy = make_policy(policy_name, workload.typical)
    plan = schedule(workload.requests, view, policy, np.random.default_rng(seed))
    if not plan.unplaced:
        return Probe(k, 0)
    missing = {u.request_id for u in plan.unplaced}
    demand = np.zeros(4, dtype=np.int64)
    for req in workload.requests:
        if req.id in missing:
            demand += np.array(req.resources.as_tuple(), dtype=np.int64)
    mean = np.maximum(view.cap[view.active].mean(axis=0), 1.0)
    return Probe(k, len(plan.unplaced), int(np.ceil((demand / mean).max())))


def _trial(workload: CompactionWorkload, policy_name: str, seed: int, bounds: Bounds) -> Trial:
    order = machine_order(workload, seed)
    probes: list[Probe] = []

    def run(k: int) -> Probe:
        probes.append(_probe(workload, policy_name, order, k, seed))
        return probes[-1]

    lower = bounds.lower
    if lower is None:
        return Trial(seed, None, bounds, ())
    failed = run(lower)
    if failed.fits:
        return Trial(seed, lower, bounds, tuple(probes))
    top = len(order)
    if lower >= top:
        return Trial(seed, None, bounds, tuple(probes))
    # Gallop upward: the i-th step (i = 0, 1, ...) is max(2^i, twice the last shortfall),
    # which reaches a fit in O(log gap) probes and in one or two when the estimate is good.
    while True:
        step = max(2 ** (len(probes) - 1), 2 * failed.shortfall)
        candidate = min(failed.machines + step, top)
        probe = run(candidate)
        if probe.fits:
            break
        if candidate == top:
            return Trial(seed, None, bounds, tuple(probes))
        failed = probe
    low, high = failed.machines, candidate  # low fails, high fits
    while high - low > 1:
        middle = (low + high) // 2
        if run(middle).fits:
            high = middle
        else:
            low = middle
    return Trial(seed, high, bounds, tuple(probes))


def percentile_of(values: Sequence[int | None], percentile: int) -> int | None:
    """Nearest-rank percentile; None (no fit) ranks above every number."""
    if not values:
        return None
    ranked = sorted(values, key=lambda v: (v is None, v or 0))
    return ranked[max(math.ceil(percentile / 100 * len(ranked)), 1) - 1]


def run_compaction(
    workload: str | CompactionWorkload,
    policy_name: str,
    *,
    seeds: Sequence[int] = (0,),
    percentile: int = 90,
    bounds: Mapping[int, Bounds] | None = None,
) -> CompactionResult:
    """Compact ``workload`` under ``policy_name`` for each seed (see the module
    docstring). ``bounds`` may carry ``compaction_bounds`` per seed, computed once and
    shared by every policy. A workload name reads the trace files."""
    w = load_workload(workload) if isinstance(workload, str) else workload
    make_policy(policy_name)  # fail fast on an unknown name
    if not seeds:
        raise ValidationError("/seeds", "give at least one seed")
    trials = []
    for seed in seeds:
        b = bounds[seed] if bounds is not None and seed in bounds else compaction_bounds(w, seed)
        trials.append(_trial(w, policy_name, seed, b))
    return CompactionResult(
        workload=w.name,
        policy=policy_name,
        machines=percentile_of([t.machines for t in trials], percentile),
        lower_bound=percentile_of([t.bounds.lower for t in trials], percentile),
        volume_bound=percentile_of([t.bounds.volume for t in trials], percentile),
        lp_bound=percentile_of([t.bounds.lp for t in trials], percentile),
        config_lp_bound=percentile_of([t.bounds.config_lp for t in trials], percentile),
        listed=len(w.machines),
        percentile=percentile,
        trials=tuple(trials),
    )
