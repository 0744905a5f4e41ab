"""Path and mount persistent volumes in placement: which operator disk takes each (the
one rule the scheduler, the verifier and the view share), nodes without room rejected
with a reason, and a bound placement holding its disk until released."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from factories import node, req
from pallet.core import ClusterView, make_policy, schedule
from pallet.core.disks import assign_disks
from pallet.core.fit import feasible, rejection_reasons, why_not
from pallet.model import NodeDisk, Placement, PlacementRequest, VolumeNeed

N = VolumeNeed

SSD1 = NodeDisk("path", "/mnt/ssd1", 100)
SSD2 = NodeDisk("path", "/mnt/ssd2", 60)
M1 = NodeDisk("mount", "/mnt/m1", 500)
M2 = NodeDisk("mount", "/mnt/m2", 200)
DISKS = (SSD1, SSD2, M1, M2)


@pytest.mark.parametrize(
    ("used", "needs", "roots"),
    [
        # a path volume goes where the least room still holds it (packing): ssd2 (60)
        ({}, [N("path", 50, "")], ("/mnt/ssd2",)),
        # ssd2 has 20 left: a 50 MiB volume goes to ssd1
        ({"/mnt/ssd2": 40}, [N("path", 50, "")], ("/mnt/ssd1",)),
        # the largest chooses first: 90 to ssd1, then 50 to ssd2 (in asked order)
        ({}, [N("path", 50, ""), N("path", 90, "")], ("/mnt/ssd2", "/mnt/ssd1")),
        ({}, [N("path", 101, "")], None),  # no path disk that big
        # a mount volume takes the smallest unused mount disk at least its size, whole
        ({}, [N("mount", 100, "")], ("/mnt/m2",)),
        ({"/mnt/m2": 1}, [N("mount", 100, "")], ("/mnt/m1",)),
        ({}, [N("mount", 100, ""), N("mount", 100, "")], ("/mnt/m2", "/mnt/m1")),
        ({}, [N("mount", 100, "")] * 3, None),  # two mount disks, three volumes
        ({}, [N("mount", 600, "")], None),
        # maxSize: no mount disk larger (m1, 500 MiB, is too big for at most 300)
        ({"/mnt/m2": 1}, [N("mount", 100, "", 300)], None),
        ({}, [N("mount", 100, "", 300)], ("/mnt/m2",)),
        ({"/mnt/m2": 1}, [N("mount", 100, "", 500)], ("/mnt/m1",)),
        # a root given (a slot's, reserved before) is kept and counted
        ({}, [N("mount", 10, "/mnt/m2"), N("mount", 10, "")], ("/mnt/m2", "/mnt/m1")),
    ],
)
def test_which_disk_takes_each_volume(
    used: dict[str, int], needs: list[VolumeNeed], roots: tuple[str, ...] | None
) -> None:
    assert assign_disks(DISKS, used, needs) == roots


def _view() -> ClusterView:
    return ClusterView(
        [
            node("plain"),
            dataclasses.replace(node("ssd"), disks=(SSD1,)),
            dataclasses.replace(node("mount"), disks=(M2,)),
        ]
    )


def _on(r: PlacementRequest, *needs: VolumeNeed) -> PlacementRequest:
    return dataclasses.replace(r, volume_disks=needs)


def test_only_nodes_with_room_on_such_a_disk_fit_and_the_reason_says_so() -> None:
    view = _view()
    path = _on(req(), N("path", 80, ""))
    assert feasible(view, path).tolist() == [False, True, False]
    assert why_not(view, path, 0) == "no path or mount disk with room"
    mount = _on(req(), N("mount", 150, ""))
    assert feasible(view, mount).tolist() == [False, False, True]
    assert rejection_reasons(view, _on(req(), N("path", 101, ""))) == [
        ("no path or mount disk with room", 3)
    ]


def test_a_bound_placement_holds_its_disk_until_released() -> None:
    view = _view()
    first = Placement(_on(req(id="a"), N("path", 80, "")), "ssd")
    view.assume(first)
    assert view.disk_held["a"] == ("/mnt/ssd1",)
    assert not feasible(view, _on(req(id="b"), N("path", 30, "")))[1]  # 20 left
    view.assume(Placement(_on(req(id="m"), N("mount", 1, "")), "mount"))
    assert not feasible(view, _on(req(id="n"), N("mount", 1, "")))[2]  # used whole
    view.release("a")
    view.release("m")
    assert feasible(view, _on(req(id="b"), N("path", 30, ""))).tolist() == [False, True, False]
    assert view.disk_used[1] == {"/mnt/ssd1": 0} and "a" not in view.disk_held


def test_schedule_never_puts_two_mount_volumes_on_one_disk() -> None:
    view = ClusterView([dataclasses.replace(node(f"n{i}"), disks=(M2,)) for i in range(2)])
    asks = [_on(req("/db", id=f"d{i}", cpu=100), N("mount", 100, "")) for i in range(3)]
    plan = schedule(asks, view, make_policy("pallet"), np.random.default_rng(0))
    assert sorted(p.node_id for p in plan.placements) == ["n0", "n1"]
    assert len(plan.unplaced) == 1
    assert plan.unplaced[0].reasons == (("no path or mount disk with room", 2),)
