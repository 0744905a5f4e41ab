"""Local persistent volumes on the agent: made at the first launch, found again by the
slot's next task, held to their size with the sandbox, deleted only when the master no
longer reserves them and no task uses them."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pallet.agent import Executor, LaunchError, TaskExit
from pallet.agent.disks import DiskError, parse_disk
from pallet.agent.users import resolve_task_user
from pallet.agent.volumes import PersistentVolumes
from pallet.model import NodeDisk, PersistentVolume

from .conftest import make_spec

DATA = PersistentVolume("data", 4, "db#data#slot1")


def run_to_end(ex: Executor, task_id: str, timeout: float = 15.0) -> TaskExit:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for end in ex.wait(deadline - time.monotonic()):
            if end.task_id == task_id:
                return end
    raise AssertionError(f"{task_id} did not end")


def test_the_next_task_of_a_slot_finds_what_the_last_one_wrote(executor: Executor) -> None:
    first = make_spec("db.1", cmd="echo one >> data/log; pwd -P > where", persistent_volumes=[DATA])
    executor.launch(first)
    assert run_to_end(executor, "db.1").exit_code == 0
    volume = executor.sandbox_root.parent / "volumes" / DATA.id
    assert (volume / "log").read_text() == "one\n"
    assert (executor.sandbox("db.1") / "data").resolve() == volume
    second = make_spec("db.2", cmd="echo two >> data/log; cat data/log", persistent_volumes=[DATA])
    executor.launch(second)
    assert run_to_end(executor, "db.2").exit_code == 0
    assert (executor.sandbox("db.2") / "stdout").read_text() == "one\ntwo\n"


def test_a_volume_is_held_to_its_size(executor: Executor) -> None:
    spec = make_spec(
        "fill.1",
        cmd="head -c 8000000 /dev/zero > data/big; sync; sleep 60",
        persistent_volumes=[PersistentVolume("data", 4, "fill#data#s")],
    )
    executor.launch(spec)
    end = run_to_end(executor, "fill.1", timeout=30.0)
    assert end.limitation == "disk"
    assert "of persistent volume data exceeds the quota of 4 MiB" in end.message


def test_prune_deletes_only_unreserved_unused_volumes(tmp_path: Path) -> None:
    volumes = PersistentVolumes(tmp_path / "volumes")
    me = resolve_task_user(None)
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    keep, used, gone = (PersistentVolume("d", 1, f"a#d#{s}") for s in ("keep", "used", "gone"))
    spec = make_spec("a.1", persistent_volumes=[keep, used, gone])
    dirs = volumes.attach(spec, sandbox, me, link=False)
    assert [d.name for d in dirs] == [keep.id, used.id, gone.id]
    (dirs[2] / "file").write_text("x")
    assert volumes.prune([keep.id], in_use=[used.id]) == [gone.id]
    assert volumes.ids() == {keep.id, used.id}
    assert volumes.prune([], []) == sorted([keep.id, used.id])
    assert volumes.ids() == set()


def test_path_and_mount_volumes_live_on_the_operators_disks(
    executor: Executor, tmp_path: Path
) -> None:
    ssd, whole = tmp_path / "ssd1", tmp_path / "ssd2"
    ssd.mkdir()
    whole.mkdir()
    executor.stager.volumes.disk_roots = (str(ssd), str(whole))
    on_path = PersistentVolume("data", 4, "db#data#s1", "path", str(ssd))
    on_mount = PersistentVolume("logs", 4, "db#logs#s1", "mount", str(whole))
    spec = make_spec(
        "db.1",
        cmd="echo kept > data/x; head -c 6000000 /dev/zero > logs/big",
        persistent_volumes=[on_path, on_mount],
    )
    executor.launch(spec)
    end = run_to_end(executor, "db.1")
    assert (end.exit_code, end.limitation) == (0, None)
    assert (ssd / "pallet-volumes" / on_path.id / "x").read_text() == "kept\n"
    assert (whole / "pallet-volumes" / on_mount.id / "big").stat().st_size == 6000000
    volumes = executor.stager.volumes
    assert volumes.ids() == {on_path.id, on_mount.id}
    assert volumes.prune([on_path.id]) == [on_mount.id]
    assert not (whole / "pallet-volumes" / on_mount.id).exists()
    # a disk this agent was not given fails the task's launch, saying which
    elsewhere = PersistentVolume("data", 4, "x#data#s1", "path", str(tmp_path / "other"))
    with pytest.raises(LaunchError, match=r"the disk .*other is not this agent's"):
        executor.launch(make_spec("x.1", persistent_volumes=[elsewhere]))


def test_disk_options(tmp_path: Path) -> None:
    assert parse_disk("path", f"{tmp_path}:2048") == NodeDisk("path", str(tmp_path), 2048)
    assert parse_disk("path", str(tmp_path)).size > 0  # the free space of its filesystem
    for kind, text, message in (
        ("path", "relative/dir", "must be an absolute path"),
        ("path", str(tmp_path / "missing"), "is not a directory"),
        ("path", f"{tmp_path}:lots", "the size must be whole MiB"),
        ("mount", str(tmp_path), "is not a mount point"),
    ):
        with pytest.raises(DiskError, match=message):
            parse_disk(kind, text)
    assert parse_disk("mount", "/").type == "mount"  # / is a mount point
