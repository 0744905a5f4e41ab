"""``pallet app update|diff|plan|rollback``, ``pallet pod plan|show`` and ``pallet
deployment ...`` against a real master (``pallet master``, SQLite, one fake-free
agent-less cluster: instances wait to be placed, which is all a plan or a rollback needs
to show)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow


def _file(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_update_diff_plan_and_rollback(pallet: Any, master: str, tmp_path: Path) -> None:
    v1 = _file(
        tmp_path, "v1.yaml", "id: /roll/web\ninstances: 2\ncpus: 0.1\nmem: 32\ncmd: sleep 600\n"
    )
    v2 = _file(
        tmp_path, "v2.yaml", "id: /roll/web\ninstances: 2\ncpus: 0.1\nmem: 32\ncmd: sleep 601\n"
    )

    # update refuses what does not exist (apply creates)
    missing = pallet("app", "update", v1)
    assert missing.code == 2 and "does not exist" in missing.err and "Traceback" not in missing.err
    # a plan of a create: its steps, and no node to land on in an agent-less cluster
    planned = pallet("app", "plan", v1, "--json")
    assert planned.code == 0, planned.err
    (doc,) = json.loads(planned.out)
    assert doc["action"] == "create" and doc["launches"] == []
    assert doc["unplaced"]["instances"] == 2
    assert httpx.get(f"{master}/v2/apps/roll/web").status_code == 404  # the plan changed nothing

    assert pallet("app", "add", v1).code == 0
    diffed = pallet("app", "diff", v2)
    assert diffed.code == 0 and '/cmd: "sleep 600" -> "sleep 601"' in diffed.out
    locked = pallet("app", "plan", v2)  # the create's deployment still runs (no agents)
    assert locked.code == 2 and "--force" in locked.err
    planned = pallet("app", "plan", v2, "--force")
    assert planned.code == 0, planned.err
    assert "RestartApplication" in planned.out and "/cmd: sleep 600 -> sleep 601" in planned.out
    assert httpx.get(f"{master}/v2/apps/roll/web").json()["app"]["cmd"] == "sleep 600"

    updated = pallet("app", "update", v2, "--force")
    assert updated.code == 0, updated.err
    assert "Updated /roll/web: /cmd" in updated.out
    assert httpx.get(f"{master}/v2/apps/roll/web").json()["app"]["cmd"] == "sleep 601"

    # deployments in flight (nothing runs: the instances wait for agents)
    listed = pallet("deployment", "list", "--json")
    (deployment,) = json.loads(listed.out)
    assert deployment["affectedApps"] == ["/roll/web"]
    not_promotable = pallet("deployment", "promote", deployment["id"])
    assert not_promotable.code == 2 and "no canaries" in not_promotable.err
    unknown = pallet("deployment", "rollback", "nope")
    assert unknown.code == 2 and "not in flight" in unknown.err

    # back to the version before the last config change
    rolled = pallet("app", "rollback", "/roll/web", "--force", "--json")
    assert rolled.code == 0, rolled.err
    assert httpx.get(f"{master}/v2/apps/roll/web").json()["app"]["cmd"] == "sleep 600"
    bad = pallet("app", "rollback", "/roll/web", "--to", "1999-01-01T00:00:00.000Z", "--force")
    assert bad.code == 2 and "Traceback" not in bad.err


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


def test_plan_shows_what_would_happen_and_changes_nothing(pallet: Any, tmp_path: Path) -> None:
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


def test_show_names_each_containers_image_and_mounts(pallet: Any, tmp_path: Path) -> None:
    path = tmp_path / "pod.json"
    path.write_text(json.dumps(dict(POD, id="/shop/shown")))
    assert pallet("pod", "add", str(path)).code == 0
    shown = pallet("pod", "show", "/shop/shown").out
    assert "container web" in shown and "image 127.0.0.1:5000/web:1; site at /srv" in shown
    assert pallet("pod", "remove", "/shop/shown", "--force").code == 0
