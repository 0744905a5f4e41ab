"""``pallet job ...`` against a real master (``pallet master``, SQLite, no agents: runs wait
for a node, which most of these commands do not need; ``--wait`` on real agents is in
``tests/e2e/test_jobs.py``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow


def test_job_life_from_the_command_line(pallet: Any, master: str, tmp_path: Path) -> None:
    spec = tmp_path / "backup.yaml"
    spec.write_text(
        "id: cli.backup\ndescription: nightly\nrun:\n  cmd: echo $WHO\n  cpus: 0.1\n  mem: 32\n"
        "  env: {WHO: job}\n  parallelism: 2\n  completions: 4\n  user: nobody\n"
        "  artifacts: [{uri: 'http://files.local/tool.tgz'}]\n"
        "  ucr: {image: {id: 'busybox:1', forcePull: true}}\n"
    )
    r = pallet("job", "add", str(spec))
    assert r.code == 0 and r.out.startswith("Created job cli.backup"), r.err
    r = pallet(
        "job",
        "schedule",
        "add",
        "cli.backup",
        "nightly",
        "--cron",
        "0 3 * * *",
        "--timezone",
        "Europe/Berlin",
    )
    assert r.code == 0 and "next run in" in r.out, r.err
    r = pallet(
        "job",
        "schedule",
        "update",
        "cli.backup",
        "nightly",
        "--concurrency-policy",
        "forbid",
        "--json",
    )
    schedule = json.loads(r.out)
    assert (schedule["cron"], schedule["concurrencyPolicy"]) == ("0 3 * * *", "FORBID")
    r = pallet("job", "schedule", "list", "cli.backup")
    assert "Europe/Berlin" in r.out and "FORBID" in r.out
    image_only = tmp_path / "image.json"
    image_only.write_text(
        json.dumps({"id": "cli.image", "run": {"docker": {"image": "busybox:1"}}})
    )
    assert pallet("job", "add", str(image_only)).code == 0
    r = pallet("job", "list")
    assert r.code == 0 and "cli.backup" in r.out and "echo $WHO" in r.out
    assert "(its image's command)" in r.out
    assert pallet("job", "remove", "cli.image").code == 0
    r = pallet("job", "run", "cli.backup", "--env", "WHO=cli", "--json")
    run = json.loads(r.out)
    assert run["status"] == "INITIAL" and run["jobId"] == "cli.backup"
    r = pallet("job", "show", "cli.backup")
    assert "2 at a time, 4 to succeed" in r.out and run["id"] in r.out
    assert "busybox:1 (ucr, force pull)" in r.out and "nobody" in r.out
    assert "http://files.local/tool.tgz" in r.out
    assert "schedule nightly: 0 3 * * * Europe/Berlin" in r.out
    queue = httpx.get(f"{master}/v1/queue").json()
    assert queue == [{"jobId": "cli.backup", "runs": [{"runId": run["id"]}]}]
    r = pallet("job", "kill", "cli.backup", run["id"])
    assert r.code == 0 and "Stopped" in r.out
    r = pallet("job", "history", "cli.backup")
    assert "0 succeeded, 1 failed" in r.out and "stopped" in r.out
    spec.write_text(spec.read_text().replace("nightly", "weekly"))
    r = pallet("job", "update", str(spec))
    assert r.code == 0, r.err
    job = httpx.get(f"{master}/v1/jobs/cli.backup").json()
    assert job["description"] == "weekly" and [s["id"] for s in job["schedules"]] == ["nightly"]
    r = pallet("job", "schedule", "remove", "cli.backup", "nightly")
    assert r.code == 0
    r = pallet("job", "remove", "cli.backup")
    assert r.code == 0 and "Removed job cli.backup" in r.out
    assert httpx.get(f"{master}/v1/jobs").json() == []


def test_bad_input_is_one_line_and_exit_2(pallet: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"id": "cli.bad", "run": {"cmd": "true", "cpus": 0}}))
    r = pallet("job", "add", str(bad))
    assert r.code == 2 and "run.cpus: error.min" in r.err
    r = pallet("job", "add", str(tmp_path / "missing.json"))
    assert r.code == 2 and r.err.startswith("error: job file")
    r = pallet("job", "show", "nope")
    assert r.code == 2 and "Job not found" in r.err
    r = pallet("job", "run", "nope", "--env", "WHO")
    assert r.code == 2 and "NAME=VALUE" in r.err
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"id": "cli.good", "run": {"cmd": "true", "cpus": 0.1, "mem": 32}}))
    assert pallet("job", "add", str(good)).code == 0
    r = pallet("job", "schedule", "add", "cli.good", "s", "--cron", "61 * * * *")
    assert r.code == 2 and "cron: " in r.err and "not a valid cron" in r.err
    r = pallet("job", "remove", "cli.good")
    assert r.code == 0
