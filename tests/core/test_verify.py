"""The verifier refuses plans that do not fit, with a reason naming what is wrong."""

from __future__ import annotations

import pytest

from factories import node, req
from pallet.core import ClusterView, verify
from pallet.model import Placement, Plan, PlanError, PortRange


def _view() -> ClusterView:
    return ClusterView([node("a", cpu=1000, gpus=2, model="A", ports=(PortRange(31000, 31001),))])


@pytest.mark.parametrize(
    ("placements", "reason"),
    [
        (
            [Placement(req(cpu=600, id="1"), "a"), Placement(req(cpu=600, id="2"), "a")],
            "insufficient cpus",
        ),
        ([Placement(req(id="1"), "zz")], "node is not in the cluster"),
        ([Placement(req(ports=(0,), id="1"), "a", ports=(40000,))], "host port 40000"),
        ([Placement(req(ports=(0,), id="1"), "a", ports=())], "different number of host ports"),
        ([Placement(req(gpu=500, id="1"), "a", gpus=((5, 500),))], "does not exist"),
        ([Placement(req(gpu=500, id="1"), "a", gpus=((0, 400),))], "do not add up"),
        (
            [Placement(req(gpu=2000, id="1"), "a", gpus=((0, 1000), (0, 1000)))],
            "one GPU device twice",
        ),
        (
            [
                Placement(req(cpu=100, gpu=800, id="1"), "a", gpus=((0, 800),)),
                Placement(req(cpu=100, gpu=300, id="2"), "a", gpus=((0, 300),)),
            ],
            "GPU device 0 has only 200",
        ),
        ([Placement(req(id="1"), "a"), Placement(req(id="1"), "a")], "already placed"),
    ],
)
def test_refuses(placements: list[Placement], reason: str) -> None:
    view = _view()
    with pytest.raises(PlanError) as err:
        verify(Plan(tuple(placements)), view)
    assert reason in err.value.reason
    assert view.tasks == {}  # the view is never changed


def test_accepts_a_fitting_plan() -> None:
    view = _view()
    verify(
        Plan(
            (
                Placement(
                    req(cpu=500, gpu=500, ports=(0,), id="1"), "a", ports=(31000,), gpus=((1, 500),)
                ),
            )
        ),
        view,
    )
