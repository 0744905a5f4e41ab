"""Local persistent volumes on the agent: made at the first launch, found again by the
slot's next task, held to their size with the sandbox, deleted only when the master no
longer reserves them and no task uses them."""

from __future__ import annotations

import time
from pathlib import Path

from pallet.agent import Executor, TaskExit
from pallet.agent.users import resolve_task_user
from pallet.agent.volumes import PersistentVolumes
from pallet.model import PersistentVolume

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
