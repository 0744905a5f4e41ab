"""``pallet pod plan``: a dry run of a pod file against a real master, which changes
nothing; bad fields are one line naming them, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import Run

POD = {
    "id": "/shop/planned",
    "containers": [
        {
            "name": "web",
            "image": {"kind": "DOCKER", "id": "127.0.0.1:5000/web:1"},
            "resources": {"cpus": 0.1, "mem": 32},
            "volumeMounts": [{"name": "site", "mountPath": "/srv"}],
        }
    ],
    "volumes": [{"name": "site"}],
}


def test_plan_shows_what_would_happen_and_changes_nothing(pallet: Run, tmp_path: Path) -> None:
    path = tmp_path / "pod.json"
    path.write_text(json.dumps(POD))
    done = pallet("pod", "plan", str(path))
    assert done.code == 0, done.err
    assert "pod /shop/planned; steps: StartPod -> ScalePod" in done.out
    assert "1 instance(s) would wait" in done.out  # this master has no agents
    doc = json.loads(pallet("pod", "plan", str(path), "--json").out)
    assert doc["dryRun"] is True and doc["unplaced"]["instances"] == 1
    assert json.loads(pallet("pod", "list", "--json").out) == []

    bad = dict(POD, volumes=[{"name": "site", "persistent": {"size": 10}}])
    path.write_text(json.dumps(bad))
    done = pallet("pod", "plan", str(path))
    assert done.code == 2 and "volumes[0].persistent" in done.err, done.err
    assert len(done.err.strip().splitlines()) <= 3
