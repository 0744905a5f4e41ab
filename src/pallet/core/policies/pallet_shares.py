"""What a partly used GPU is worth: cutting-stock duals for GPU shares; pure.

GPU shares pack into devices of ``GPU_MILLI`` like items into bins. Gilmore and
Gomory's cutting-stock LP ("A linear programming approach to the cutting-stock
problem", Operations Research 1961) over the workload's share sizes, solved by column
generation, gives a dual price ``y_s`` per size: the fraction of a device an item of
size ``s`` is worth in a best packing of the whole mix. A device with ``x`` milli idle
is then worth ``V(x)`` devices, the best knapsack of prices that fits in ``x``, and
its expected waste is ``waste(x) = x - GPU_MILLI * V(x)`` milli (negative when the gap
is a sure home for a frequent size, e.g. 810 idle for 810-milli tasks).

Placing a share ``s`` on a device with ``x`` idle changes the waste by
``waste(x - s) - waste(x)``, which is ``GPU_MILLI * y_s - s`` plus the LP reduced
cost of the move: zero when the move is part of some best packing, positive when it
leaves a gap that future tasks fill worse (a 320 into a 530 leaves a 210 gap that
nothing but rare small shares can use). Sizes the LP leaves slack (rare small shares)
get price 0, so gaps only they could fill count as waste.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from pallet.model import GPU_MILLI

__all__ = ["knapsack_values", "share_duals", "waste_table"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_EPS = 1e-9
_MAX_ROUNDS = 200
MAX_SIZES = 64
"""Sizes priced by the LP: the most frequent ones (rarer sizes get price 0, so gaps
only they could fill count as waste)."""


def _priced(prices: Mapping[int, float], capacity: int) -> tuple[IntArray, FloatArray]:
    items = sorted((s, p) for s, p in prices.items() if 0 < s <= capacity and p > 0)
    return (
        np.array([s for s, _ in items], dtype=np.int64),
        np.array([p for _, p in items], dtype=np.float64),
    )


def knapsack_values(prices: Mapping[int, float], capacity: int = GPU_MILLI) -> FloatArray:
    """``V[x]`` for x in 0..capacity: the largest sum of prices of sizes (each size
    usable any number of times) whose sizes add up to at most ``x``."""
    sizes, worth = _priced(prices, capacity)
    value = np.zeros(capacity + 1)
    for x in range(1, capacity + 1):
        n = int(np.searchsorted(sizes, x, side="right"))  # sizes <= x
        best = value[x - 1]
        if n:
            best = max(best, float((value[x - sizes[:n]] + worth[:n]).max()))
        value[x] = best
    return value


def _best_pattern(prices: Mapping[int, float], capacity: int) -> tuple[float, dict[int, int]]:
    """The most valuable pattern (counts per size) that fits one device."""
    value = knapsack_values(prices, capacity)
    sizes, worth = _priced(prices, capacity)
    pattern: dict[int, int] = {}
    x = capacity
    while x > 0:
        n = int(np.searchsorted(sizes, x, side="right"))
        hits = np.flatnonzero(np.abs(value[x - sizes[:n]] + worth[:n] - value[x]) <= _EPS)
        if len(hits):
            s = int(sizes[hits[0]])
            pattern[s] = pattern.get(s, 0) + 1
            x -= s
        else:
            x -= 1  # value[x] == value[x - 1]: this milli stays empty
    return float(value[capacity]), pattern


def share_duals(demand: Mapping[int, float], capacity: int = GPU_MILLI) -> dict[int, float]:
    """Cutting-stock dual price per share size (a fraction of one device), for
    ``demand`` = relative frequency per size. Column generation: start from one
    single-size pattern per size, price a new pattern with a knapsack over the
    current duals, stop when no pattern is worth more than one device."""
    frequent = sorted(
        ((n, s) for s, n in demand.items() if 0 < s < capacity and n > 0), reverse=True
    )[:MAX_SIZES]
    sizes = sorted(s for _, s in frequent)
    if not sizes:
        return {}
    from scipy.optimize import linprog  # imported here: only GPU-share workloads need it

    need = np.array([float(demand[s]) for s in sizes], dtype=np.float64)
    need = need / need.sum()
    columns: list[list[int]] = [[capacity // s if s == t else 0 for t in sizes] for s in sizes]
    prices = dict.fromkeys(sizes, 0.0)
    for _ in range(_MAX_ROUNDS):
        a = np.array(columns, dtype=np.float64).T  # sizes x patterns
        result = linprog(
            np.ones(a.shape[1]),
            A_ub=-a,
            b_ub=-need,
            bounds=(0, None),
            method="highs",
        )
        if result.status != 0:  # pragma: no cover - the LP is always feasible and bounded
            break
        duals = np.maximum(-np.asarray(result.ineqlin.marginals, dtype=np.float64), 0.0)
        prices = {s: float(y) for s, y in zip(sizes, duals, strict=True)}
        worth, pattern = _best_pattern(prices, capacity)
        if worth <= 1.0 + 1e-7:
            break
        column = [pattern.get(s, 0) for s in sizes]
        if column in columns:  # pragma: no cover - numerical stall
            break
        columns.append(column)
    return prices


def waste_table(demand: Mapping[int, float], capacity: int = GPU_MILLI) -> FloatArray:
    """``waste[x]`` (milli) for a device with x milli idle, x in 0..capacity."""
    values = knapsack_values(share_duals(demand, capacity), capacity)
    return np.arange(capacity + 1, dtype=np.float64) - capacity * values
