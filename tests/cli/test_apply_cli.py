"""``pallet app apply|edit|versions`` against a real master (``pallet master``, SQLite, no
agents: the apps' instances wait to be placed, which these commands do not need)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow


def _app(master: str, app_id: str) -> dict[str, Any]:
    return dict(httpx.get(f"{master}/v2/apps{app_id}").json()["app"])


def test_apply_creates_then_updates_then_changes_nothing(
    pallet: Any, master: str, tmp_path: Path
) -> None:
    spec = tmp_path / "api.yaml"
    spec.write_text(
        "id: /apply/api\ninstances: 0\ncpus: 0.1\nmem: 32\n"
        "portDefinitions: [{port: 0, name: http}]\ncmd: sleep 600\n"
    )
    first = pallet("app", "apply", str(spec))
    assert first.code == 0, first.err
    assert first.out.startswith("Created /apply/api")
    versions_before = httpx.get(f"{master}/v2/apps/apply/api/versions").json()["versions"]

    # The same file again: nothing sent, no new version (port 0 matches the one picked).
    again = pallet("app", "apply", str(spec), "--json")
    assert again.code == 0, again.err
    assert json.loads(again.out) == [
        {
            "id": "/apply/api",
            "action": "unchanged",
            "changes": [],
            "deploymentId": None,
            "version": None,
        }
    ]
    assert httpx.get(f"{master}/v2/apps/apply/api/versions").json()["versions"] == versions_before

    spec.write_text(spec.read_text().replace("cpus: 0.1", "cpus: 0.2"))
    changed = pallet("app", "apply", str(spec))
    assert changed.code == 0, changed.err
    assert "Updated /apply/api: /cpus: 0.1 -> 0.2" in changed.out
    assert _app(master, "/apply/api")["cpus"] == 0.2
    assert _app(master, "/apply/api")["mem"] == 32

    listed = pallet("app", "versions", "/apply/api", "--json")
    doc = json.loads(listed.out)
    assert len(doc["versions"]) == len(versions_before) + 1
    assert doc["current"] == doc["versions"][0]
    table = pallet("app", "versions", "apply/api")
    assert "current" in table.out and table.code == 0


def test_apply_a_group_creates_each_app(pallet: Any, master: str, tmp_path: Path) -> None:
    group = tmp_path / "group.yaml"
    group.write_text(
        "id: /apply/shop\napps:\n"
        "  - {id: web, instances: 0, cpus: 0.05, mem: 32, cmd: sleep 600}\n"
        "  - {id: cache, instances: 0, cpus: 0.05, mem: 32, cmd: sleep 600}\n"
    )
    done = pallet("app", "apply", str(group), "--json")
    assert done.code == 0, done.err
    assert [(a["id"], a["action"]) for a in json.loads(done.out)] == [
        ("/apply/shop/web", "create"),
        ("/apply/shop/cache", "create"),
    ]
    assert _app(master, "/apply/shop/cache")["mem"] == 32


def test_apply_names_the_file_app_and_field_the_master_refuses(
    pallet: Any, master: str, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: /apply/bad\ncpus: -1\ncmd: sleep 1\n")
    done = pallet("app", "apply", str(bad))
    assert done.code == 2
    assert f"app file {bad}: app /apply/bad: the master rejected it" in done.err
    assert "cpus" in done.err and "Traceback" not in done.err
    assert httpx.get(f"{master}/v2/apps/apply/bad").status_code == 404


def test_edit_applies_what_the_editor_changed(
    pallet: Any, master: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = tmp_path / "edit.yaml"
    spec.write_text("id: /apply/edit\ninstances: 0\ncpus: 0.1\nmem: 32\ncmd: sleep 600\n")
    # --wait: an edit while the app's deployment is open is refused (the CLI ran in
    # process, faster than the master's next controller pass ends it)
    assert pallet("app", "apply", str(spec), "--wait").code == 0

    monkeypatch.setenv("EDITOR", "sed -i s/^mem:.*/mem:\\ 48/")
    done = pallet("app", "edit", "/apply/edit")
    assert done.code == 0, done.err
    assert "Updated /apply/edit: /mem: 32.0 -> 48" in done.out
    assert _app(master, "/apply/edit")["mem"] == 48

    monkeypatch.setenv("EDITOR", "true")  # saved unchanged
    same = pallet("app", "edit", "/apply/edit")
    assert same.code == 0 and "Edit cancelled" in same.out

    monkeypatch.setenv("EDITOR", "sed -i s/^cpus:.*/cpus:\\ -5/")
    refused = pallet("app", "edit", "/apply/edit")
    assert refused.code == 2
    assert "your edit is kept in" in refused.err
    kept = Path(refused.err.split("your edit is kept in ")[1].split(";")[0])
    assert "cpus: -5" in kept.read_text()
    kept.unlink()
    assert _app(master, "/apply/edit")["cpus"] == 0.1


def test_edit_and_versions_of_a_missing_app_are_one_line(pallet: Any) -> None:
    for args in (("app", "edit", "/apply/none"), ("app", "versions", "/apply/none")):
        done = pallet(*args)
        assert done.code == 2, done
        assert done.err.count("\n") == 1 and "/apply/none" in done.err
