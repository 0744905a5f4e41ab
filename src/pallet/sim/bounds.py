"""Lower bounds on the machines a workload needs, over a fixed machine order; pure.

Three bounds, each at least the one before. All answer "what is the smallest prefix
``machines[:k]`` that could possibly hold every request?", so no policy can fit the
workload on fewer machines of that order.

**Volume bound.** The smallest ``k`` whose summed capacity covers the summed demand in
cpu, memory, disk and GPU milli, each on its own.

**LP bound.** The smallest ``k`` for which this linear program is feasible. Requests
are grouped into *task types* ``t`` (identical resources and allowed GPU models; ``n_t``
of each) and the first ``k`` machines into *machine types* ``m`` (identical capacity,
GPU count and model; ``K_m`` of each). The variable ``y[t, m] in [0, 1]`` is the share
of type ``t`` placed on machines of type ``m``, defined only where one task of ``t``
fits an empty machine of ``m`` (every resource, enough GPU devices, an allowed model).

- every task is placed: ``sum_m y[t, m] = 1``;
- capacity, per machine type and resource ``d``: ``sum_t n_t a[t, d] y[t, m] <= K_m c[m, d]``;
- big tasks, per machine type and resource: a task asking more than half of a machine's
  ``d`` cannot share that machine with another such task, so
  ``sum_{t: 2 a[t, d] > c[m, d]} n_t y[t, m] <= K_m``;
- GPU devices, per machine type: whole-GPU tasks hold their devices and a share above
  half a device holds one (no second such share fits on it), so
  ``sum_t n_t h[t] y[t, m] <= K_m G_m`` with ``h`` those devices and ``G_m`` per machine.

Why it is a valid lower bound: take any placement of all requests on the first ``k``
machines (whatever the policy). Setting ``y[t, m]`` to the fraction of type-``t``
tasks it put on type-``m`` machines satisfies every constraint: each task sits on a
machine it fits alone; summing each machine's capacity over a machine type gives the
capacity rows; and each machine holds at most one task bigger than half of it in a
given resource. So the LP is feasible at that ``k``, and the smallest feasible ``k``
is at most the policy's. What is relaxed: integrality (tasks split across machines),
GPU devices (a share needs room on *one* device and whole GPUs need idle devices, but
the LP only counts milli-GPUs in total), host ports and placement constraints (dropped).
Feasibility only grows with ``k`` (more capacity), so a binary search finds the smallest.
The volume bound is the LP without the per-type split and the big-task rows, hence
``volume <= lp``.

**Configuration LP** (``sim.configlp``): machines hold whole *configurations* (sets of
tasks that fit one machine together) instead of aggregate capacity, so it sees what the
two above miss, e.g. memory-heavy VMs that strand cpu, or the 190 milli beside an 810
GPU share that only small shares can use. Every configuration it prices also satisfies
the LP's rows, so ``lp <= config_lp``; its search starts from ``lp``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import linprog
from scipy.sparse import coo_matrix

from pallet.model import GPU_MILLI, Node, NodeState, PlacementRequest
from pallet.sim.configlp import config_lp_bound

__all__ = [
    "Bounds",
    "compute_bounds",
    "config_lp_bound",
    "lp_bound",
    "lp_feasible",
    "volume_bound",
]

_SLACK = 1e-9  # relative; keeps an exactly full packing feasible under solver round-off


@dataclass(frozen=True, slots=True)
class Bounds:
    """The bounds over one machine order (None: not even the whole order suffices, or,
    for ``config_lp``, not computed)."""

    volume: int | None
    lp: int | None
    config_lp: int | None = None

    @property
    def lower(self) -> int | None:
        """The largest bound that is a number."""
        known = [b for b in (self.volume, self.lp, self.config_lp) if b is not None]
        return max(known) if known else None


def _capacity(machines: Sequence[Node]) -> npt.NDArray[np.int64]:
    caps = np.array([m.capacity.as_tuple() for m in machines], dtype=np.int64).reshape(-1, 4)
    active = np.array([m.state is NodeState.ACTIVE for m in machines], dtype=np.int64)
    caps *= active[:, None]
    return caps


def volume_bound(requests: Sequence[PlacementRequest], machines: Sequence[Node]) -> int | None:
    """The smallest ``k`` with ``sum(capacity[:k]) >= sum(demand)`` in every resource."""
    demand = np.zeros(4, dtype=np.int64)
    for req in requests:
        demand += np.array(req.resources.as_tuple(), dtype=np.int64)
    cum = np.cumsum(_capacity(machines), axis=0)
    k = 0
    for d in range(4):
        if demand[d] == 0:
            continue
        if not len(cum) or cum[-1, d] < demand[d]:
            return None
        k = max(k, int(np.searchsorted(cum[:, d], demand[d], side="left")) + 1)
    return k


TaskKey = tuple[int, int, int, int, frozenset[str]]
MachineKey = tuple[int, int, int, int, str]


class _Program:
    """The LP of the module docstring for one workload and one machine order."""

    def __init__(self, requests: Sequence[PlacementRequest], machines: Sequence[Node]) -> None:
        counts: Counter[TaskKey] = Counter(
            (*r.resources.as_tuple(), r.gpu_models if r.resources.gpu_milli else frozenset())
            for r in requests
        )
        self.tasks = list(counts)
        self.n = np.array([counts[t] for t in self.tasks], dtype=np.float64)
        kinds: dict[MachineKey, int] = {}
        index = []
        for m in machines:
            if m.state is not NodeState.ACTIVE:
                index.append(-1)
                continue
            key = (*m.capacity.as_tuple()[:3], m.gpu_count, m.gpu_model)
            index.append(kinds.setdefault(key, len(kinds)))
        self.kinds = list(kinds)
        onehot = np.zeros((len(machines) + 1, len(kinds)), dtype=np.int64)
        for pos, kind in enumerate(index):
            if kind >= 0:
                onehot[pos + 1, kind] = 1
        self.prefix = np.cumsum(onehot, axis=0)  # prefix[k, m] = K_m among machines[:k]
        self.pairs = [
            (t, m)
            for t, task in enumerate(self.tasks)
            for m, kind in enumerate(self.kinds)
            if _fits_alone(task, kind)
        ]

    def feasible(self, k: int) -> bool:
        have = self.prefix[k]
        pairs = [(t, m) for t, m in self.pairs if have[m] > 0]
        placed = {t for t, _ in pairs}
        if len(placed) < len(self.tasks):
            return False  # some task type fits no machine among the first k
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        eq_rows: list[int] = []
        eq_cols: list[int] = []
        n_rows = 0
        row_of: dict[tuple[int, int, int], int] = {}  # (machine type, resource, cut) -> row
        for j, (t, m) in enumerate(pairs):
            eq_rows.append(t)
            eq_cols.append(j)
            task, kind = self.tasks[t], self.kinds[m]
            demand = (task[0], task[1], task[2], task[3], _devices_held(task[3]))
            cap = (kind[0], kind[1], kind[2], kind[3] * GPU_MILLI, kind[3])
            for d in range(5):
                if not demand[d]:
                    continue
                for cut, coef in ((0, demand[d] / cap[d]), (1, 1.0)):
                    if cut and (d == 4 or 2 * demand[d] <= cap[d]):
                        continue
                    key = (m, d, cut)
                    row = row_of.get(key)
                    if row is None:
                        row = row_of[key] = n_rows
                        n_rows += 1
                    rows.append(row)
                    cols.append(j)
                    vals.append(self.n[t] * coef / have[m])  # both rows scaled to <= 1
        if not pairs:
            return not self.tasks
        a_eq = coo_matrix(
            (np.ones(len(pairs)), (eq_rows, eq_cols)), shape=(len(self.tasks), len(pairs))
        )
        a_ub = coo_matrix((vals, (rows, cols)), shape=(max(n_rows, 1), len(pairs)))
        result = linprog(
            np.zeros(len(pairs)),
            A_ub=a_ub.tocsr(),
            b_ub=np.full(max(n_rows, 1), 1.0 + _SLACK),
            A_eq=a_eq.tocsr(),
            b_eq=np.ones(len(self.tasks)),
            bounds=(0.0, 1.0),
            method="highs",
        )
        # 2 = proven infeasible; anything else unproven counts as feasible, so the
        # bound can only err low.
        return bool(result.status != 2)


def _devices_held(gpu: int) -> int:
    """GPU devices a task holds alone: whole devices, or one for a share above half a
    device (no other such share fits beside it); smaller shares hold none."""
    if gpu >= GPU_MILLI:
        return gpu // GPU_MILLI
    return 1 if 2 * gpu > GPU_MILLI else 0


def _fits_alone(task: TaskKey, kind: MachineKey) -> bool:
    cpu, mem, disk, gpu, models = task
    kcpu, kmem, kdisk, kgpus, kmodel = kind
    if cpu > kcpu or mem > kmem or disk > kdisk:
        return False
    if not gpu:
        return True
    devices = 1 if gpu < GPU_MILLI else gpu // GPU_MILLI
    return kgpus >= devices and (not models or kmodel in models)


def lp_feasible(requests: Sequence[PlacementRequest], machines: Sequence[Node], k: int) -> bool:
    """Whether the LP relaxation is feasible on ``machines[:k]``."""
    return _Program(requests, machines).feasible(k)


def lp_bound(
    requests: Sequence[PlacementRequest], machines: Sequence[Node], start: int | None = None
) -> int | None:
    """The smallest ``k`` whose LP is feasible (None if not even all machines).
    ``start`` is a known lower bound to search from (default: the volume bound)."""
    low = start if start is not None else volume_bound(requests, machines)
    if low is None:
        return None
    program = _Program(requests, machines)
    high = len(machines)
    if not program.feasible(high):
        return None
    low = max(low, 0)
    if program.feasible(low):
        return low
    while high - low > 1:  # low infeasible, high feasible
        mid = (low + high) // 2
        if program.feasible(mid):
            high = mid
        else:
            low = mid
    return high


def compute_bounds(
    requests: Sequence[PlacementRequest], machines: Sequence[Node], *, config_lp: bool = True
) -> Bounds:
    """The bounds over ``machines`` in the given order, each search starting from the
    one before (``config_lp=False`` skips the configuration LP, the slow one)."""
    volume = volume_bound(requests, machines)
    lp = lp_bound(requests, machines, start=volume) if volume is not None else None
    config = config_lp_bound(requests, machines, start=lp) if config_lp and lp is not None else None
    return Bounds(volume, lp, config)
