"""acceptedResourceRoles in placement: a node's role must be one the request accepts."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from factories import node, req
from pallet.core import ClusterView, make_policy, schedule
from pallet.core.fit import feasible, rejection_reasons, why_not
from pallet.model import PlacementRequest


def _roles(r: PlacementRequest, *roles: str) -> PlacementRequest:
    return dataclasses.replace(r, accepted_roles=frozenset(roles))


def _view() -> ClusterView:
    public = dataclasses.replace(node("pub"), role="slave_public")
    return ClusterView([node("a"), node("b"), public])


@pytest.mark.parametrize(
    ("accepted", "fits"),
    [
        # Marathon's default ["*"]: unreserved nodes only, never the public one.
        (("*",), [True, True, False]),
        (("slave_public",), [False, False, True]),
        (("slave_public", "*"), [True, True, True]),
        (("dev",), [False, False, False]),  # no node has that role
    ],
)
def test_a_node_fits_only_a_role_the_request_accepts(
    accepted: tuple[str, ...], fits: list[bool]
) -> None:
    view = _view()
    r = _roles(req(), *accepted)
    assert feasible(view, r).tolist() == fits
    for row, ok in enumerate(fits):
        assert (why_not(view, r, row) is None) == ok


def test_the_rejection_names_the_role() -> None:
    view = _view()
    assert rejection_reasons(view, _roles(req(), "slave_public")) == [("role not accepted", 2)]
    # A node of the right role that is full is rejected for its resources, not its role.
    big = _roles(req(cpu=9000), "slave_public")
    assert rejection_reasons(view, big) == [("role not accepted", 2), ("insufficient cpus", 1)]


def test_schedule_keeps_public_apps_on_public_nodes_and_the_rest_off_them() -> None:
    view = _view()
    public = [_roles(req("/edge", id=f"e{i}", cpu=100), "slave_public") for i in range(4)]
    private = [req("/web", id=f"w{i}", cpu=100) for i in range(6)]
    plan = schedule([*public, *private], view, make_policy("pallet"), np.random.default_rng(1))
    assert not plan.unplaced
    where = {p.request_id: p.node_id for p in plan.placements}
    assert {where[f"e{i}"] for i in range(4)} == {"pub"}
    assert "pub" not in {where[f"w{i}"] for i in range(6)}


def test_the_score_cache_tells_roles_apart() -> None:
    # Same resources, different accepted roles: one cached mask must not serve both.
    view = _view()
    policy = make_policy("pallet")
    rng = np.random.default_rng(0)
    first = schedule([_roles(req("/x", id="x"), "slave_public")], view, policy, rng)
    second = schedule([req("/y", id="y")], view, policy, rng)
    assert first.placements[0].node_id == "pub"
    assert second.placements[0].node_id != "pub"


def test_an_empty_accepted_set_is_refused() -> None:
    with pytest.raises(ValueError, match="accept at least one role"):
        _roles(req())
