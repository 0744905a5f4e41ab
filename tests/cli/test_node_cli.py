"""``pallet node drain|undrain|remove`` against a real master (``pallet master``, SQLite),
with one agent's side played over the agent protocol."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow


def _register(master: str, node_id: str) -> None:
    body = {
        "node": {
            "id": node_id,
            "hostname": "127.0.0.9",
            "capacity": [1000, 512, 100, 0],
            "ports": ["31000-31009"],
        },
        "address": "http://127.0.0.9:5051",
        "boot_id": "b",
    }
    httpx.post(f"{master}/v1/agent/register", json=body).raise_for_status()


def test_drain_undrain_and_remove(pallet: Any, master: str, tmp_path: Path) -> None:
    _register(master, "node-cli")
    refused = pallet("node", "remove", "node-cli")
    assert refused.code == 2
    assert "node node-cli is ACTIVE; drain it first (pallet node drain node-cli)" in refused.err
    assert refused.err.count("\n") == 1

    drained = pallet("node", "drain", "node-cli", "--deadline", "60")
    assert drained.code == 0, drained.err
    assert "Draining node-cli: 0 task(s) to move elsewhere" in drained.out
    shown = pallet("node", "show", "node-cli")
    assert "DRAINING" in shown.out and "deadline" in shown.out

    back = pallet("node", "undrain", "node-cli", "--json")
    assert json.loads(back.out)["state"] == "ACTIVE"

    assert pallet("node", "drain", "node-cli").code == 0
    removed = pallet("node", "remove", "node-cli")
    assert removed.code == 0, removed.err
    assert "Removed node-cli" in removed.out
    assert [n["id"] for n in httpx.get(f"{master}/v1/nodes").json()["nodes"]] == []


def test_bad_node_input_is_one_line(pallet: Any) -> None:
    for args in (
        ("node", "drain", "node-none"),
        ("node", "remove", "node-none"),
        ("node", "drain", "node-none", "--deadline", "-5"),
    ):
        done = pallet(*args)
        assert done.code == 2, (args, done)
        assert "Traceback" not in done.err


def test_maintenance_schedule_down_up(pallet: Any, master: str, tmp_path: Path) -> None:
    _register(master, "node-mnt")
    added = pallet(
        "node", "maintenance", "schedule", "127.0.0.9", "--start", "+1h", "--duration", "2h"
    )
    assert added.code == 0, added.err
    assert "127.0.0.9" in added.out and "DRAINING" in added.out and "2h" in added.out
    doc = json.loads(pallet("node", "maintenance", "schedule", "--json").out)
    (window,) = doc["windows"]
    assert window["machine_ids"] == [{"ip": "127.0.0.9"}]
    assert window["unavailability"]["duration"] == {"nanoseconds": 2 * 3600 * 10**9}
    shown = pallet("node", "show", "node-mnt")
    assert "DRAINING, window" in shown.out and "(pending)" in shown.out

    downed = pallet("node", "maintenance", "down", "127.0.0.9", "--json")
    assert downed.code == 0, downed.err
    assert json.loads(downed.out) == {"down_machines": [{"ip": "127.0.0.9"}]}
    assert "DOWN" in pallet("node", "list").out
    assert pallet("node", "maintenance", "up", "127.0.0.9").code == 0
    assert json.loads(pallet("node", "maintenance", "status", "--json").out) == {}
    assert "No maintenance scheduled." in pallet("node", "maintenance", "status").out
    # A whole schedule from a file replaces the one there; --clear empties it.
    schedule_file = tmp_path / "schedule.json"
    schedule_file.write_text(json.dumps(doc))
    replaced = pallet("node", "maintenance", "schedule", "--file", str(schedule_file), "--json")
    assert replaced.code == 0, replaced.err
    assert json.loads(replaced.out) == doc
    assert pallet("node", "maintenance", "schedule", "--clear").code == 0
    assert "No maintenance scheduled." in pallet("node", "maintenance", "schedule").out
    assert pallet("node", "remove", "node-mnt").code == 2  # ACTIVE again
    assert pallet("node", "drain", "node-mnt").code == 0
    assert pallet("node", "remove", "node-mnt").code == 0


def test_bad_maintenance_input_is_one_line(pallet: Any) -> None:
    for args, says in (
        (("node", "maintenance", "down", "nowhere"), "not part of a maintenance schedule"),
        (("node", "maintenance", "up", "10.0.0.1"), "not in DOWN mode"),
        (("node", "maintenance", "schedule", "h", "--duration", "soon"), "--duration"),
        (("node", "maintenance", "schedule", "h", "--start", "tomorrow"), "--start"),
        (("node", "maintenance", "schedule", "h@not-ip"), "not an IP"),
        (("node", "maintenance", "schedule", "h", "--clear"), "one of them"),
    ):
        done = pallet(*args)
        assert done.code == 2, (args, done)
        assert says in done.err.splitlines()[0], (args, done.err)  # then the field's path
    assert json.loads(pallet("node", "maintenance", "schedule", "--json").out) == {}


def test_a_crash_looping_agent_shows_in_list_and_show(pallet: Any, master: str) -> None:
    import time

    _register(master, "node-loop")
    report = {
        "supervisor": "pallet up",
        "restarts": 6,
        "exits_last_minute": 5,
        "backing_off_until": time.time() + 30,
        "last_exit": time.time(),
        "last_line": "error: the disk is full",
    }
    httpx.put(f"{master}/v1/nodes/node-loop/supervisor", json=report).raise_for_status()
    listed = pallet("node", "list")
    assert "agent crash-looping, next start in" in listed.out
    shown = pallet("node", "show", "node-loop")
    assert "pallet up restarted its agent 6 time(s); 5 in the last minute" in shown.out
    assert "it said: error: the disk is full" in shown.out
    assert pallet("node", "drain", "node-loop").code == 0
    assert pallet("node", "remove", "node-loop").code == 0
