"""``schedule(requests, view, policy, rng) -> Plan``: the placement pipeline; pure.

    requests ──▶ order by priority ──▶ runs of identical shape
                                            │
       ┌────────────────────────────────────┘
       ▼
    feasibility filters (fit.feasible) ──▶ policy scores ──▶ best score,
    seeded tie-break ──▶ ports + GPU devices ──▶ assume on the view ──▶ next

Within a run of identical requests (the instances of one app version) the feasible
mask and scores are computed once over every node; after each placement only the
node that changed is checked and scored again, when the policy and the constraints
allow it. Unplaced requests carry per-node rejection reasons.

``schedule`` changes ``view`` (it assumes each placement, so later requests see
earlier ones); pass ``view.copy()`` for a dry run.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pallet.core.fit import constraint_is_local, feasible, rejection_reasons
from pallet.core.policies.base import Policy
from pallet.core.view import ClusterView, IntArray
from pallet.model import Placement, PlacementRequest, Plan, Unplaced, assign_ports

__all__ = ["schedule"]

_NEG = -np.inf


def schedule(
    requests: Sequence[PlacementRequest],
    view: ClusterView,
    policy: Policy,
    rng: np.random.Generator,
) -> Plan:
    """Place ``requests`` (higher ``priority`` first, else in the given order)."""
    n = len(view)
    order = sorted(range(len(requests)), key=lambda k: -requests[k].priority)
    rank = view.rank if view.rank is not None else rng.permutation(n).astype(np.int64)
    policy.prepare(view, requests)
    state = _Run(view, policy, rng, rank)
    i = 0
    while i < len(order):
        first = requests[order[i]]
        key = first.shape_key()
        j = i + 1
        while j < len(order) and requests[order[j]].shape_key() == key:
            j += 1
        state.place_run([requests[k] for k in order[i:j]])
        i = j
    return Plan(tuple(state.placements), tuple(state.unplaced))


class _Run:
    """Per-call scratch state: placements so far, the sampling cursor."""

    def __init__(
        self, view: ClusterView, policy: Policy, rng: np.random.Generator, rank: IntArray
    ) -> None:
        self.view = view
        self.policy = policy
        self.rng = rng
        self.rank = rank
        self.placements: list[Placement] = []
        self.unplaced: list[Unplaced] = []
        self.sample = policy.sample_size(len(view))
        self._shuffled: IntArray | None = None
        self._cursor = 0

    def place_run(self, run: list[PlacementRequest]) -> None:
        view, policy = self.view, self.policy
        first = run[0]
        incremental = policy.is_cacheable(first) and all(
            constraint_is_local(c, view) for c in first.constraints
        )
        mask = feasible(view, first)
        scores = self._score_all(first, mask) if self.sample is None else None
        reasons: list[tuple[str, int]] | None = None
        for k, req in enumerate(run):
            if k and not incremental:
                mask = feasible(view, req)
                scores = self._score_all(req, mask) if self.sample is None else None
            row = self._pick(req, mask, scores)
            if row is None:
                if reasons is None:  # nothing changes while placements fail
                    reasons = rejection_reasons(view, req)
                self.unplaced.append(Unplaced(req.id, req.app_id, tuple(reasons)))
                continue
            reasons = None
            self._bind(req, row)
            if incremental and k + 1 < len(run):
                one = np.array([row], dtype=np.int64)
                ok = bool(feasible(view, req, one)[0])
                mask[row] = ok
                if scores is not None:
                    scores[row] = policy.score(view, req, one, self.rng)[0] if ok else _NEG

    def _score_all(self, req: PlacementRequest, mask: np.ndarray) -> np.ndarray:
        scores = np.full(len(self.view), _NEG)
        rows = np.flatnonzero(mask)
        if len(rows):
            scores[rows] = self.policy.score(self.view, req, rows, self.rng)
        return scores

    def _pick(
        self, req: PlacementRequest, mask: np.ndarray, scores: np.ndarray | None
    ) -> int | None:
        if scores is None:
            rows = self._sampled_rows(mask)
            if not len(rows):
                return None
            local = self.policy.score(self.view, req, rows, self.rng)
            best = local.max()
            cands = rows[local == best]
        else:
            best = scores.max()
            if best == _NEG:
                return None
            cands = np.flatnonzero(scores == best)
        if len(cands) == 1:
            return int(cands[0])
        return int(cands[np.argmin(self.rank[cands])])

    def _sampled_rows(self, mask: np.ndarray) -> IntArray:
        """The next ``sample`` feasible rows of a per-call shuffled node order,
        continuing where the previous request stopped (Nomad's limit iterator)."""
        assert self.sample is not None
        n = len(mask)
        if self._shuffled is None:
            self._shuffled = self.rng.permutation(n).astype(np.int64)
        order = np.roll(self._shuffled, -self._cursor)
        hits = np.flatnonzero(mask[order])[: self.sample]
        if not len(hits):
            return hits
        self._cursor = (self._cursor + int(hits[-1]) + 1) % n
        return order[hits]

    def _bind(self, req: PlacementRequest, row: int) -> None:
        view = self.view
        ports: tuple[int, ...] = ()
        if req.ports:
            got = assign_ports(req.ports, view.port_ranges[row], view.ports_used[row])
            assert got is not None, "fit checked the ports"
            ports = got
        gpus = self.policy.choose_gpus(view, req, row, self.rng)
        placement = Placement(req, view.nodes[row].id, ports, gpus)
        view.assume(placement)
        self.placements.append(placement)
