"""The cluster benchmarks at a small size: they report sane numbers and leave nothing behind."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import psutil
import pytest

from pallet.bench.api import run_api_bench
from pallet.bench.discovery import run_discovery_bench
from pallet.bench.e2e import raw_spawn_seconds, run_e2e_bench
from pallet.dns.unbound import unbound_available
from pallet.lb.haproxy import haproxy_available

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
    before = {p.pid for p in psutil.Process(os.getpid()).children()}  # a session's registry
    assert raw_spawn_seconds(20) > 0
    assert {p.pid for p in psutil.Process(os.getpid()).children()} <= before
    assert not _sleepers(str(tmp_path))


def test_e2e_bench_runs_every_task_and_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its cluster's state under tmp_path: another bench on this machine is not ours.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    result = run_e2e_bench(tasks=20, agents=2)
    doc = result.to_json()
    assert doc["tasks"] == 20 and doc["agents"] == 2
    assert doc["pallet_s"] > 0 and doc["raw_spawn_s"] > 0
    # the master recorded the last RUNNING before the client saw it (1 s: clocks' slack)
    assert 0 < doc["recorded_s"] <= doc["pallet_s"] + 1.0
    assert 0 < doc["placed_s"] <= doc["pallet_s"]  # every task placed before all ran
    assert doc["master_cpu_s"] > 0 and doc["agents_cpu_s"] > 0
    assert doc["raw_spawn_cpu_s"] > 0 and doc["raw_children_cpu_s"] > 0  # shells did run
    assert doc["cores"] >= 1 and doc["cpu_bound_ratio"] > 0
    assert doc["cpu_ratio"] > 1  # the tasks' CPU plus the master's and the agents'
    assert (result.leftover_processes, result.leftover_cgroups) == (0, 0)
    assert not _sleepers(str(tmp_path))


def test_api_bench_measures_the_real_master() -> None:
    result = run_api_bench(apps=20, clients=5, per_client=4)
    assert result.requests == 20
    assert 0 < result.p50_ms <= result.p99_ms <= result.max_ms
    assert set(result.to_json()) == {"apps", "clients", "p50_ms", "p99_ms"}


@pytest.mark.skipif(
    not (haproxy_available() and unbound_available()), reason="needs Debian's haproxy and unbound"
)
def test_discovery_bench_reports_the_issue_s_json() -> None:
    result = run_discovery_bench(upgrades=1, rate=20.0, dns_tasks=5, dns_seconds=0.5)
    doc = result.to_json()
    assert set(doc) == {"lb", "vip", "dns"}
    assert set(doc["lb"]) == set(doc["vip"]) == {"requests", "failed"}
    assert set(doc["dns"]) == {"ready_p99_s", "qps", "p99_ms", "unbound_qps"}
    assert doc["lb"]["requests"] > 0 and doc["vip"]["requests"] > 0
    assert 0 <= doc["lb"]["failed"] <= doc["lb"]["requests"]
    # The baseline keeps a task's address that the upgrade retires: it must see failures,
    # or it measured nothing.
    assert result.direct.failed > 0
    assert result.dns.tasks == 5 and doc["dns"]["qps"] > 0 and doc["dns"]["unbound_qps"] > 0


@pytest.mark.root
def test_containers_bench_at_a_small_size(tmp_path: Path) -> None:
    from pallet.agent.images import ImageStore
    from pallet.bench.containers import run_containers_bench
    from pallet.model.images import parse_image

    def pull(ref: str, directory: Path) -> object:
        return ImageStore(directory).ensure(parse_image(ref))

    # the python image: two layers, and its Cmd runs Python, which must keep running
    doc = run_containers_bench(
        pull, tasks=6, agents=2, pull_mib=4, survivors=4, image="python"
    ).to_json()
    assert set(doc) >= {
        "tasks",
        "pallet_s",
        "raw_runc_s",
        "ratio",
        "pulls_per_agent",
        "rootfs_disk_ratio",
        "pull_ratio_to_skopeo",
        "restarts_after_agent_kill",
    }
    assert doc["tasks"] == 6 and doc["pallet_s"] > 0 and doc["raw_runc_s"] > 0
    assert doc["pulls_per_agent"] == 1
    assert doc["restarts_after_agent_kill"] == 0
    # a 36 MiB image once per agent; each task adds only its upper and work directories
    assert 1.0 <= doc["rootfs_disk_ratio"] < 1.1 and doc["image"] == "python"
    assert not _sleepers("pallet-bench-containers-")


def test_jobs_bench_at_a_small_size() -> None:
    from pallet.bench.jobs import percentile, run_jobs_bench
    from pallet.bench.slurm import slurm_missing

    missing = slurm_missing()
    if missing and os.environ.get("CI"):
        pytest.fail(f"CI runs Slurm beside Pallet: {missing} (scripts/install-test)")
    before = {p.pid for p in psutil.Process(os.getpid()).children(recursive=True)}
    result = run_jobs_bench(jobs=12, agents=1, parallelism=4, cron_minutes=0, slurm=not missing)
    doc = result.to_json()
    assert doc["jobs"] == 12 and doc["pallet_s"] > 0 and doc["parallel_s"] > 0
    assert len(result.pallet_waits) == 12 and all(w >= 0 for w in result.pallet_waits)
    assert doc["pallet_jobs_per_s"] == round(12 / result.pallet_s, 1)
    if missing is None:
        assert result.slurm_note == "" and doc["slurm_s"] > 0
        assert len(result.slurm_waits) == 12  # every sbatch job ran
        assert doc["ratio_to_slurm"] == round(result.pallet_s / result.slurm_s, 3)
    else:
        assert doc["slurm_s"] is None and missing in result.slurm_note
    assert percentile([3.0, 1.0, 2.0, 4.0], 0.5) == 2.0 and percentile([], 0.5) is None
    after = {p.pid for p in psutil.Process(os.getpid()).children(recursive=True)}
    assert after <= before  # Slurm's daemons and the cluster are gone
