"""The highest GPU allocation any scheduler can reach on one arrival sequence of the
FGD protocol; pure.

Under the protocol (``sim.packing``) pods arrive one at a time, nothing departs, and
a pod fails only when no node passes the filter (CPU, memory, GPU model and a device
with room): every policy only chooses among the nodes that fit, so a pod that fits
somewhere is placed. A *share* is a one-GPU pod below 1000 milli; ``theta`` is the
largest share, and a pod *needs a room* when each of its GPUs asks ``theta`` or more
(a ``theta`` share or any whole GPU).

Fix a CPU and memory pair ``(c, m)``. A node is *rich* when it has a device with
``theta`` milli free, ``c`` CPU free and ``m`` memory free. Let ``t*`` be the first
pod before which no node is rich (or the end of the sequence). Then:

1. every share before ``t*`` that asks at most ``c`` CPU and ``m`` memory and names no
   GPU model was placed, on a rich node if nowhere else (the *forced* shares); any
   other share before ``t*`` may have failed, and what fails is idle;
2. from ``t*`` on, a pod that needs a room fits only on a node that is not rich,
   which has less than ``c`` CPU or less than ``m`` memory free: only pods asking less
   CPU than ``c`` or less memory than ``m`` (the *escaping* pods) can take one; later
   shares below ``theta`` can be placed anywhere;
3. so the idle GPU milli at the end is at least ``D - A(t*)`` (``D`` the cluster's GPU
   milli, ``A(t)`` the GPU demand that arrived before pod ``t``) plus what failed
   before ``t*`` minus what was placed from ``t*`` on; and it is at least the waste of
   packing the shares placed onto devices, ``1000 * devices - vol(shares)``, with the
   devices at least the cutting-stock LP's fractional count (Gilmore and Gomory 1961).

For each ``t`` an LP picks which optional shares were placed (fractionally) and the
device patterns, to make the larger of the two as small as possible; the least over
every ``t`` bounds the idle milli from below whatever ``t*`` a scheduler ends up with.
Only the ``t`` whose cheap bound ``D - A(t) - (everything placeable later)`` is below
the best LP value so far are solved. Node boundaries and the GPU models of later pods
are relaxed away, which only lowers the bound. Any ``(c, m)`` gives a valid bound; the
pairs tried are those of the ``theta`` shares and their componentwise maximum, and the
best is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import highspy
import numpy as np
import numpy.typing as npt

from pallet.model import GPU_MILLI
from pallet.sim.pricing import quiet_highs

__all__ = ["Arrival", "Ceiling", "device_patterns", "work_conserving_ceiling"]

MAX_PATTERNS = 200_000


class Arrival(Protocol):
    """What the bound reads of a pod (``sim.traces.openb.OpenbPod`` has it)."""

    @property
    def num_gpu(self) -> int: ...
    @property
    def gpu_milli(self) -> int: ...
    @property
    def cpu_milli(self) -> int: ...
    @property
    def memory_mib(self) -> int: ...
    @property
    def gpu_spec(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Ceiling:
    """Least idle GPU milli after ``pods`` arrivals, and the allocation % it allows."""

    pods: int  # length of the prefix bounded
    total_gpu_milli: int
    idle_milli: float
    moment: int  # the t whose LP gives the bound
    rich: tuple[int, int]  # the (CPU, memory) pair that gave it
    lps: int  # LPs solved

    @property
    def alloc_pct(self) -> float:
        return 100.0 * (1.0 - self.idle_milli / self.total_gpu_milli)


def device_patterns(sizes: Sequence[int], capacity: int = GPU_MILLI) -> list[tuple[int, ...]]:
    """Every maximal multiset of ``sizes`` on one device (counts in the order of
    ``sizes``): the space left is smaller than every size. Any real device holds a
    sub-multiset of one of them."""
    order = sorted(range(len(sizes)), key=lambda i: -sizes[i])
    smallest = min(sizes)
    out: list[tuple[int, ...]] = []
    counts = [0] * len(sizes)

    def extend(k: int, left: int) -> None:
        if k == len(order):
            if left < smallest:
                out.append(tuple(counts))
                if len(out) > MAX_PATTERNS:
                    raise ValueError(f"more than {MAX_PATTERNS} device patterns")
            return
        i = order[k]
        for n in range(left // sizes[i], -1, -1):
            counts[i] = n
            extend(k + 1, left - n * sizes[i])
        counts[i] = 0

    extend(0, capacity)
    return out


def _is_share(pod: Arrival) -> bool:
    return pod.num_gpu == 1 and 0 < pod.gpu_milli < GPU_MILLI


def _forced(pod: Arrival, rich: tuple[int, int]) -> bool:
    """Whether a share arriving while some node is rich is sure to be placed: it asks
    no more CPU and memory than a rich node has free and names no GPU model."""
    return pod.cpu_milli <= rich[0] and pod.memory_mib <= rich[1] and not pod.gpu_spec


def _escapes(pod: Arrival, rich: tuple[int, int]) -> bool:
    """Whether a pod may still find a room once no node is rich: it asks less CPU or
    less memory than a rich node has, so a node short of one of them may hold it."""
    return pod.cpu_milli < rich[0] or pod.memory_mib < rich[1]


def work_conserving_ceiling(pods: Sequence[Arrival], total_gpu_milli: int) -> Ceiling:
    """The bound at the end of ``pods`` (pass the prefix that ends where the
    allocation is measured)."""
    shares = sorted({p.gpu_milli for p in pods if _is_share(p)})
    if not shares:  # whole GPUs only: nothing forces waste
        arrived = sum(p.num_gpu * p.gpu_milli for p in pods)
        return Ceiling(
            len(pods), total_gpu_milli, max(0.0, total_gpu_milli - arrived), 0, (0, 0), 0
        )
    theta = shares[-1]
    shapes = {(p.cpu_milli, p.memory_mib) for p in pods if _is_share(p) and p.gpu_milli == theta}
    pairs = sorted(shapes | {(max(c for c, _ in shapes), max(m for _, m in shapes))})
    columns = np.array(device_patterns(shares), dtype=np.float64).T  # the same for every pair
    bounds = [_Bound(pods, total_gpu_milli, shares, rich).solve(columns) for rich in pairs]
    return max(bounds, key=lambda b: b.idle_milli)


class _Bound:
    """The LPs for one ``(c, m)`` pair."""

    def __init__(
        self, pods: Sequence[Arrival], total: int, shares: list[int], rich: tuple[int, int]
    ) -> None:
        self.pods, self.total, self.rich = pods, total, rich
        self.size = np.array(shares, dtype=np.float64)
        theta = shares[-1]
        index = {s: i for i, s in enumerate(shares)}
        m, k = len(pods), len(shares)
        self.arrived = np.zeros(m + 1)
        self.forced = np.zeros((m + 1, k))  # per size, before pod t
        self.optional = np.zeros((m + 1, k))
        for t, p in enumerate(pods):
            self.arrived[t + 1] = self.arrived[t] + p.num_gpu * p.gpu_milli
            self.forced[t + 1], self.optional[t + 1] = self.forced[t], self.optional[t]
            if _is_share(p):
                forced = _forced(p, rich)
                (self.forced if forced else self.optional)[t + 1, index[p.gpu_milli]] += 1
        self.later = np.zeros((m + 1, k))  # shares placeable at pod t or after
        self.escaping = np.zeros(m + 1)  # whole-GPU milli placeable at t or after
        for t in range(m - 1, -1, -1):
            p = pods[t]
            self.later[t], self.escaping[t] = self.later[t + 1], self.escaping[t + 1]
            escapes = _escapes(p, rich)
            if _is_share(p) and (p.gpu_milli < theta or escapes):
                self.later[t, index[p.gpu_milli]] += 1
            elif p.num_gpu and not _is_share(p) and escapes:
                self.escaping[t] += p.num_gpu * p.gpu_milli

    def solve(self, columns: npt.NDArray[np.float64]) -> Ceiling:
        """``columns``: the device patterns, one column each, rows in the order of sizes."""
        total, size = self.total, self.size
        k = len(size)
        cheap = total - self.arrived - self.later @ size - self.escaping
        n = columns.shape[1]
        # variables: patterns x (n), optional shares before t placed p (k), later shares
        # placed y (k), idle z; minimise z. One HiGHS model, re-solved from its last
        # basis with each t's bounds.
        h = quiet_highs()
        h.addVars(n + 2 * k + 1, np.zeros(n + 2 * k + 1), np.full(n + 2 * k + 1, highspy.kHighsInf))
        h.changeColCost(n + 2 * k, 1.0)
        eye = np.eye(k)
        rows = np.vstack(
            [
                np.hstack([-columns, eye, eye, np.zeros((k, 1))]),  # patterns cover the shares
                # z >= D - A(t) + vol(optional failed) - vol(later) - escaping
                np.concatenate([np.zeros(n), -size, -size, [-1.0]]),
                # z >= 1000 * devices - vol(placed shares)
                np.concatenate([np.full(n, float(GPU_MILLI)), -size, -size, [-1.0]]),
            ]
        )
        for row in rows:
            nz = np.flatnonzero(row).astype(np.int32)
            h.addRow(-highspy.kHighsInf, 0.0, len(nz), nz, row[nz])
        shares_at = np.arange(n, n + 2 * k, dtype=np.int32)
        every_row = np.arange(k + 2, dtype=np.int32)
        best, moment, lps = float("inf"), len(self.pods), 0
        for t in np.argsort(cheap, kind="stable"):
            if cheap[t] >= best:
                break
            forced, optional, later = self.forced[t], self.optional[t], self.later[t]
            h.changeColsBounds(2 * k, shares_at, np.zeros(2 * k), np.concatenate([optional, later]))
            rhs = np.concatenate(
                [
                    -forced,
                    [self.arrived[t] - total - optional @ size + self.escaping[t]],
                    [forced @ size],
                ]
            )
            h.changeRowsBounds(k + 2, every_row, np.full(k + 2, -highspy.kHighsInf), rhs)
            h.run()
            lps += 1
            if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:  # pragma: no cover
                raise RuntimeError(
                    f"ceiling LP at pod {t}: {h.modelStatusToString(h.getModelStatus())}"
                )
            value = float(h.getInfo().objective_function_value)
            if value < best:
                best, moment = value, int(t)
        return Ceiling(len(self.pods), total, max(best, 0.0), moment, self.rich, lps)
