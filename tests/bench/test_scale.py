"""``pallet bench scale`` at a small size: a real master, simulated agents over the real
protocol, every task placed and RUNNING, and the figures the issue asks for reported."""

from __future__ import annotations

import subprocess
import sys

import psutil
import pytest

from pallet.bench.scale import ScaleResult, run_scale, scale_apps


def test_apps_add_up_to_the_tasks_with_unique_apps_capped() -> None:
    apps = scale_apps(50, 1_000, nodes=40)
    assert len(apps) == 50
    assert sum(a["instances"] for a in apps) == 1_000
    assert all(a["instances"] >= 1 for a in apps)
    unique = [a for a in apps if a.get("constraints") == [["hostname", "UNIQUE"]]]
    assert unique and all(a["instances"] <= 20 for a in unique)
    assert scale_apps(50, 1_000, nodes=40) == apps  # seeded


def _children() -> set[int]:
    """This test's child processes, less multiprocessing's resource tracker (it lives as
    long as the test session)."""
    out = set()
    for p in psutil.Process().children(recursive=True):
        try:
            if "resource_tracker" not in " ".join(p.cmdline()):
                out.add(p.pid)
        except psutil.Error:
            pass
    return out


@pytest.mark.slow
def test_a_small_cluster_places_and_runs_every_task() -> None:
    before = _children()
    run = run_scale(12, 60, 6, processes=2, steady_s=0.0, clients=3, per_client=3, timeout=240)
    assert run.failed == ""
    assert 0 < run.place_s <= run.running_s
    assert run.running_seen > 0  # the master's own count, read through GET /v2/apps
    assert run.rss_peak_mib > 20 and run.master_cpu_s > 0
    # (placing 60 tasks can take the agents less than a clock tick of CPU: counted with
    # their registration, which starts their interpreters, it is never nothing)
    assert run.agents_cpu_s >= 0 and run.register_agents_cpu_s + run.agents_cpu_s > 0
    assert 0 < run.apps_p50_ms <= run.apps_p99_ms <= run.apps_max_ms
    assert run.heartbeats > 0 and run.unreachable >= 0
    assert run.poll_wait_s == 30.0  # granted to every agent (the default at this size)
    doc = ScaleResult(run, run).to_json()
    assert doc["baseline_tenth"]["tasks"] == 60
    assert set(doc["goal_met"]) == {"rss_mib", "place_s", "apps_p99_ms", "unreachable"}
    assert _children() <= before  # the master and the agents' processes are gone


@pytest.mark.parametrize(
    ("args", "field"),
    [(["--nodes", "0"], "--nodes"), (["--apps", "10", "--tasks", "5"], "--apps")],
)
def test_bad_sizes_are_refused_naming_the_option(args: list[str], field: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pallet.cli.main", "bench", "scale", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert field in done.stderr and "Traceback" not in done.stderr
