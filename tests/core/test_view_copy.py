"""A view's copy shares its per-node ports and disks and its per-app counts until either
side changes them (copy on write): random placements and releases on a view, its copies
and copies of copies never show through to another, and each ends equal to a view that
made only its own changes from nothing."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest

from factories import node, req
from pallet.core import ClusterView
from pallet.model import NodeDisk, Placement, PortRange, VolumeNeed

NODES = [
    dataclasses.replace(
        node(f"n{i}", ports=(PortRange(1000 * i + 1000, 1000 * i + 1009),)),
        disks=(NodeDisk("path", "/d", 1000),),
    )
    for i in range(4)
]


def _fresh(placements: list[Placement]) -> ClusterView:
    view = ClusterView(NODES)
    for p in placements:
        view.assume(p)
    return view


def _same(a: ClusterView, b: ClusterView) -> None:
    assert a.ports_used == b.ports_used
    assert a.disk_used == b.disk_used or all(
        {k: v for k, v in x.items() if v} == {k: v for k, v in y.items() if v}
        for x, y in zip(a.disk_used, b.disk_used, strict=True)
    )
    assert a.app_rows == b.app_rows
    assert a.tasks == b.tasks and a.disk_held == b.disk_held
    for name in ("free_cpu", "free_mem", "port_free"):
        assert np.array_equal(getattr(a, name), getattr(b, name))


@pytest.mark.parametrize("seed", range(6))
def test_copies_never_see_each_others_changes(seed: int) -> None:
    rng = random.Random(seed)
    views = [ClusterView(NODES)]
    live: list[dict[str, Placement]] = [{}]  # each view's own placements, in order
    ids = iter(range(10**6))
    for _ in range(200):
        k = rng.randrange(len(views))
        view, mine = views[k], live[k]
        roll = rng.random()
        if roll < 0.1 and len(views) < 6:
            views.append(view.copy())
            live.append(dict(mine))
        elif roll < 0.6 or not mine:
            row = rng.randrange(len(NODES))
            free = sorted(set(range(1000 * row + 1000, 1000 * row + 1010)) - view.ports_used[row])
            ports = tuple(rng.sample(free, min(len(free), rng.randint(0, 2))))
            r = dataclasses.replace(
                req(f"/app{rng.randrange(3)}", cpu=1, mem=1, id=f"t{next(ids)}", ports=ports),
                volume_disks=(VolumeNeed("path", rng.randint(1, 5), ""),)
                if rng.random() < 0.5
                else (),
            )
            p = Placement(r, NODES[row].id, ports=ports)
            view.assume(p)
            mine[p.request_id] = p
        else:
            task_id = rng.choice(list(mine))
            view.release(task_id)
            del mine[task_id]
        for other, theirs in zip(views, live, strict=True):
            _same(other, _fresh(list(theirs.values())))
