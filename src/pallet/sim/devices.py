"""Valid inequalities for packing GPU shares onto devices, used by the configuration
LP's pricing (``sim.pricing``); pure.

A whole-GPU task holds ``gpu / 1000`` devices alone; shares (below 1000 milli) go on
the other devices, at most 1000 milli per device. Exactly which multisets of shares
fit ``D`` devices is a bin-packing question; inside the pricing knapsack we replace it
by rows from *dual-feasible functions* (Fekete and Schepers, Math. Prog. 2001):
weights ``f(s) >= 0`` with ``sum f(s_i) <= 1`` for any shares that fit one device
together. Then ``sum_i f(s_i) + whole devices <= devices`` on every real machine, so
every row holds for every real packing (the relaxation only ever *adds*
configurations, which keeps the LP a lower bound), while it cuts what the bare milli
sum allows: under ``f_191`` a share of 810 counts as a whole device, so the 190 milli
beside it is usable only by shares below 191.

Rows used (``C = 1000``): the milli sum ``s / C``; ``f_theta`` (``1`` above
``C - theta``, ``s / C`` in ``[theta, C - theta]``, ``0`` below ``theta``; valid for
``theta <= C / 2``) for each ``theta`` just above the hole a big share leaves;
``u_k(s) = floor((k + 1) s / C) / k`` (``s / C`` when ``(k + 1) s / C`` is an integer)
for ``k = 1..4``; and one row from the workload's own share mix: the optimal duals of
the cutting-stock LP that packs all its shares onto devices (Gilmore and Gomory again,
solved by column generation with a knapsack over one device). Any weights can serve if
their scale is the heaviest device: ``scale = max sum f(s_i)`` over the multisets that
fit one device, computed exactly by an integer knapsack, so round-off in the LP's duals
can weaken that row but never make it cut a real packing. Every row is in integers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.optimize import linprog

from pallet.model import GPU_MILLI
from pallet.sim.pricing import TaskKind

__all__ = ["device_rows", "heaviest_device", "packs", "separating_row"]

_DUAL_SCALE = 10**4  # resolution of the cutting-stock row's integer weights


def heaviest_device(sizes: Sequence[int], weights: Sequence[int]) -> int:
    """``max sum weights`` over multisets of ``sizes`` (repeats allowed) whose sizes sum
    to at most one device; exact integer dynamic programming."""
    best = [0] * (GPU_MILLI + 1)
    for c in range(1, GPU_MILLI + 1):
        best[c] = max(
            [best[c - 1]] + [best[c - s] + w for s, w in zip(sizes, weights, strict=True) if s <= c]
        )
    return best[GPU_MILLI]


def _best_device(sizes: list[int], values: np.ndarray) -> tuple[float, list[int]]:
    """The device pattern (counts per size) of largest value, by dynamic programming."""
    best = np.zeros(GPU_MILLI + 1)
    last = np.full(GPU_MILLI + 1, -1)
    for c in range(1, GPU_MILLI + 1):
        best[c], last[c] = best[c - 1], -1
        for i, s in enumerate(sizes):
            if s <= c and best[c - s] + values[i] > best[c] + 1e-12:
                best[c], last[c] = best[c - s] + values[i], i
    pattern, c = [0] * len(sizes), GPU_MILLI
    while c > 0:
        if last[c] < 0:
            c -= 1
        else:
            pattern[last[c]] += 1
            c -= sizes[last[c]]
    return float(best[GPU_MILLI]), pattern


def _cutting_stock_duals(sizes: list[int], counts: list[int]) -> np.ndarray:
    """Duals of the LP ``min devices`` that covers ``counts`` shares of each size."""
    patterns = [
        [GPU_MILLI // s if j == i else 0 for j in range(len(sizes))] for i, s in enumerate(sizes)
    ]
    duals = np.zeros(len(sizes))
    for _ in range(200):
        a = np.array(patterns, dtype=np.float64).T
        result = linprog(
            np.ones(len(patterns)), A_ub=-a, b_ub=-np.array(counts, np.float64), method="highs"
        )
        if result.status != 0:
            break
        duals = np.maximum(-np.asarray(result.ineqlin.marginals), 0.0)
        value, pattern = _best_device(sizes, duals)
        if value <= 1.0 + 1e-9 or pattern in patterns:
            break
        patterns.append(pattern)
    return duals


def device_rows(
    tasks: Sequence[TaskKind], demand: Sequence[int]
) -> list[tuple[tuple[int, ...], int]]:
    """Integer rows ``sum_t num[t] x_t <= scale * devices`` for the task kinds (see the
    module docstring): ``(num, scale)`` pairs, a whole-GPU task counted as ``scale`` per
    device it holds and a CPU-only task as 0. Duplicates and rows that no share changes
    are dropped; with no shares at all, one row counts devices."""
    if not any(t.gpu for t in tasks):
        return []
    c = GPU_MILLI
    mix: dict[int, int] = {}
    for t, n in zip(tasks, demand, strict=True):
        if t.share:
            mix[t.share] = mix.get(t.share, 0) + n
    functions: list[tuple[int, Callable[[int], int]]] = [(c, lambda s: s)]
    for theta in sorted({c - s + 1 for s in mix if 2 * s > c}):
        if 2 * theta <= c:

            def f_theta(s: int, theta: int = theta) -> int:
                return c if s > c - theta else (s if s >= theta else 0)

            functions.append((c, f_theta))
    for k in range(1, 5):

        def u_k(s: int, k: int = k) -> int:
            return k * s if (k + 1) * s % c == 0 else ((k + 1) * s // c) * c

        functions.append((c * k, u_k))
    if mix:
        sizes = sorted(mix)
        duals = _cutting_stock_duals(sizes, [mix[s] for s in sizes])
        weight = dict(zip(sizes, (int(d * _DUAL_SCALE) for d in duals), strict=True))
        heaviest = heaviest_device(sizes, [weight[s] for s in sizes])
        if heaviest > 0:
            functions.append((heaviest, weight.__getitem__))
    rows: dict[tuple[int, ...], int] = {}
    for scale, f in functions:
        num = tuple(
            scale * t.whole_devices if t.whole_devices else (f(t.share) if t.share else 0)
            for t in tasks
        )
        if num not in rows and any(num[i] for i, t in enumerate(tasks) if t.share):
            rows[num] = scale
    if not rows:
        rows[tuple(t.whole_devices for t in tasks)] = 1
    return list(rows.items())


def packs(shares: Sequence[int], devices: int, budget: int = 100_000) -> bool:
    """Whether these shares fit ``devices`` devices: first-fit decreasing, else an exact
    depth-first search (largest share first, memoised on the sorted free capacities).
    False also when the search gives up after ``budget`` states, so True is a proof."""
    ordered = sorted((s for s in shares if s), reverse=True)
    if devices < 0 or sum(ordered) > GPU_MILLI * devices:
        return False
    free = [GPU_MILLI] * devices
    for s in ordered:
        slot = next((j for j, room in enumerate(free) if room >= s), None)
        if slot is None:
            break
        free[slot] -= s
    else:
        return True
    seen: set[tuple[int, tuple[int, ...]]] = set()

    def place(i: int, free: tuple[int, ...]) -> bool:
        if i == len(ordered):
            return True
        if (i, free) in seen or len(seen) > budget:
            return False
        seen.add((i, free))
        for j, room in enumerate(free):
            if room >= ordered[i] and (j == 0 or free[j - 1] != room):
                rest = (*free[:j], room - ordered[i], *free[j + 1 :])
                if place(i + 1, tuple(sorted(rest, reverse=True))):
                    return True
        return False

    return place(0, (GPU_MILLI,) * devices)


def separating_row(
    tasks: Sequence[TaskKind], counts: Sequence[int], devices: int
) -> tuple[tuple[int, ...], int] | None:
    """A device row (as in ``device_rows``) that the configuration ``counts`` violates on
    a machine with ``devices`` devices, from the cutting-stock duals of its own shares;
    None when those duals do not separate it (its shares' LP fits the devices)."""
    mix: dict[int, int] = {}
    for t, n in zip(tasks, counts, strict=True):
        if t.share and n:
            mix[t.share] = mix.get(t.share, 0) + int(n)
    if not mix:
        return None
    sizes = sorted(mix)
    duals = _cutting_stock_duals(sizes, [mix[s] for s in sizes])
    weight = dict(zip(sizes, (int(d * _DUAL_SCALE) for d in duals), strict=True))
    scale = heaviest_device(sizes, [weight[s] for s in sizes])
    if scale <= 0:
        return None
    num = tuple(
        scale * t.whole_devices if t.whole_devices else weight.get(t.share, 0) for t in tasks
    )
    used = sum(n * c for n, c in zip(num, counts, strict=True))
    return (num, scale) if used > scale * devices else None
