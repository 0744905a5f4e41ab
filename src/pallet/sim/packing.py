"""The FGD arrival protocol (``../shared/protocols/fgd.md``): GPU allocation as pods
sampled from an openb pod list arrive until their GPU demand reaches 130 % of the
cluster's GPUs, with no departures; unplaceable pods fail for good. Pure apart
from what the caller reads from disk.

Each seed's arrivals (the shuffled list, the pods drawn again, the tie-break order of
the nodes) come from Go's ``math/rand`` exactly as the paper's simulator draws them
(``sequence="go"``, ``sim.gorand``), so seed 42 here is the paper's seed 42; or from
numpy's generator (``sequence="numpy"``), the same protocol on other draws: a second
sample of it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from pallet.core.frag import Workload, shape_of
from pallet.core.policies import Policy
from pallet.core.schedule import schedule
from pallet.core.view import ClusterView
from pallet.model import Node
from pallet.sim.ceiling import Ceiling, work_conserving_ceiling
from pallet.sim.ceiling_cpu import CpuCeiling, cpu_aware_ceiling
from pallet.sim.gorand import GoRand
from pallet.sim.traces.openb import OpenbPod

__all__ = [
    "SEQUENCES",
    "PackingRun",
    "arrivals",
    "build_sequence",
    "build_sequence_go",
    "ceiling",
    "cpu_ceiling",
    "curve",
    "run_packing",
    "typical_workload",
]

TUNE_RATIO = 1.3
CURVE_POINTS = 131  # arrived load 0..130 %
SEQUENCES = ("go", "numpy")
"""Where a seed's arrivals come from: Go's ``math/rand`` (the paper's) or numpy's."""
GO_SKIPPED_DRAWS = 10
"""Draws the paper's simulator makes between tuning and the node order (its client
library's reflectors each take a ``Float64``); see the protocol, section 2."""


@dataclass(frozen=True, slots=True)
class PackingRun:
    policy: str
    seed: int
    pods: int
    failed: int
    total_gpu_milli: int
    arrived: np.ndarray  # per event, cumulative arrived GPU milli
    used: np.ndarray  # per event, allocated GPU milli

    def curve(self) -> list[float]:
        return curve(self.arrived, self.used, self.total_gpu_milli)

    def alloc_at(self, percent: int) -> float:
        return self.curve()[percent]


def build_sequence(
    pods: Sequence[OpenbPod], total_gpu_milli: int, rng: np.random.Generator
) -> list[OpenbPod]:
    """Every pod once in a shuffled order, then pods sampled with replacement until
    the next one would push the GPU demand past 130 % of capacity. As in the
    simulator, the stop test adds the *per-GPU* milli (an 8-GPU pod may overshoot)."""
    ordered = sorted(pods, key=lambda p: p.name)
    seq = [ordered[i] for i in rng.permutation(len(ordered))]
    target = TUNE_RATIO * total_gpu_milli
    demand = sum(p.gpu_total for p in seq)
    while demand < target:
        pod = ordered[int(rng.integers(len(ordered)))]
        if demand + pod.gpu_milli > target:
            break
        seq.append(pod)
        demand += pod.gpu_total
    if demand > target:  # tune down: no shared openb trace takes this path
        while demand > target and seq:
            demand -= seq.pop(int(rng.integers(len(seq)))).gpu_total
    return seq


def build_sequence_go(pods: Sequence[OpenbPod], total_gpu_milli: int, go: GoRand) -> list[OpenbPod]:
    """``build_sequence`` with Go's draws, call for call as the paper's simulator makes
    them: ``Shuffle`` of the pods sorted by name, then ``Intn`` per pod drawn again (or
    per pod removed when the list asks for more than 130 %)."""
    ordered = sorted(pods, key=lambda p: p.name)
    seq = [ordered[i] for i in go.shuffle_order(len(ordered))]
    target = TUNE_RATIO * total_gpu_milli
    demand = sum(p.gpu_total for p in seq)
    if demand < target:
        while True:
            pod = ordered[go.intn(len(ordered))]
            if demand + pod.gpu_milli > target:
                break
            seq.append(pod)
            demand += pod.gpu_total
    else:
        while demand > target and seq:
            demand -= seq.pop(go.intn(len(seq))).gpu_total
    return seq


def arrivals(
    pods: Sequence[OpenbPod], nodes: int, total_gpu_milli: int, seed: int, sequence: str = "go"
) -> tuple[list[OpenbPod], np.ndarray, np.random.Generator]:
    """One seed's arrival sequence, the nodes' tie-break ranks (in node-id order) and
    the generator left for the policies' own draws (the random policy's)."""
    if sequence == "numpy":
        rng = np.random.default_rng(seed)
        seq = build_sequence(pods, total_gpu_milli, rng)
        return seq, rng.permutation(nodes).astype(np.int64), rng
    if sequence != "go":
        raise ValueError(f"sequence must be one of {', '.join(SEQUENCES)}, not {sequence!r}")
    go = GoRand(seed)
    go.int63()  # evaluated as an argument of a debug line that is never printed
    seq = build_sequence_go(pods, total_gpu_milli, go)
    for _ in range(GO_SKIPPED_DRAWS):
        go.int63()
    rank = np.array(go.perm(nodes), dtype=np.int64)
    return seq, rank, np.random.default_rng(seed)


def typical_workload(pods: Sequence[OpenbPod]) -> Workload:
    """FGD's typical pods: shapes of the original (untuned) list."""
    return Workload.from_shapes(shape_of(p.request()) for p in pods)


def run_packing(
    nodes: Sequence[Node],
    pods: Sequence[OpenbPod],
    policy_factory: Callable[[Workload], Policy],
    policy_name: str,
    seed: int,
    sequence: str = "go",
) -> PackingRun:
    """One seed of the protocol: each pod scheduled alone and bound before the next."""
    total = sum(n.capacity.gpu_milli for n in nodes)
    seq, rank, rng = arrivals(pods, len(nodes), total, seed, sequence)
    view = ClusterView(sorted(nodes, key=lambda n: n.id))
    view.rank = rank  # the per-seed tie-break order
    policy = policy_factory(typical_workload(pods))
    arrived = np.zeros(len(seq), dtype=np.int64)
    used = np.zeros(len(seq), dtype=np.int64)
    so_far = 0
    failed = 0
    for k, pod in enumerate(seq):
        so_far += pod.gpu_total
        plan = schedule([pod.request(f"{pod.name}#{k}")], view, policy, rng)
        failed += len(plan.unplaced)
        arrived[k] = so_far
        used[k] = view.allocated_gpu_milli()
    return PackingRun(policy_name, seed, len(seq), failed, total, arrived, used)


def ceiling(
    nodes: Sequence[Node],
    pods: Sequence[OpenbPod],
    seed: int,
    percent: int,
    sequence: str = "go",
) -> Ceiling:
    """The most any policy can allocate at the curve's point ``percent`` on this seed's
    arrivals (``sim.ceiling``). The point averages the events whose arrived load rounds
    to ``percent`` (or to ``percent`` +- 1 when none does, as ``curve`` does), and
    allocation never falls, so the bound is taken after the last of them."""
    total = sum(n.capacity.gpu_milli for n in nodes)
    return work_conserving_ceiling(_measured_prefix(nodes, pods, seed, percent, sequence), total)


def cpu_ceiling(
    nodes: Sequence[Node],
    pods: Sequence[OpenbPod],
    seed: int,
    percent: int,
    sequence: str = "go",
    windows: int = 12,
    time_limit: float = 120.0,
) -> CpuCeiling:
    """``ceiling``'s point bounded by ``sim.ceiling_cpu`` instead: node CPU and memory
    limit what fits, pods without GPUs are placed while they fit. Both are valid; the
    smaller is the better bound."""
    kinds = [(n.capacity.cpu_milli, n.capacity.mem_mib, n.gpu_count, n.gpu_model) for n in nodes]
    prefix = _measured_prefix(nodes, pods, seed, percent, sequence)
    return cpu_aware_ceiling(prefix, kinds, windows, time_limit)


def _measured_prefix(
    nodes: Sequence[Node], pods: Sequence[OpenbPod], seed: int, percent: int, sequence: str
) -> list[OpenbPod]:
    """The arrivals up to the last event the curve's point ``percent`` averages."""
    total = sum(n.capacity.gpu_milli for n in nodes)
    seq, _, _ = arrivals(pods, len(nodes), total, seed, sequence)
    arrive = np.round(np.cumsum([p.gpu_total for p in seq]) / (total / 100.0), 0)
    last = percent if (arrive == percent).any() else percent + 1
    return seq[: int((arrive <= last).sum())]


def curve(arrived: np.ndarray, used: np.ndarray, total_gpu_milli: int) -> list[float]:
    """GPU allocation % at each whole % of arrived load 0..130, computed as the
    paper's analysis scripts do (numpy rounding; a missing point averages x-1..x+1)."""
    scale = total_gpu_milli / 100.0
    arrive = np.round(arrived / scale, 0)
    alloc = np.round(used / scale, 2)
    points = []
    for x in range(CURVE_POINTS):
        sel = arrive == x
        if not sel.any():
            sel = (arrive >= x - 1) & (arrive <= x + 1)
        points.append(round(float(alloc[sel].mean()), 2) if sel.any() else float("nan"))
    return points


@dataclass(frozen=True, slots=True)
class PackingSummary:
    """One policy over several seeds."""

    workload: str
    policy: str
    seeds: tuple[int, ...]
    curve: list[float]  # mean over seeds, 0..130
    failed: float  # mean failed pods
    seconds: float  # mean wall time per run

    def at(self, percent: int) -> float:
        return self.curve[percent]


def summarise(
    workload: str, policy: str, runs: Sequence[PackingRun], seconds: float
) -> PackingSummary:
    curves = np.array([r.curve() for r in runs])
    mean = [round(float(v), 2) for v in curves.mean(axis=0)]
    return PackingSummary(
        workload,
        policy,
        tuple(r.seed for r in runs),
        mean,
        float(np.mean([r.failed for r in runs])),
        seconds / max(len(runs), 1),
    )
