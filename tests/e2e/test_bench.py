"""The cluster benchmarks at a small size: they report sane numbers and leave nothing behind."""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import pytest

from pallet.bench.api import run_api_bench
from pallet.bench.e2e import raw_spawn_seconds, run_e2e_bench

pytestmark = pytest.mark.slow


def _sleepers(where: str) -> list[int]:
    """``sleep 600`` processes working in a directory whose path contains ``where`` (other
    engineers' clusters on this machine run ``sleep 600`` too)."""
    found = []
    for p in psutil.process_iter(["cmdline", "cwd"]):
        if (p.info["cmdline"] or [])[:2] == ["sleep", "600"] and where in (p.info["cwd"] or ""):
            found.append(p.pid)
    return found


def test_raw_spawn_kills_what_it_spawned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # what it spawns works here, so it can be told apart
    assert raw_spawn_seconds(20) > 0
    assert not psutil.Process(os.getpid()).children()
    assert not _sleepers(str(tmp_path))


def test_e2e_bench_runs_every_task_and_cleans_up() -> None:
    result = run_e2e_bench(tasks=20, agents=2)
    doc = result.to_json()
    assert doc["tasks"] == 20 and doc["agents"] == 2
    assert doc["pallet_s"] > 0 and doc["raw_spawn_s"] > 0
    assert (result.leftover_processes, result.leftover_cgroups) == (0, 0)
    assert not _sleepers("pallet-bench-e2e-")


def test_api_bench_measures_the_real_master() -> None:
    result = run_api_bench(apps=20, clients=5, per_client=4)
    assert result.requests == 20
    assert 0 < result.p50_ms <= result.p99_ms <= result.max_ms
    assert set(result.to_json()) == {"apps", "clients", "p50_ms", "p99_ms"}
