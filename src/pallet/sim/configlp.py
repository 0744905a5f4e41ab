"""The configuration-LP lower bound (Gilmore and Gomory, 1961) by column generation;
pure (HiGHS through highspy and scipy, no I/O).

**Formulation.** Requests are grouped into task kinds ``t`` (identical cpu, memory,
disk, milli-GPUs and allowed models; ``n_t`` of each) and machines into machine kinds
``b`` (identical capacity, GPU count and model; ``m_b(k)`` of them among the first
``k`` of the order). A *configuration* ``c`` of kind ``b`` is a multiset of tasks that
one machine of kind ``b`` holds (``a[t, c]`` of kind ``t``). The LP at ``k``::

    sum_c lambda[b, c] <= m_b(k)                  for every machine kind b
    sum_{b, c} a[t, c] lambda[b, c] >= n_t        for every task kind t
    lambda >= 0

Any real placement of the workload on ``machines[:k]`` is a feasible point (``lambda``
counts the machines of each kind holding each configuration), so if the LP is
infeasible at ``k`` no policy fits on ``k`` machines, provided the configurations
include every truly feasible single-machine packing. They do: ``sim.pricing`` allows
every multiset that fits cpu, memory and disk and satisfies the device rows of
``sim.devices``, which every real GPU packing satisfies (a relaxation of device
packing, never a restriction). Ports and placement constraints are dropped, as in
``sim.bounds``.

**Certificates.** Infeasibility is never inferred from a restricted master. For any
duals ``pi >= 0`` and ``u_b >= max_c pi . a[:, c]`` over *all* configurations of ``b``
(the pricing knapsack's dual bound), each feasible ``lambda`` gives
``pi . n <= sum_b u_b lambda_b <= sum_b m_b(k) u_b`` (the Lagrangian, or Farley's,
argument). So ``pi . n > sum_b m_b(k) u_b`` proves the LP infeasible at ``k`` and,
because ``m_b(k)`` only grows with ``k``, at every smaller ``k`` too: one certificate
rules out a range of ``k``. The returned bound is always the first ``k`` that no
certificate rules out, whatever stopped the search, so it is always valid.

**Search.** Start at ``start`` (a bound already proven, e.g. the assignment LP's, which
this LP dominates) and, at the current ``k``, minimise the weighted shortfall
``sum_t w_t s_t`` (``s_t`` added to task row ``t``) by column generation: solve the
restricted master, price every present machine kind at smoothed duals, add improving
columns. Stop when the shortfall is 0 (the LP is feasible at ``k``) or a certificate
proves ``k`` infeasible (jump to the first ``k`` it does not cover). Columns are kept
across ``k``. Round and cut caps only stop the search early: ``ConfigLP.exact`` says
whether the LP was shown feasible at the bound (then the bound is the LP's own value).

**Cuts.** When the LP is feasible, the configurations it uses are checked for real
device packing (``sim.devices.packs``). One that does not pack gets a separating device
row (from the cutting-stock duals of its own shares), added to every pricer; columns
that break it are dropped, and the same ``k`` is solved again. When every configuration
in use packs (``ConfigLP.packable``), the bound is also the value of the LP over
exactly the configurations that fit, device by device.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import linprog
from scipy.sparse import csc_matrix

from pallet.model import Node, NodeState, PlacementRequest
from pallet.sim.devices import device_rows, packs, separating_row
from pallet.sim.pricing import MachineKind, Pricer, TaskKind, fits_alone

__all__ = ["ConfigLP", "config_lp_bound", "config_lp_search"]

_FEASIBLE = 1e-6  # weighted shortfall below which the LP counts as feasible
_MARGIN = 1e-6  # relative margin a certificate must clear, far above solver round-off
_IMPROVING = 1e-7  # relative reduced value a new column needs
_SMOOTHING = 0.5  # weight of the stability centre in the smoothed duals


@dataclass(frozen=True, slots=True)
class ConfigLP:
    """The configuration-LP bound and how it was reached.

    ``bound``: every ``k < bound`` is certified infeasible (None: even the whole order
    is). ``exact``: the LP was also shown feasible at ``bound``, so it is the LP's own
    answer; False when the search stopped at its round cap or on solver round-off (the
    bound is valid either way). ``packable``: every configuration of that feasible
    solution really packs its GPU shares on devices. ``rounds``: master solves;
    ``knapsacks``: pricing solves; ``cuts``: rounds of device rows added."""

    bound: int | None
    exact: bool
    rounds: int = 0
    knapsacks: int = 0
    columns: int = 0
    cuts: int = 0
    packable: bool = False


class _Instance:
    """Task kinds, machine kinds, their prefix counts and one pricer per machine kind."""

    def __init__(self, requests: Sequence[PlacementRequest], machines: Sequence[Node]) -> None:
        counts: Counter[TaskKind] = Counter(
            TaskKind(
                *r.resources.as_tuple(), r.gpu_models if r.resources.gpu_milli else frozenset()
            )
            for r in requests
        )
        self.tasks = list(counts)
        self.n = np.array([counts[t] for t in self.tasks], dtype=np.float64)
        kinds: dict[MachineKind, int] = {}
        positions: list[tuple[int, int]] = []
        for pos, m in enumerate(machines):
            if m.state is NodeState.ACTIVE:  # others take no tasks
                kind = MachineKind(*m.capacity.as_tuple()[:3], m.gpu_count, m.gpu_model)
                positions.append((pos + 1, kinds.setdefault(kind, len(kinds))))
        self.kinds = list(kinds)
        steps = np.zeros((len(machines) + 1, len(kinds)), dtype=np.int64)
        for pos, b in positions:
            steps[pos, b] = 1
        self.prefix = np.cumsum(steps, axis=0)  # prefix[k, b] = m_b(k)
        self.fits = np.array(
            [[fits_alone(t, kind) for kind in self.kinds] for t in self.tasks], dtype=bool
        ).reshape(len(self.tasks), len(self.kinds))
        demand = [counts[t] for t in self.tasks]
        rows = device_rows(self.tasks, demand)
        self.pricers = [Pricer(kind, self.tasks, demand, rows) for kind in self.kinds]
        # The shortfall of a task costs its largest share of a mean machine, so the first
        # duals already look like the volume bound's.
        sizes = np.array([(t.cpu, t.mem, t.disk, t.gpu) for t in self.tasks], np.float64)
        caps = np.array([(k.cpu, k.mem, k.disk, 1000 * k.gpus) for k in self.kinds], np.float64)
        mean = (self.prefix[-1] @ caps.reshape(-1, 4)) / max(int(self.prefix[-1].sum()), 1)
        self.weight = np.maximum((sizes.reshape(-1, 4) / np.maximum(mean, 1.0)).max(axis=1), 1e-3)

    def first_placeable(self) -> int | None:
        """The smallest ``k`` on which every task kind fits alone on some machine."""
        reachable = (self.prefix @ self.fits.T.astype(np.int64)) > 0  # [k, t]
        ok = np.flatnonzero(reachable.all(axis=1))
        return int(ok[0]) if len(ok) else None


class _Master:
    """The restricted master: every column found so far, of every machine kind."""

    def __init__(self, n_tasks: int) -> None:
        self.n_tasks = n_tasks
        self.kind: list[int] = []
        self.cols: list[npt.NDArray[np.int64]] = []
        self.seen: set[tuple[int, bytes]] = set()
        self.used: list[int] = []  # columns with a positive value in the last solve

    def add(self, b: int, counts: npt.NDArray[np.int64]) -> bool:
        key = (b, counts.tobytes())
        if not counts.any() or key in self.seen:
            return False
        self.seen.add(key)
        self.kind.append(b)
        self.cols.append(counts)
        return True

    def keep(self, wanted: Sequence[bool]) -> None:
        """Drop the columns not ``wanted``."""
        kept = [j for j, w in enumerate(wanted) if w]
        self.kind = [self.kind[j] for j in kept]
        self.cols = [self.cols[j] for j in kept]
        self.seen = {(b, c.tobytes()) for b, c in zip(self.kind, self.cols, strict=True)}
        self.used = []

    def solve(
        self,
        n: npt.NDArray[np.float64],
        weight: npt.NDArray[np.float64],
        have: npt.NDArray[np.int64],
    ) -> tuple[float, npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Minimise the weighted shortfall with ``have[b]`` machines of each kind:
        (shortfall, task duals ``0 <= pi <= weight``, machine-kind duals ``mu >= 0``)."""
        live = [j for j, b in enumerate(self.kind) if have[b] > 0]
        kinds = np.flatnonzero(have > 0)
        row_of = {int(b): i for i, b in enumerate(kinds)}
        t = self.n_tasks
        a = np.array([self.cols[j] for j in live], dtype=np.float64).reshape(-1, t).T
        use = np.zeros((len(kinds), len(live) + t))
        for i, j in enumerate(live):
            use[row_of[self.kind[j]], i] = 1.0
        result = linprog(
            np.concatenate([np.zeros(len(live)), weight]),
            A_ub=csc_matrix(np.vstack([np.hstack([-a, -np.eye(t)]), use])),
            b_ub=np.concatenate([-n, have[kinds].astype(np.float64)]),
            bounds=(0, None),
            method="highs",
        )
        if result.status != 0:  # always feasible (shortfall) and bounded (>= 0)
            raise RuntimeError(f"configuration LP master: {result.message}")
        self.used = [live[i] for i in np.flatnonzero(result.x[: len(live)] > 1e-9)]
        marginals = -np.asarray(result.ineqlin.marginals)
        mu = np.zeros(len(have))
        mu[kinds] = np.maximum(marginals[t:], 0.0)
        return float(result.fun), np.clip(marginals[:t], 0.0, None), mu


class _Search:
    """Column generation at one ``k`` after another, keeping every column."""

    def __init__(self, instance: _Instance, max_rounds: int) -> None:
        self.inst = instance
        self.master = _Master(len(instance.tasks))
        self.rounds_left = max_rounds
        self.rounds = 0
        self.packable = False
        for b, pricer in enumerate(instance.pricers):  # one kind of task per machine
            for i, t in enumerate(pricer.cols):
                col = np.zeros(len(instance.tasks), dtype=np.int64)
                col[t] = pricer.upper[i]
                self.master.add(b, col)

    def certified_below(self, pi: npt.NDArray[np.float64], upper: dict[int, float]) -> int:
        """The first ``k`` from which the certificate ``(pi, upper)`` no longer proves
        infeasibility (0: it proves nothing). Kinds missing from ``upper`` are priced."""
        u = np.array(
            [upper[b] if b in upper else p.best(pi).upper for b, p in enumerate(self.inst.pricers)]
        )
        worth = float(pi @ self.inst.n) * (1.0 - _MARGIN)
        used = self.inst.prefix @ (u * (1.0 + _MARGIN))  # nondecreasing in k
        return int(np.searchsorted(used, worth, side="left"))

    def tighten(self) -> bool:
        """Check the columns of the last (feasible) master solution for real device
        packing; add a separating device row for each that does not pack, to every
        pricer, and drop every column that breaks one. Whether any row was added."""
        tasks = self.inst.tasks
        rows = []
        self.packable = True
        for j in self.master.used:
            counts, kind = self.master.cols[j], self.inst.kinds[self.master.kind[j]]
            whole = sum(tasks[t].whole_devices * int(counts[t]) for t in np.flatnonzero(counts))
            shares = [tasks[t].share for t in np.flatnonzero(counts) for _ in range(counts[t])]
            if kind.gpus and not packs(shares, kind.gpus - whole):
                self.packable = False
                row = separating_row(tasks, list(counts), kind.gpus)
                if row is not None:
                    rows.append(row)
        if not rows:
            return False
        pricers = self.inst.pricers
        for pricer in pricers:
            pricer.add_device_rows(rows)
        kinds, cols = self.master.kind, self.master.cols
        self.master.keep([pricers[b].satisfies(c) for b, c in zip(kinds, cols, strict=True)])
        return True

    def at(self, k: int) -> tuple[bool, int]:
        """Column generation on ``machines[:k]``: (LP feasible, first ``k`` not proven
        infeasible); ``(False, k)`` means unresolved (round cap or round-off).

        Duals are smoothed (Wentges, 1997): pricing runs at a mix of the master's duals
        and the stability centre, the duals with the best Lagrangian bound so far, which
        damps the oscillation that makes plain column generation tail off. A column is
        added when it improves on the master's own duals; when none does at the mix,
        the next round prices at the master's duals alone."""
        have = self.inst.prefix[k]
        present = [int(b) for b in np.flatnonzero(have)]
        center: npt.NDArray[np.float64] | None = None
        center_bound = -np.inf
        while self.rounds_left > 0:
            self.rounds_left -= 1
            self.rounds += 1
            shortfall, master_pi, mu = self.master.solve(self.inst.n, self.inst.weight, have)
            if shortfall <= _FEASIBLE:
                return True, k
            pi = master_pi if center is None else _SMOOTHING * center + (1 - _SMOOTHING) * master_pi
            priced = {b: self.inst.pricers[b].best(pi) for b in present}
            upper = {b: p.upper for b, p in priced.items()}
            worth = float(pi @ self.inst.n)
            used = sum(have[b] * upper[b] for b in present)
            if worth * (1.0 - _MARGIN) > used * (1.0 + _MARGIN):  # proves k: how far?
                return False, max(self.certified_below(pi, upper), k + 1)
            bound = worth - used  # Lagrangian bound on the shortfall at k
            if bound > center_bound:
                center, center_bound = pi, bound
            added = [
                self.master.add(b, p.counts)
                for b, p in priced.items()
                if float(master_pi @ p.counts) > mu[b] + _IMPROVING * max(1.0, mu[b])
            ]
            if not any(added):
                if pi is master_pi:
                    return False, k  # converged without a certificate: round-off
                center, center_bound = None, -np.inf  # mispriced at the mix
        return False, k


def config_lp_search(
    requests: Sequence[PlacementRequest],
    machines: Sequence[Node],
    *,
    start: int = 0,
    max_rounds: int = 500,
    max_cuts: int = 20,
) -> ConfigLP:
    """The smallest ``k >= start`` whose configuration LP is not proven infeasible on
    ``machines[:k]`` (see the module docstring). ``start`` must itself be a valid lower
    bound (e.g. the volume or assignment-LP bound); ``max_rounds`` caps master solves."""
    if not requests:
        return ConfigLP(0, True, packable=True)
    inst = _Instance(requests, machines)
    placeable = inst.first_placeable()
    if placeable is None:
        return ConfigLP(None, True)
    search = _Search(inst, max_rounds)
    k = max(start, placeable)
    feasible = True
    cuts = 0
    while k <= len(machines):
        feasible, first_open = search.at(k)
        if feasible and cuts < max_cuts and search.tighten():
            cuts += 1
            continue  # the solution used configurations that do not really pack: again
        if feasible or first_open == k:
            break
        k = first_open
    knapsacks = sum(p.solves for p in inst.pricers)
    bound = k if k <= len(machines) else None
    exact = feasible or bound is None
    packable = feasible and bound is not None and cuts < max_cuts and search.packable
    columns = len(search.master.cols)
    return ConfigLP(bound, exact, search.rounds, knapsacks, columns, cuts, packable)


def config_lp_bound(
    requests: Sequence[PlacementRequest],
    machines: Sequence[Node],
    *,
    start: int = 0,
    max_rounds: int = 500,
) -> int | None:
    """The configuration-LP lower bound: no placement of ``requests`` fits on fewer of
    ``machines`` (in order); None if not even all of them can hold it."""
    return config_lp_search(requests, machines, start=start, max_rounds=max_rounds).bound
