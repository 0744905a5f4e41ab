"""A ceiling on GPU allocation under the FGD protocol that sees node CPU and memory:
what pods without GPUs, which must be placed while they fit, leave of each node for the
GPU pods; pure.

Under the protocol (``sim.packing``) nothing departs and a pod fails only when no node
passes the filter. Take a shape ``q`` of pods without GPUs (CPU ``c_q``, memory
``m_q``) and let ``tau_q`` be the first pod before which no node has ``c_q`` CPU and
``m_q`` memory free (or never, within the prefix). Then, whatever the policy:

1. every pod of shape ``q`` before ``tau_q`` was placed, and every one from ``tau_q`` on
   failed (it fits exactly where ``q`` fits); so did every pod, GPU or not, asking at
   least ``c_q`` CPU and ``m_q`` memory from ``tau_q`` on;
2. just before pod ``tau_q`` every node is *closed* to ``q``: less than ``c_q`` CPU or
   less than ``m_q`` memory free. So of the ``N_k`` nodes of kind ``k`` (CPU ``C_k``,
   memory ``M_k``), some number ``u`` hold more than ``M_k - m_q`` memory each, and
   with it at least ``kappa`` CPU (the least CPU of any set of the prefix's pods with
   that much memory that fits the node: a small MIP, devices relaxed to counts); the
   other ``N_k - u`` hold more than ``C_k - c_q`` CPU each. Summed over the kind, from
   pods that arrived before ``tau_q``: CPU at least ``(N_k - u)(C_k - c_q + 1) + u *
   kappa`` and memory at least ``u (M_k - m_q + 1)``;
3. if ``q <= q'`` componentwise, ``tau_q >= tau_q'``.

The bound is a MIP over that. The prefix is cut into windows of consecutive arrivals
``[e_g, e_{g+1})``; for each shape ``q`` a binary picks the window with ``e_g < tau_q
<= e_{g+1}`` (or "never"). Pods are placed fractionally on node *kinds* (CPU, memory,
GPU count and model) per window: each only where it fits an empty node, within every
kind's summed CPU, memory, GPU milli and devices (whole GPUs, and one per share above
half a device). Shape ``q``'s pods are all placed in windows before its pick, none
after it, and in it any number but at least its first pod if that is a ``q``; pods
asking at least ``q`` are dropped after it; and the CPU placed on each kind up to the
end of the picked window covers rule 2, with ``u`` free in ``[0, N_k]`` (the state
just before ``tau_q`` is part of it). Summed over the kinds, that CPU must also be on
the nodes *at* ``tau_q``, not only by the end of its window: if ``n`` of the window's
``q`` pods were placed, they are its first ``n``, so ``tau_q`` comes at or before the
next one, and the nodes hold at most the CPU placed up to the window before plus the
CPU that arrived in the window before that pod (``n`` a whole number; the lines are
the upper concave hull of those amounts over ``n``, so they never say less). Any run
of any policy gives a feasible point (its own ``tau``s, its own placement summed by
kind and window) worth exactly its GPU allocation, so the MIP's maximum, and any upper
bound HiGHS proves on it, bounds every policy. With one pod per window the rules are
exact in time; wider windows only relax them, so the cut trades time for tightness,
never validity.

What it leaves out: pods placed on a kind are pooled (a node's CPU is not tied to its
own free devices), GPU pods may fail at will, and it knows the arrivals in advance.
On the openb sweep its plan closes every node to the 32-core pods without GPUs half to
two thirds of the way through, as the CPU that has arrived by then allows, and lets
the rest of them fail; no real schedule we built comes near it (``docs/design.md``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import highspy
import numpy as np
import numpy.typing as npt
from scipy.sparse import coo_matrix

from pallet.model import GPU_MILLI
from pallet.sim.ceiling import Arrival
from pallet.sim.pricing import quiet_highs

__all__ = ["CpuCeiling", "NodeKind", "cpu_aware_ceiling", "memory_closing_cpu"]

NodeKind = tuple[int, int, int, str]
"""A node's CPU milli, memory MiB, GPU count and GPU model."""
Shape = tuple[int, int, int, int, str]
"""A pod's CPU milli, memory MiB, GPU count, milli per GPU and allowed models."""


@dataclass(frozen=True, slots=True)
class CpuCeiling:
    """Most GPU milli any policy can have allocated after ``pods`` arrivals."""

    pods: int
    total_gpu_milli: int
    allocated_milli: float  # the proven upper bound
    windows: int
    gap: float  # HiGHS's relative MIP gap when it stopped (0: solved)

    @property
    def alloc_pct(self) -> float:
        return 100.0 * min(1.0, self.allocated_milli / self.total_gpu_milli)


def _shape(p: Arrival) -> Shape:
    return (p.cpu_milli, p.memory_mib, p.num_gpu, p.gpu_milli if p.num_gpu else 0, p.gpu_spec)


def _fits(s: Shape, k: NodeKind) -> bool:
    cpu, mem, count, _, spec = s
    if cpu > k[0] or mem > k[1]:
        return False
    if not count:
        return True
    models = {m for m in spec.split("|") if m}
    return k[2] >= count and (not models or k[3] in models)


def _devices(s: Shape) -> int:
    """Devices a pod holds alone: its whole GPUs, or one for a share above half a device."""
    if not s[2]:
        return 0
    if s[3] >= GPU_MILLI:
        return s[2]
    return 1 if 2 * s[3] > GPU_MILLI else 0


def _at_least(r: Shape, q: Shape) -> bool:
    return r[0] >= q[0] and r[1] >= q[1]


def memory_closing_cpu(kind: NodeKind, q: Shape, shapes: Counter[Shape]) -> int | None:
    """The least CPU a node of ``kind`` uses when pods of ``shapes`` (at most their
    counts) fill more than ``M - m_q`` of its memory, closing it to ``q`` by memory
    (rule 2); None if they cannot."""
    need = kind[1] - q[1] + 1
    usable = [(s, n) for s, n in shapes.items() if _fits(s, kind) and s[1] > 0]
    if need <= 0:
        return 0
    if not usable or sum(s[1] * n for s, n in usable) < need:
        return None
    h = quiet_highs()
    h.setOptionValue("mip_rel_gap", 0.0)
    n = len(usable)
    h.addVars(n, np.zeros(n), np.array([float(c) for _, c in usable]))
    h.changeColsCost(n, np.arange(n, dtype=np.int32), np.array([float(s[0]) for s, _ in usable]))
    h.changeColsIntegrality(
        n, np.arange(n, dtype=np.int32), np.full(n, highspy.HighsVarType.kInteger)
    )
    idx = np.arange(n, dtype=np.int32)
    inf = highspy.kHighsInf
    rows = [
        ([float(s[1]) for s, _ in usable], float(need), inf),
        ([float(s[0]) for s, _ in usable], -inf, float(kind[0])),
        ([float(s[2] * s[3]) for s, _ in usable], -inf, float(kind[2] * GPU_MILLI)),
        ([float(_devices(s)) for s, _ in usable], -inf, float(kind[2])),
    ]
    for coef, lo, hi in rows:
        h.addRow(lo, hi, n, idx, np.array(coef))
    h.run()
    status = h.getModelStatus()
    if status == highspy.HighsModelStatus.kInfeasible:
        return None
    if status != highspy.HighsModelStatus.kOptimal:  # pragma: no cover
        raise RuntimeError(f"closing CPU MIP: {h.modelStatusToString(status)}")
    # the dual bound is a proven lower bound on the least CPU
    return max(int(np.ceil(float(h.getInfo().mip_dual_bound) - 1e-6)), 0)


def _before_tau(
    arrived_cpu: npt.NDArray[np.float64], shape_at: list[Shape], q: Shape, start: int, end: int
) -> list[tuple[float, float]]:
    """Lines ``(a, b)`` whose least ``a + b * n`` is at least the CPU that arrived in
    ``[start, end)`` before ``tau_q`` when ``tau_q`` falls in that window and ``n`` of
    its ``q`` pods were placed: those are its first ``n`` ``q`` pods, so ``tau_q`` is at
    or before the next one. The upper concave hull of the points ``(n, CPU arrived
    before the (n+1)-th q pod)``, the last being the whole window."""
    at = [t for t in range(start, end) if shape_at[t] == q]
    base = arrived_cpu[start]
    points = [(float(j), float(arrived_cpu[t] - base)) for j, t in enumerate(at)]
    points.append((float(len(at)), float(arrived_cpu[end] - base)))
    hull: list[tuple[float, float]] = []
    for pt in points:  # x increasing: keep right turns only (upper hull)
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (x2 - x1) * (pt[1] - y1) - (y2 - y1) * (pt[0] - x1) >= 0:
                hull.pop()
            else:
                break
        hull.append(pt)
    if len(hull) == 1:
        return [(hull[0][1], 0.0)]
    lines = []
    for (x1, y1), (x2, y2) in pairwise(hull):
        b = (y2 - y1) / (x2 - x1)
        lines.append((y1 - b * x1, b))
    return lines


def _edges(n: int, windows: int) -> list[int]:
    windows = max(1, min(windows, n))
    return sorted({round(n * i / windows) for i in range(windows + 1)})


def cpu_aware_ceiling(
    pods: Sequence[Arrival],
    nodes: Sequence[NodeKind],
    windows: int = 12,
    time_limit: float = 60.0,
    least_share: float = 0.0,
) -> CpuCeiling:
    """The bound at the end of ``pods`` (the prefix that ends where the allocation is
    measured) on a cluster of ``nodes``. ``windows``: how many runs of consecutive
    arrivals the prefix is cut into (``len(pods)`` or more: one pod each, exact in
    time); ``time_limit``: seconds HiGHS may take, after which the upper bound it has
    proven so far is reported. ``least_share``: only shapes of at least this share of
    the pods without GPUs get a ``tau`` (fewer binaries; the others are free to be
    placed or not, which only relaxes the bound)."""
    total = sum(k[2] * GPU_MILLI for k in nodes)
    edges = _edges(len(pods), windows)
    n_win = len(edges) - 1
    kinds_count = Counter(nodes)
    kinds = sorted(kinds_count)
    window_of = np.searchsorted(np.array(edges[1:]), np.arange(len(pods)), side="right")
    counts: dict[tuple[Shape, int], int] = Counter()
    for t, p in enumerate(pods):
        counts[(_shape(p), int(window_of[t]))] += 1
    shapes: Counter[Shape] = Counter(_shape(p) for p in pods)
    plain = sum(n for s, n in shapes.items() if not s[2])
    thresholds = [
        s
        for s in sorted(shapes)
        if not s[2] and shapes[s] >= least_share * plain and any(_fits(s, k) for k in kinds)
    ]

    # columns: y[(shape, window, kind)] >= 0, then L[kind, window] (cumulative CPU),
    # then z[q, g] binaries, g = n_win meaning "never"
    y_index: dict[tuple[Shape, int, int], int] = {}
    for (s, w), _ in sorted(counts.items()):
        for ki, k in enumerate(kinds):
            if _fits(s, k):
                y_index[(s, w, ki)] = len(y_index)
    n_y = len(y_index)
    l_base = n_y
    n_l = 2 * len(kinds) * n_win  # cumulative CPU and memory per kind
    z_base = l_base + n_l
    n_z = len(thresholds) * (n_win + 1)
    n_cols = z_base + n_z

    def l_col(ki: int, w: int, d: int = 0) -> int:
        return l_base + (2 * ki + d) * n_win + w

    def z_col(qi: int, g: int) -> int:
        return z_base + qi * (n_win + 1) + g

    cost = np.zeros(n_cols)
    upper = np.full(n_cols, highspy.kHighsInf)
    for (s, w, _), j in y_index.items():
        cost[j] = -float(s[2] * s[3])
        upper[j] = counts[(s, w)]
    upper[z_base:] = 1.0

    extra: list[int] = []
    extra_integer: list[bool] = []

    def add_col(integer: bool = False) -> int:
        extra.append(n_cols + len(extra))
        extra_integer.append(integer)
        return extra[-1]

    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    lo: list[float] = []
    hi: list[float] = []
    inf = highspy.kHighsInf

    def row(entries: list[tuple[int, float]], low: float, high: float) -> None:
        r = len(lo)
        for c, v in entries:
            rows.append(r)
            cols.append(c)
            vals.append(v)
        lo.append(low)
        hi.append(high)

    arrived_cpu = np.concatenate([[0], np.cumsum([p.cpu_milli for p in pods])]).astype(np.float64)
    q_at = [_shape(p) for p in pods]
    placed: dict[tuple[Shape, int], list[int]] = defaultdict(list)
    on_kind: dict[tuple[int, int], list[tuple[int, Shape]]] = defaultdict(list)
    for (s, w, ki), j in y_index.items():
        placed[(s, w)].append(j)
        on_kind[(ki, w)].append((j, s))
    for (s, w), n in counts.items():  # at most the pods that arrived
        if placed[(s, w)]:
            row([(j, 1.0) for j in placed[(s, w)]], 0.0, float(n))
    for ki, k in enumerate(kinds):  # cumulative CPU, and capacity at the end
        n_k = kinds_count[k]
        for w in range(n_win):
            for d in (0, 1):
                entries = [(j, float(s[d])) for j, s in on_kind[(ki, w)] if s[d]]
                if w:
                    entries.append((l_col(ki, w - 1, d), 1.0))
                entries.append((l_col(ki, w, d), -1.0))
                row(entries, 0.0, 0.0)
        row([(l_col(ki, n_win - 1), 1.0)], -inf, float(n_k * k[0]))
        every = [js for w in range(n_win) for js in on_kind[(ki, w)]]
        for demand, cap in (
            (lambda s: s[1], k[1]),
            (lambda s: s[2] * s[3], k[2] * GPU_MILLI),
            (_devices, k[2]),
        ):
            entries = [(j, float(demand(s))) for j, s in every if demand(s)]
            if entries:
                row(entries, -inf, float(n_k * cap))

    for qi, q in enumerate(thresholds):
        row([(z_col(qi, g), 1.0) for g in range(n_win + 1)], 1.0, 1.0)
        for w in range(n_win):
            n = counts.get((q, w), 0)
            if n:  # placed before the pick (and the pick's first pod), none after it
                here = [(j, 1.0) for j in placed[(q, w)]]
                first = 1.0 if _shape(pods[edges[w]]) == q else 0.0
                row(
                    here
                    + [(z_col(qi, g), -float(n)) for g in range(w + 1, n_win + 1)]
                    + ([(z_col(qi, w), -first)] if first else []),
                    0.0,
                    inf,
                )
                row(here + [(z_col(qi, g), -float(n)) for g in range(w, n_win + 1)], -inf, 0.0)
            for s in shapes:  # pods asking at least q fail after the pick
                if s == q or not _at_least(s, q):
                    continue
                m = counts.get((s, w), 0)
                if m and placed[(s, w)]:
                    row(
                        [(j, 1.0) for j in placed[(s, w)]]
                        + [(z_col(qi, g), -float(m)) for g in range(w, n_win + 1)],
                        -inf,
                        0.0,
                    )
        # the CPU every node holds at tau_q (rule 2), per picked window: a z term and
        # a u term per kind
        need: list[list[tuple[int, float]]] = [[] for _ in range(n_win)]
        most_need = 0.0
        for ki, k in enumerate(kinds):  # every node closed to q at tau_q
            if not _fits(q, k):
                continue
            n_k = kinds_count[k]
            by_cpu = k[0] - q[0] + 1
            kappa = memory_closing_cpu(k, q, shapes)
            if by_cpu <= 0 or kappa == 0:
                continue
            most_need += float(n_k * by_cpu)
            for g in range(n_win):
                # u of the kind's nodes closed by memory, the others by CPU
                closing = [(l_col(ki, g), 1.0), (z_col(qi, g), -float(n_k * by_cpu))]
                need[g].append((z_col(qi, g), float(n_k * by_cpu)))
                if kappa is not None and kappa < by_cpu:
                    u = add_col()
                    row([(u, 1.0), (z_col(qi, g), -float(n_k))], -inf, 0.0)
                    closing.append((u, float(by_cpu - kappa)))
                    need[g].append((u, -float(by_cpu - kappa)))
                    row([(l_col(ki, g, 1), 1.0), (u, -float(k[1] - q[1] + 1))], 0.0, inf)
                row(closing, 0.0, inf)
        for g in range(n_win if most_need else 0):  # ... held by tau_q, not by its window's end
            before = [(l_col(ki, g - 1), -1.0) for ki in range(len(kinds))] if g else []
            lines = _before_tau(arrived_cpu, q_at, q, edges[g], edges[g + 1])
            if any(b for _, b in lines):  # how many q pods were placed: a whole number
                whole = add_col(integer=True)
                row([(j, 1.0) for j in placed[(q, g)]] + [(whole, -1.0)], 0.0, 0.0)
                count = [(whole, 1.0)]
            else:
                count = []
            for a, b in lines:
                # need <= L[g - 1] + a + b * (q pods placed in g), when g is picked
                pick = [(z_col(qi, g), most_need)]  # the big M: no row unless g is picked
                row(
                    need[g] + pick + before + [(c, -b * v) for c, v in count],
                    -inf,
                    a + most_need,
                )
        for qj, r in enumerate(thresholds):  # q <= r: tau_q >= tau_r
            if qj == qi or not _at_least(r, q):
                continue
            for g in range(1, n_win + 1):
                row(
                    [(z_col(qi, h), 1.0) for h in range(g, n_win + 1)]
                    + [(z_col(qj, h), -1.0) for h in range(g, n_win + 1)],
                    0.0,
                    inf,
                )

    n_cols += len(extra)
    cost = np.concatenate([cost, np.zeros(len(extra))])
    upper = np.concatenate([upper, np.full(len(extra), highspy.kHighsInf)])
    h = quiet_highs()
    h.setOptionValue("time_limit", float(time_limit))
    h.setOptionValue("mip_rel_gap", 1e-4)
    lp = highspy.HighsLp()
    lp.num_col_ = n_cols
    lp.num_row_ = len(lo)
    lp.col_cost_ = cost
    lp.col_lower_ = np.zeros(n_cols)
    lp.col_upper_ = upper
    lp.row_lower_ = np.array(lo, dtype=np.float64)
    lp.row_upper_ = np.array(hi, dtype=np.float64)
    matrix = coo_matrix((vals, (rows, cols)), shape=(len(lo), n_cols)).tocsc()
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = matrix.indptr
    lp.a_matrix_.index_ = matrix.indices
    lp.a_matrix_.value_ = matrix.data
    lp.integrality_ = (
        [highspy.HighsVarType.kContinuous] * z_base
        + [highspy.HighsVarType.kInteger] * n_z
        + [
            highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous
            for i in extra_integer
        ]
    )
    h.passModel(lp)
    h.run()
    status = h.getModelStatus()
    info = h.getInfo()
    if status == highspy.HighsModelStatus.kOptimal:
        bound = -float(info.mip_dual_bound) if n_z else -float(info.objective_function_value)
    elif status == highspy.HighsModelStatus.kTimeLimit and n_z:
        bound = -float(info.mip_dual_bound)
    else:  # pragma: no cover - the "never" picks place everything: always feasible
        raise RuntimeError(f"CPU ceiling MIP: {h.modelStatusToString(status)}")
    gap = float(info.mip_gap) if n_z and status != highspy.HighsModelStatus.kOptimal else 0.0
    return CpuCeiling(len(pods), total, max(bound, 0.0), n_win, gap)
