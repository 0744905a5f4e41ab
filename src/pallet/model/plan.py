"""What the scheduler decided: placements and the reasons for what it could not place; pure."""

from __future__ import annotations

import json
from dataclasses import dataclass

from pallet.model.request import PlacementRequest
from pallet.model.resources import Resources

__all__ = ["Placement", "Plan", "Unplaced"]


@dataclass(frozen=True, slots=True)
class Placement:
    """One task bound to one node, with its host ports and GPU shares ``(device, milli)``."""

    request: PlacementRequest
    node_id: str
    ports: tuple[int, ...] = ()
    gpus: tuple[tuple[int, int], ...] = ()

    @property
    def request_id(self) -> str:
        return self.request.id

    @property
    def app_id(self) -> str:
        return self.request.app_id

    @property
    def resources(self) -> Resources:
        return self.request.resources


@dataclass(frozen=True, slots=True)
class Unplaced:
    """A request no node could take, with per-node rejection reasons counted."""

    request_id: str
    app_id: str
    reasons: tuple[tuple[str, int], ...]

    def summary(self) -> str:
        """``3 nodes: insufficient mem; 2 nodes: constraint hostname UNIQUE``."""
        if not self.reasons:
            return "no nodes in the cluster"
        return "; ".join(f"{n} node{'s' if n != 1 else ''}: {r}" for r, n in self.reasons)


@dataclass(frozen=True, slots=True)
class Plan:
    placements: tuple[Placement, ...] = ()
    unplaced: tuple[Unplaced, ...] = ()

    def to_json(self) -> str:
        """A canonical text form: the same plan always gives the same bytes."""
        doc = {
            "placements": [
                [
                    p.request_id,
                    p.app_id,
                    p.node_id,
                    list(p.resources.as_tuple()),
                    list(p.ports),
                    [list(g) for g in p.gpus],
                ]
                for p in self.placements
            ],
            "unplaced": [
                [u.request_id, u.app_id, [list(r) for r in u.reasons]] for u in self.unplaced
            ],
        }
        return json.dumps(doc, separators=(",", ":"), sort_keys=True)
