"""Checkpoints written by a real runtime, read back by a second one over the same work
directory, as after an agent restart: adopt, kill, report lost, sweep orphans."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from pallet.agent import Executor, SendStatus, TaskRuntime, TaskState
from pallet.agent.checkpoint import CheckpointStore

from .conftest import make_spec, wait_for

S = TaskState
pytestmark = pytest.mark.root


def runtime(tmp_path: Path, agent_id: str, *, sweep: bool = True) -> TaskRuntime:
    ex = Executor(tmp_path / "sandboxes", agent_id=agent_id, sweep=sweep)
    return TaskRuntime(ex, checkpoints=CheckpointStore(tmp_path / "checkpoints"))


def steps_until(rt: TaskRuntime, task_id: str, state: TaskState) -> list[SendStatus]:
    out: list[SendStatus] = []
    deadline = time.monotonic() + 15
    while not any(s.task_id == task_id and s.state is state for s in out):
        assert time.monotonic() < deadline, f"{task_id} never reached {state}: {out}"
        out += rt.step(0.2)
    return out


def test_a_second_runtime_adopts_kills_and_reports(tmp_path: Path, agent_id: str) -> None:
    first = runtime(tmp_path, agent_id)
    try:
        _adopt_kill_and_report(tmp_path, agent_id, first)
    finally:  # a failed assertion must not leave sleep 600 behind
        first.executor.close(timeout=5)


def _adopt_kill_and_report(tmp_path: Path, agent_id: str, first: TaskRuntime) -> None:
    keep, victim = make_spec("keep.1", cmd="sleep 600"), make_spec("victim.1", cmd="sleep 600")
    first.set_desired([keep, victim])
    assert first.checkpoints is not None
    assert {c.task_id for c in first.checkpoints.load()} == {"keep.1", "victim.1"}
    pids = {t: first.executor.pid(t) for t in ("keep.1", "victim.1")}
    # "Crash": the first runtime is simply abandoned; its processes run on.
    first.executor.isolator.prepare("stray.1", 100, 32)  # a cgroup nobody checkpointed

    second = runtime(tmp_path, agent_id, sweep=False)
    # No master ever acknowledged RUNNING (2): the checkpoint kept it, and it is resent
    # (the STARTING it superseded waits for no ack: the RUNNING's covers it).
    for cp in first.checkpoints.load():
        assert [(s.state, s.seq) for s in cp.unacked] == [(S.RUNNING, 2)]
    resent = second.recover()
    assert [(s.task_id, s.state, s.seq) for s in resent] == [
        (t, S.RUNNING, 2) for t in ("keep.1", "victim.1")
    ]
    assert second.recovery.adopted == ("keep.1", "victim.1")
    assert second.recovery.orphans == ("stray.1",)
    assert second.executor.running() == {"keep.1", "victim.1"}
    assert second.executor.pid("keep.1") == pids["keep.1"]
    usage = second.usage("keep.1")
    assert usage is not None and usage.processes >= 1

    os.kill(pids["victim.1"], signal.SIGKILL)
    first.executor.wait(1)  # the test process is its real parent: reap the zombie
    ended = steps_until(second, "victim.1", S.GONE)
    (gone,) = [s for s in ended if s.task_id == "victim.1"]
    assert gone.seq == 3 and "exit status was lost across the agent restart" in gone.message
    second.acknowledge("victim.1", 3)
    assert {c.task_id for c in second.checkpoints.load()} == {"keep.1"}  # type: ignore[union-attr]

    killed = second.set_desired([])  # the master no longer wants it: SIGTERM to the group
    assert [s.state for s in killed] == [S.KILLING]
    wait_for(lambda: first.executor.wait(0.1) or not first.executor.running(), 10, "reaped")
    ended = steps_until(second, "keep.1", S.KILLED)
    second.acknowledge("keep.1", ended[-1].seq)
    assert second.checkpoints.load() == []  # type: ignore[union-attr]
    second.close(timeout=5)


def test_checkpoints_whose_process_is_gone_are_reported(tmp_path: Path, agent_id: str) -> None:
    first = runtime(tmp_path, agent_id)
    first.set_desired([make_spec("short.1", cmd="sleep 600")])
    pid = first.executor.pid("short.1")
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: first.executor.has_ended("short.1"), 10, "the task ended")
    os.waitpid(pid, 0)  # reaped behind the first runtime's back, as init would
    second = runtime(tmp_path, agent_id, sweep=False)
    (gone,) = [s for s in second.recover() if s.state is S.GONE]
    assert (gone.task_id, gone.state, gone.seq) == ("short.1", S.GONE, 3)
    assert second.recovery.lost == ("short.1",) and second.recovery.orphans == ()
    assert not any(p.exists() for p in second.executor.isolator.paths("short.1").values())
    second.close(timeout=5)
