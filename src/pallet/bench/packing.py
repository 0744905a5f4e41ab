"""``pallet bench packing``: the FGD arrival protocol, every policy side by side with the
paper's published means (the peers measured in the same run are the baseline), and
sweeps over pod lists scaled from one of them (``--sweep``, ``sim.sweep``)."""

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
from pallet.sim.sweep import SweepPoint, scaled_list, too_big_for_every_node
from pallet.sim.traces.openb import OpenbPod, read_openb_nodes, read_openb_pods, resolve_workload

__all__ = ["PackingReport", "SweepReport", "run_packing_bench", "run_packing_sweep"]

DEFAULT_SEEDS = tuple(range(42, 52))
CEILING_POINTS = (100, 130)


@cache
def _nodes() -> list[Node]:
    return read_openb_nodes()


Source = tuple[str, str, float, int, str]
"""A pod list and whose draws: (file, sweep kind or "" for the file as it is, factor,
list seed, ``sim.packing.SEQUENCES`` entry)."""


@cache
def _pods(path: str) -> list[OpenbPod]:
    return read_openb_pods(Path(path))


@cache
def _list(source: Source) -> list[OpenbPod]:
    path, kind, factor, list_seed, _ = source
    if not kind:
        return _pods(path)
    return scaled_list(_pods(path), SweepPoint(kind, factor), list_seed)


def _one(job: tuple[Source, str, int]) -> tuple[Source, PackingRun, float]:
    source, policy, seed = job
    start = time.perf_counter()
    run = run_packing(
        _nodes(), _list(source), lambda w: make_policy(policy, w), policy, seed, source[4]
    )
    return source, run, time.perf_counter() - start


def _ceiling(job: tuple[Source, int, int]) -> tuple[Source, int, float]:
    source, seed, percent = job
    return source, percent, ceiling(_nodes(), _list(source), seed, percent, source[4]).alloc_pct


@dataclass(frozen=True, slots=True)
class PackingReport:
    workload: str
    seeds: tuple[int, ...]
    summaries: list[PackingSummary]
    ceilings: dict[int, float] | None = None  # percent -> mean over the seeds
    sequence: str = "go"

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
        doc: dict[str, object] = {
            "workload": self.workload,
            "seeds": list(self.seeds),
            "sequence": self.sequence,
        }
        if self.ceilings is not None:
            for percent, value in self.ceilings.items():
                doc[f"ceiling_at_{percent}"] = value
        doc["results"] = results
        return doc


def _checked(workload: str, policies: tuple[str, ...]) -> tuple[str, Path]:
    label, path = resolve_workload(workload)
    pods = _pods(str(path))  # read once up front so a bad file fails before forking
    if not pods:
        from pallet.model.errors import TraceError

        raise TraceError(str(path), 1, "-", "the pod list has no pods")
    for p in policies:
        make_policy(p)  # unknown names fail here, clearly
    return label, path


def _measure(
    sources: list[Source],
    seeds: tuple[int, ...],
    policies: tuple[str, ...],
    jobs: int,
    with_ceiling: bool,
) -> tuple[dict[Source, list[PackingSummary]], dict[Source, dict[int, float]]]:
    """Every policy and seed on every pod list (one process pool for all of them), and
    the ceilings if asked: per list, the summaries in ``policies`` order and the mean
    ceiling per point, rounded up so that it stays a bound."""
    runs: dict[tuple[Source, str], list[PackingRun]] = defaultdict(list)
    seconds: dict[tuple[Source, str], float] = defaultdict(float)
    work = [(src, p, s) for src in sources for p in policies for s in seeds]
    for src, run, took in run_parallel(_one, work, jobs):
        runs[(src, run.policy)].append(run)
        seconds[(src, run.policy)] += took
    summaries = {
        src: [summarise(_label(src), p, runs[(src, p)], seconds[(src, p)]) for p in policies]
        for src in sources
    }
    ceilings: dict[Source, dict[int, float]] = {}
    if with_ceiling:
        found: dict[tuple[Source, int], list[float]] = defaultdict(list)
        bound_jobs = [(src, s, pct) for src in sources for pct in CEILING_POINTS for s in seeds]
        for src, pct, value in run_parallel(_ceiling, bound_jobs, jobs):
            found[(src, pct)].append(value)
        for src in sources:
            ceilings[src] = {
                p: math.ceil(100 * sum(found[(src, p)]) / len(seeds)) / 100 for p in CEILING_POINTS
            }
    return summaries, ceilings


def _label(source: Source) -> str:
    path, kind, factor, _, _ = source
    label = resolve_workload(path)[0]
    return f"{label}@{kind}={factor:g}" if kind else label


def run_packing_bench(
    workload: str,
    seeds: tuple[int, ...],
    policies: tuple[str, ...],
    jobs: int,
    with_ceiling: bool = False,
    sequence: str = "go",
) -> PackingReport:
    label, path = _checked(workload, policies)
    source: Source = (str(path), "", 0.0, 0, sequence)
    summaries, ceilings = _measure([source], seeds, policies, jobs, with_ceiling)
    return PackingReport(label, seeds, summaries[source], ceilings.get(source), sequence)


@dataclass(frozen=True, slots=True)
class SweepRow:
    """One point of a sweep: the pod list made for it and what was measured on it."""

    point: SweepPoint
    pods: int
    cpu_only_cores: float
    gpu_pod_cores: float
    summaries: list[PackingSummary]
    ceilings: dict[int, float] | None

    def alloc(self, name: str, percent: int) -> float | None:
        """A policy's allocation at ``percent``, or the ceiling's (``name="ceiling"``)."""
        if name == "ceiling":
            return (self.ceilings or {}).get(percent)
        return next((s.at(percent) for s in self.summaries if s.policy == name), None)

    def gap(self, high: str, low: str, percent: int) -> float | None:
        """``high - low`` at ``percent`` (policies or ``"ceiling"``)."""
        a, b = self.alloc(high, percent), self.alloc(low, percent)
        return None if a is None or b is None else round(a - b, 2)


@dataclass(frozen=True, slots=True)
class SweepReport:
    workload: str
    kind: str
    seeds: tuple[int, ...]
    list_seed: int
    rows: list[SweepRow]
    sequence: str = "go"

    def policies(self) -> list[str]:
        return [s.policy for s in self.rows[0].summaries] if self.rows else []

    def pairs(self) -> list[tuple[str, str]]:
        """The differences the sweep reports: pallet - fgd, ceiling - pallet (those
        that were measured)."""
        have = set(self.policies())
        if self.rows and self.rows[0].ceilings is not None:
            have.add("ceiling")
        return [(a, b) for a, b in (("pallet", "fgd"), ("ceiling", "pallet")) if {a, b} <= have]

    def panels(self) -> list[tuple[str, dict[str, list[float | None]]]]:
        """What the sweep's plot shows: the allocation of each policy and the ceiling,
        then each difference of ``pairs``, at 100 % and 130 %, across the points."""
        names = self.policies() + (
            ["ceiling"] if self.rows and self.rows[0].ceilings is not None else []
        )
        allocs = {
            f"{name} @{p}%": [row.alloc(name, p) for row in self.rows]
            for name in names
            for p in CEILING_POINTS
        }
        gaps = [
            (
                f"{a} − {b} (points)",
                {f"@{p}%": [row.gap(a, b, p) for row in self.rows] for p in CEILING_POINTS},
            )
            for a, b in self.pairs()
        ]
        return [("GPU allocation %", allocs), *gaps]

    def table(self) -> tuple[list[str], list[list[object]]]:
        """Columns and rows of the sweep's table, each cell "@100 / @130"."""
        policies = self.policies()
        pairs = self.pairs()
        rows: list[list[object]] = []
        for row in self.rows:
            cells: list[object] = [f"{row.point.factor:g}", f"{row.cpu_only_cores / 1000:.1f}"]
            for name in policies:
                cells.append(f"{row.alloc(name, 100):.2f} / {row.alloc(name, 130):.2f}")
            if row.ceilings is not None:
                cells.append(" / ".join(f"{row.ceilings[p]:.2f}" for p in CEILING_POINTS))
            for a, b in pairs:
                gaps = [row.gap(a, b, p) for p in CEILING_POINTS]
                cells.append(None if None in gaps else " / ".join(f"{g:+.2f}" for g in gaps))
            rows.append(cells)
        columns = ["factor", "CPU-only kcores", *policies]
        if self.rows and self.rows[0].ceilings is not None:
            columns.append("ceiling")
        columns += [f"{a} − {b}" for a, b in pairs]
        return columns, rows

    def to_json(self) -> dict[str, object]:
        points = []
        for row in self.rows:
            doc: dict[str, object] = {
                "factor": row.point.factor,
                "pods": row.pods,
                "cpu_only_cores": round(row.cpu_only_cores, 1),
                "gpu_pod_cores": round(row.gpu_pod_cores, 1),
            }
            for s in row.summaries:
                doc[s.policy] = {
                    "alloc_at_100": s.at(100),
                    "alloc_at_130": s.at(130),
                    "failed_pods": round(s.failed, 1),
                    "seconds_per_run": round(s.seconds, 2),
                }
            if row.ceilings is not None:
                for percent, value in row.ceilings.items():
                    doc[f"ceiling_at_{percent}"] = value
            points.append(doc)
        return {
            "workload": self.workload,
            "sweep": self.kind,
            "seeds": list(self.seeds),
            "sequence": self.sequence,
            "list_seed": self.list_seed,
            "points": points,
        }


def run_packing_sweep(
    workload: str,
    points: list[SweepPoint],
    seeds: tuple[int, ...],
    policies: tuple[str, ...],
    jobs: int,
    with_ceiling: bool = True,
    list_seed: int = 0,
    sequence: str = "go",
) -> SweepReport:
    """Every policy (and the ceiling) on a pod list made from ``workload`` for each
    point (``sim.sweep``). A point whose list has a pod no node could ever hold is
    refused before anything runs, naming ``--sweep``."""
    from pallet.model.errors import ValidationError

    label, path = _checked(workload, policies)
    sources: list[Source] = [(str(path), p.kind, p.factor, list_seed, sequence) for p in points]
    for point, src in zip(points, sources, strict=True):
        try:
            pods = _list(src)
        except ValueError as exc:
            raise ValidationError("--sweep", f"{point.label}: {exc}") from None
        big = too_big_for_every_node(pods, _nodes())
        if big is not None:
            raise ValidationError(
                "--sweep",
                f"{point.label} makes a pod ask {big.cpu_milli / 1000:g} CPUs, "
                f"{big.memory_mib} MiB and {big.num_gpu} GPUs of "
                f"{big.gpu_milli} milli{' (' + big.gpu_spec + ')' if big.gpu_spec else ''}, "
                "more than any node has; use smaller factors",
            )
    summaries, ceilings = _measure(sources, seeds, policies, jobs, with_ceiling)
    rows = []
    for point, src in zip(points, sources, strict=True):
        pods = _list(src)
        rows.append(
            SweepRow(
                point,
                len(pods),
                sum(p.cpu_milli for p in pods if not p.num_gpu) / 1000,
                sum(p.cpu_milli for p in pods if p.num_gpu) / 1000,
                summaries[src],
                ceilings.get(src),
            )
        )
    return SweepReport(label, points[0].kind if points else "", seeds, list_seed, rows, sequence)
