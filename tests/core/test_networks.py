"""Container networks in placement: a task joining a named network fits only nodes whose
agent has it, and the rejection names the network."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from factories import node, req
from pallet.core import ClusterView, make_policy, schedule
from pallet.core.fit import feasible, rejection_reasons, why_not
from pallet.model import PlacementRequest, ValidationError


def _on(r: PlacementRequest, *networks: str) -> PlacementRequest:
    return dataclasses.replace(r, networks=networks)


def _view() -> ClusterView:
    return ClusterView(
        [
            node("plain"),
            dataclasses.replace(node("dcos"), networks=("dcos",)),
            dataclasses.replace(node("both"), networks=("dcos", "dev")),
        ]
    )


@pytest.mark.parametrize(
    ("networks", "fits"),
    [
        ((), [True, True, True]),  # the host network: anywhere
        (("dcos",), [False, True, True]),
        (("dev",), [False, False, True]),
        (("nowhere",), [False, False, False]),
    ],
)
def test_a_node_fits_only_if_its_agent_has_the_network(
    networks: tuple[str, ...], fits: list[bool]
) -> None:
    view = _view()
    r = _on(req(), *networks)
    assert feasible(view, r).tolist() == fits
    for row, ok in enumerate(fits):
        assert (why_not(view, r, row) is None) == ok


def test_the_rejection_names_the_network() -> None:
    view = _view()
    assert rejection_reasons(view, _on(req(), "dev")) == [("container network dev not on node", 2)]
    assert why_not(view, _on(req(), "dev"), 0) == "container network dev not on node"
    # A node with the network that is full is rejected for its resources.
    big = _on(req(cpu=9000), "dev")
    assert rejection_reasons(view, big) == [
        ("container network dev not on node", 2),
        ("insufficient cpus", 1),
    ]


def test_the_score_cache_tells_networks_apart() -> None:
    # Same shape otherwise: a mask cached for one network must not serve another.
    view = _view()
    policy = make_policy("pallet")
    rng = np.random.default_rng(0)
    first = schedule([_on(req("/x", id="x"), "dev")], view, policy, rng)
    second = schedule([_on(req("/x", id="y"), "nowhere")], view, policy, rng)
    assert first.placements[0].node_id == "both"
    assert not second.placements and second.unplaced


def test_a_malformed_network_name_on_a_node_is_refused() -> None:
    with pytest.raises(ValidationError, match="must match"):
        dataclasses.replace(node("x"), networks=("Not_A_Name",))
