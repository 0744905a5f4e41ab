"""``ClusterState.deployments`` answers "which deployments target this app" from its index,
whatever way the dict was changed; checked against a scan of every deployment."""

from __future__ import annotations

import random

from pallet.control.records import DeploymentRecord
from pallet.control.state import Deployments

APPS = [f"/a{i}" for i in range(6)]


def _deployment(did: str, targets: list[str]) -> DeploymentRecord:
    return DeploymentRecord(
        id=did,
        version="2026-12-07T00:00:00.000Z",
        steps=(),
        current_step=1,
        originals=dict.fromkeys(targets),
        targets=dict.fromkeys(targets),
        started_at=0.0,
    )


def _scan(table: dict[str, DeploymentRecord], app_id: str) -> list[str]:
    return [d.id for d in table.values() if app_id in d.targets]


def test_index_follows_every_change() -> None:
    rng = random.Random(7)
    table = Deployments()
    marks: dict[str, int | None] = {}
    seen: dict[str, list[DeploymentRecord]] = {}
    for step in range(3000):
        n = rng.randrange(12)
        did = f"d{n}"
        # A deployment's targets are fixed when it is made; its progress changes.
        targets = [APPS[n % 6], APPS[(n * 5) % 6]]
        op = rng.randrange(8)
        if op <= 2:
            table[did] = _deployment(did, targets)
        elif op == 3:
            table.pop(did, None)
        elif op == 4 and did in table:
            del table[did]
        elif op == 5:
            table.update({did: _deployment(did, targets)})
        elif op == 6:
            table.setdefault(did, _deployment(did, targets))
        elif step % 500 == 7:
            table.clear()
        for app_id in APPS:
            held = _scan(table, app_id)
            assert [d.id for d in table.of_app(app_id)] == held
            assert (app_id in table.marks) == bool(held)
            if marks.get(app_id) == table.marks.get(app_id):  # unchanged mark, same deployments
                assert seen.get(app_id, []) == [table[i] for i in held]
            marks[app_id] = table.marks.get(app_id)
            seen[app_id] = [table[i] for i in held]


def test_a_deployment_retargeted_keeps_its_place_for_the_apps_it_still_targets() -> None:
    table = Deployments()
    table["d1"] = _deployment("d1", ["/a"])
    table["d2"] = _deployment("d2", ["/a"])
    table["d1"] = _deployment("d1", ["/a", "/b"])
    assert [d.id for d in table.of_app("/a")] == ["d1", "d2"]
    assert [d.id for d in table.of_app("/b")] == ["d1"]
    table["d1"] = _deployment("d1", ["/b"])
    assert [d.id for d in table.of_app("/a")] == ["d2"]
    assert table.of_app("/c") == []
