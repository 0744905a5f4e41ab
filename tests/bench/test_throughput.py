"""``pallet bench throughput`` runs each policy in a forked child: the same placements as
in this process, and a child that dies is an error, not a silent zero."""

from __future__ import annotations

import pytest

from factories import node, req
from pallet.bench.throughput import run_throughput, run_throughput_apart
from pallet.core import ClusterView
from pallet.model import PlacementRequest


def _case() -> tuple[ClusterView, list[list[PlacementRequest]]]:
    view = ClusterView([node(f"n{i}", cpu=4000, mem=8192) for i in range(20)])
    batches = [[req(f"/a{b}", cpu=1500, mem=1024) for _ in range(12)] for b in range(6)]
    return view, batches


@pytest.mark.parametrize("policy", ["pallet", "first-fit"])
def test_a_forked_run_places_what_a_run_here_places(policy: str) -> None:
    view, batches = _case()
    here = run_throughput(policy, view, batches)
    apart = run_throughput_apart(policy, view, batches)
    assert (apart.policy, apart.placed, apart.unplaced) == (policy, here.placed, here.unplaced)
    assert apart.placed == 40 and apart.unplaced == 32  # two per node of 4 cores
    assert apart.seconds > 0


def test_a_child_that_dies_is_an_error() -> None:
    view, batches = _case()
    with pytest.raises(RuntimeError, match="no-such-policy run ended without a result"):
        run_throughput_apart("no-such-policy", view, batches)
