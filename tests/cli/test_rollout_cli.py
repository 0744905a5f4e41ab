"""``pallet app update|diff|plan|rollback`` and ``pallet deployment ...`` against a real
master (``pallet master``, SQLite, one fake-free agent-less cluster: instances wait to be
placed, which is all a plan or a rollback needs to show)."""

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
