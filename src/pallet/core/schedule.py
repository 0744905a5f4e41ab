"""``schedule(requests, view, policy, rng) -> Plan``: the placement pipeline; pure.

    requests ──▶ order by priority ──▶ runs of identical requests
                                            │
       ┌────────────────────────────────────┘
       ▼
    resource filters ∧ constraints (fit) ──▶ policy scores ──▶ best score,
    seeded tie-break ──▶ ports + GPU devices ──▶ assume on the view ──▶ next

Scores are cached, because most of the work of placing a task is the same for the
next one. For a *resource shape* (resources, port count, fixed ports, GPU models,
accepted roles — not the app) the view keeps a feasibility mask and a score per node, stamped with the
view's epoch. Every change of a node bumps that node's epoch, so reusing an entry
costs one comparison over the rows plus re-scoring only the nodes that changed since.
Constraints depend on the app and are applied on top, per run of identical requests;
after each placement only the changed node is re-checked when every constraint is
local. Policies whose scores are not a function of one node's state opt out
(``Policy.is_cacheable``); those whose scores stay valid across calls opt in to reuse
between calls (``Policy.stable_scores``).

``schedule`` changes ``view`` (it assumes each placement, so later requests see
earlier ones); pass ``view.copy()`` for a dry run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pallet.core.fit import (
    constraint_is_local,
    constraints_hold,
    rejection_reasons,
    resources_fit,
    resources_fit_row,
)
from pallet.core.policies.base import FloatArray, Policy
from pallet.core.view import BoolArray, ClusterView, IntArray
from pallet.model import Placement, PlacementRequest, Plan, Unplaced, assign_ports

__all__ = ["schedule"]

_NEG = -np.inf


def schedule(
    requests: Sequence[PlacementRequest],
    view: ClusterView,
    policy: Policy,
    rng: np.random.Generator,
) -> Plan:
    """Place ``requests`` in the policy's order (by default higher ``priority``
    first, else in the given order)."""
    n = len(view)
    rank = view.rank if view.rank is not None else rng.permutation(n).astype(np.int64)
    policy.prepare(view, requests)
    chosen = policy.order(view, requests)
    order = (
        sorted(range(len(requests)), key=lambda k: -requests[k].priority)
        if chosen is None
        else list(chosen)
    )
    if sorted(order) != list(range(len(requests))):
        raise ValueError(f"policy {policy.name!r} returned an order that is not a permutation")
    state = _Run(view, policy, rng, rank)
    i = 0
    while i < len(order):
        key = requests[order[i]].shape_key()
        j = i + 1
        while j < len(order) and requests[order[j]].shape_key() == key:
            j += 1
        state.place_run([requests[k] for k in order[i:j]])
        i = j
    return Plan(tuple(state.placements), tuple(state.unplaced))


def _resource_key(req: PlacementRequest) -> tuple[object, ...]:
    return (
        req.resources,
        len(req.ports),
        tuple(p for p in req.ports if p),
        req.gpu_models,
        req.accepted_roles,
    )


@dataclass(slots=True)
class _Entry:
    """Feasibility (resources only) and scores of one resource shape, as of ``epoch``."""

    policy: Policy
    epoch: int
    mask: BoolArray
    scores: FloatArray | None  # None for sampling policies (they score per request)


class _Run:
    """Per-call state: placements so far and the sampling cursor."""

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
        if not policy.stable_scores:
            for key in [k for k, e in view.caches.items() if getattr(e, "policy", None) is policy]:
                del view.caches[key]

    # ------------------------------------------------------------------ caching

    def _entry(self, req: PlacementRequest, changed: int | None = None) -> _Entry:
        """The cached entry for ``req``'s resource shape, brought up to date.
        ``changed``: the row the caller just changed, if it knows that is all."""
        view, policy = self.view, self.policy
        key = ("shape", _resource_key(req))
        entry = view.caches.get(key)
        if not isinstance(entry, _Entry) or entry.policy is not policy:
            mask = resources_fit(view, req)
            entry = _Entry(policy, view.epoch, mask, self._scores_for(req, mask))
            view.caches[key] = entry
            return entry
        if entry.epoch == view.epoch:
            return entry
        if changed is not None and entry.epoch == view.epoch - 1:
            self._refresh_row(entry, req, changed)
        else:
            self._refresh(entry, req, np.flatnonzero(view.row_epoch > entry.epoch))
        entry.epoch = view.epoch
        return entry

    def _refresh_row(self, entry: _Entry, req: PlacementRequest, row: int) -> None:
        ok = resources_fit_row(self.view, req, row)
        entry.mask[row] = ok
        if entry.scores is not None:
            one = np.array([row], dtype=np.int64)
            entry.scores[row] = self.policy.score(self.view, req, one, self.rng)[0] if ok else _NEG

    def _scores_for(self, req: PlacementRequest, mask: BoolArray) -> FloatArray | None:
        if self.sample is not None:
            return None
        scores = np.full(len(self.view), _NEG)
        rows = np.flatnonzero(mask)
        if len(rows):
            scores[rows] = self.policy.score(self.view, req, rows, self.rng)
        return scores

    def _refresh(self, entry: _Entry, req: PlacementRequest, rows: IntArray) -> None:
        if not len(rows):
            return
        ok = resources_fit(self.view, req, rows)
        entry.mask[rows] = ok
        if entry.scores is not None:
            entry.scores[rows] = _NEG
            good = rows[ok]
            if len(good):
                entry.scores[good] = self.policy.score(self.view, req, good, self.rng)

    # ------------------------------------------------------------------ placing

    def place_run(self, run: list[PlacementRequest]) -> None:
        view, policy = self.view, self.policy
        first = run[0]
        cacheable = policy.is_cacheable(first)
        local = all(constraint_is_local(c, view) for c in first.constraints)
        reasons: list[tuple[str, int]] | None = None
        mask, scores = self._run_arrays(first, cacheable)
        for k, req in enumerate(run):
            if k and not (cacheable and local):
                mask, scores = self._run_arrays(req, cacheable)
            row = self._pick(req, mask, scores)
            if row is None:
                if reasons is None:  # nothing changes while placements fail
                    reasons = rejection_reasons(view, req)
                self.unplaced.append(Unplaced(req.id, req.app_id, tuple(reasons)))
                continue
            reasons = None
            self._bind(req, row)
            if cacheable and local and k + 1 < len(run):
                one = np.array([row], dtype=np.int64)
                entry = self._entry(req, row)
                ok = bool(entry.mask[row]) and (
                    not (req.constraints or req.node_id is not None)
                    or bool(constraints_hold(view, req, one)[0])
                )
                mask[row] = ok
                if scores is not None and entry.scores is not None:
                    scores[row] = entry.scores[row] if ok else _NEG

    def _run_arrays(
        self, req: PlacementRequest, cacheable: bool
    ) -> tuple[BoolArray, FloatArray | None]:
        """Mask and scores for a run, private to it (constraints applied)."""
        if cacheable:
            entry = self._entry(req)
            base_mask, base_scores = entry.mask, entry.scores
        else:
            base_mask = resources_fit(self.view, req)
            base_scores = None
        if req.constraints or req.node_id is not None:
            mask = base_mask & constraints_hold(self.view, req)
        else:
            mask = base_mask.copy()
        if self.sample is not None:
            return mask, None
        if base_scores is None:
            return mask, self._scores_for(req, mask)
        return mask, np.where(mask, base_scores, _NEG)

    def _pick(
        self, req: PlacementRequest, mask: BoolArray, scores: FloatArray | None
    ) -> int | None:
        if scores is None:
            rows = self._sampled_rows(mask)
            if not len(rows):
                return None
            local = self.policy.score(self.view, req, rows, self.rng)
            cands = rows[local == local.max()]
        else:
            if not len(scores):  # a cluster without nodes
                return None
            best = scores.max()
            if best == _NEG:
                return None
            cands = np.flatnonzero(scores == best)
        if len(cands) == 1:
            return int(cands[0])
        return int(cands[np.argmin(self.rank[cands])])

    def _sampled_rows(self, mask: BoolArray) -> IntArray:
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
