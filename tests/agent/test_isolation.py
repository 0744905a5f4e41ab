"""Per-task cgroups: detection, layout under the agent's own cgroup, limits, cleanup."""

from __future__ import annotations

import logging
import signal
import subprocess
from pathlib import Path

import pytest

from pallet.agent import Executor, NullIsolator, detect_isolator
from pallet.agent.cgroup_isolator import CgroupV2Isolator
from pallet.agent.isolation import IsolationError, Sample

from .conftest import own_cgroup_dirs


def fake_proc(tmp_path: Path, cgroup: str, mountinfo: str) -> Path:
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "cgroup").write_text(cgroup)
    (proc / "mountinfo").write_text(mountinfo)
    return proc


def fake_v2(tmp_path: Path, controllers: str) -> tuple[Path, Path]:
    """A v2 tree in plain directories: the agent in /agent.slice/pallet.service."""
    mount = tmp_path / "unified"
    own = mount / "agent.slice" / "pallet.service"
    own.mkdir(parents=True)
    (own / "cgroup.controllers").write_text(controllers + "\n")
    proc = fake_proc(
        tmp_path,
        "0::/agent.slice/pallet.service\n",
        f"41 31 0:38 / {mount} rw,relatime - cgroup2 cgroup2 rw\n",
    )
    return proc, own


def test_v2_delegates_controllers_and_writes_limits(tmp_path: Path) -> None:
    proc, own = fake_v2(tmp_path, "cpuset cpu io memory pids")
    iso = detect_isolator("agent-1", proc_self=proc)
    assert isinstance(iso, CgroupV2Isolator) and iso.warning is None
    base = own / "pallet" / "agent-1"
    for d in (own, own / "pallet", base):
        assert (d / "cgroup.subtree_control").read_text() == "+cpu +memory +pids"
    iso.prepare("web.1", cpu_milli=250, mem_mib=64)
    task = base / "web.1"
    assert iso.paths("web.1") == {"unified": task}
    # 250 millicpus = 25 ms of every 100 ms period; 64 MiB = 67108864 bytes.
    assert (task / "cpu.max").read_text() == "25000 100000"
    assert (task / "memory.max").read_text() == "67108864"
    assert (task / "cpu.weight").read_text() == "25"
    iso.join("web.1", 4242)
    assert (task / "cgroup.procs").read_text() == "4242"
    (task / "cpu.stat").write_text("usage_usec 1500000\nuser_usec 1000000\n")
    (task / "memory.current").write_text("5000000\n")
    (task / "memory.stat").write_text("anon 4000000\nfile 1000000\n")
    (task / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    usage = iso.usage("web.1")
    assert usage is not None
    assert (usage.cpu_seconds, usage.mem_bytes, usage.mem_rss_bytes) == (1.5, 5_000_000, 4_000_000)
    assert usage.mem_limit_bytes == 64 << 20
    assert iso.sample("web.1") == Sample(1.5, 4_000_000)  # what a heartbeat reports
    assert iso.oom_kills("web.1") == 1


def test_v2_without_controllers_and_no_v1_runs_unlimited(tmp_path: Path) -> None:
    proc, _ = fake_v2(tmp_path, "hugetlb")
    iso = detect_isolator("agent-1", proc_self=proc)
    assert isinstance(iso, NullIsolator)
    assert iso.warning is not None
    assert "lacks the cpu and memory controllers (it has: hugetlb)" in iso.warning
    assert "WITHOUT CPU or memory limits" in iso.warning


def test_unmounted_hierarchies_degrade_with_reasons(tmp_path: Path) -> None:
    mount = tmp_path / "memory"  # listed but never created: not writable
    proc = fake_proc(
        tmp_path,
        "4:memory:/job\n",
        f"35 31 0:32 / {mount} rw - cgroup cgroup rw,memory\n",
    )
    iso = detect_isolator("agent-1", proc_self=proc)
    assert isinstance(iso, NullIsolator)
    assert f"cannot create {mount}/job/pallet/agent-1" in (iso.warning or "")


def test_nothing_at_all(tmp_path: Path) -> None:
    iso = detect_isolator("agent-1", proc_self=tmp_path / "nowhere")
    assert isinstance(iso, NullIsolator)
    assert "no cgroup hierarchy found" in (iso.warning or "")
    assert detect_isolator("a", prefer="none").kind == "none"


@pytest.mark.root
def test_real_cgroups_are_nested_under_our_own_and_removed(agent_id: str) -> None:
    iso = detect_isolator(agent_id)
    assert iso.kind != "none", iso.warning
    own = own_cgroup_dirs()
    try:
        iso.prepare("nest.1", cpu_milli=250, mem_mib=64)
        paths = iso.paths("nest.1")
        assert {"cpu", "memory"} <= set(paths) or "unified" in paths
        for name, path in paths.items():
            assert path == own[name] / "pallet" / agent_id / "nest.1"
            assert path.is_dir()
        if "cpu" in paths:  # v1
            assert (paths["cpu"] / "cpu.cfs_quota_us").read_text().strip() == "25000"
            assert (paths["cpu"] / "cpu.cfs_period_us").read_text().strip() == "100000"
            assert (paths["memory"] / "memory.limit_in_bytes").read_text().strip() == str(64 << 20)
        else:
            assert (paths["unified"] / "cpu.max").read_text().strip() == "25000 100000"
        assert iso.pids("nest.1") == set()
        iso.destroy("nest.1")
        assert not any(p.exists() for p in paths.values())
    finally:
        iso.close()
    assert not any((own[n] / "pallet" / agent_id).exists() for n in iso.paths("x"))


@pytest.mark.root
def test_stale_task_cgroup_is_replaced(agent_id: str) -> None:
    iso = detect_isolator(agent_id)
    try:
        iso.prepare("stale.1", cpu_milli=100, mem_mib=32)
        iso.prepare("stale.1", cpu_milli=200, mem_mib=32)  # an earlier run left it behind
        for path in iso.paths("stale.1").values():
            if path.joinpath("cpu.cfs_quota_us").exists():
                assert path.joinpath("cpu.cfs_quota_us").read_text().strip() == "20000"
        iso.destroy("stale.1")
    finally:
        iso.close()


@pytest.mark.root
def test_join_of_a_dead_pid_is_an_isolation_error(agent_id: str) -> None:
    iso = detect_isolator(agent_id)
    try:
        iso.prepare("dead.1", cpu_milli=100, mem_mib=32)
        gone = subprocess.Popen(["true"])
        gone.wait()
        with pytest.raises(IsolationError, match="cannot write"):
            iso.join("dead.1", gone.pid)
        iso.destroy("dead.1")
    finally:
        iso.close()


@pytest.mark.root
def test_a_restarted_agent_sweeps_what_its_last_run_left(
    agent_id: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    crashed = detect_isolator(agent_id)  # an agent that dies without cleaning up
    crashed.prepare("orphan.1", cpu_milli=100, mem_mib=32)
    sleeper = subprocess.Popen(["sleep", "60"])
    crashed.join("orphan.1", sleeper.pid)
    caplog.set_level(logging.WARNING, logger="pallet.agent")
    restarted = Executor(tmp_path, agent_id=agent_id)
    try:
        assert sleeper.wait(timeout=5) == -signal.SIGKILL
        assert not any(p.exists() for p in restarted.isolator.paths("orphan.1").values())
        assert (
            f"agent {agent_id}: killed tasks an earlier run left without a checkpoint: ['orphan.1']"
            in [r.getMessage() for r in caplog.records]
        )
    finally:
        restarted.close()
    own = own_cgroup_dirs()
    assert not any((own[n] / "pallet" / agent_id).exists() for n in crashed.paths("x"))
