"""The state machine driven over real processes: what the master's HTTP loop sees."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pallet.agent import (
    Executor,
    NullIsolator,
    Reason,
    RetryPolicy,
    SendStatus,
    TaskRuntime,
    TaskState,
)
from pallet.agent.runtime import PUBLISH_AFTER, PUBLISH_EVERY, superseded_startings_dropped
from pallet.model import TaskSpec

from .conftest import make_spec, wait_for

S = TaskState


@pytest.fixture
def runtime(executor: Executor) -> Iterator[TaskRuntime]:
    rt = TaskRuntime(executor)
    yield rt
    rt.close(timeout=5.0)


def states(statuses: list[SendStatus], task_id: str) -> list[TaskState]:
    return [s.state for s in statuses if s.task_id == task_id]


def run_until(
    rt: TaskRuntime, task_id: str, state: TaskState, timeout: float = 10.0
) -> list[SendStatus]:
    """Step the runtime (acknowledging nothing) until ``task_id`` reports ``state``."""
    seen: list[SendStatus] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen += rt.step(0.2)
        if state in states(seen, task_id):
            return seen
    raise AssertionError(f"{task_id} never reached {state}; saw {seen}")


def test_a_task_runs_to_completion_and_is_forgotten_after_ack(runtime: TaskRuntime) -> None:
    spec = make_spec("done.1", cmd="echo hello")
    first = runtime.set_desired([spec])
    # Its STARTING (seq 1) is superseded by the RUNNING (seq 2) sent with it: not sent.
    assert [(s.state, s.seq) for s in first if s.task_id == "done.1"] == [(S.RUNNING, 2)]
    seen = run_until(runtime, "done.1", S.FINISHED)
    (end,) = [s for s in seen if s.state is S.FINISHED]
    assert (end.seq, end.exit_code, end.message) == (3, 0, "Command exited with status 0")
    assert runtime.read_log("done.1", "stdout").data == b"hello\n"
    runtime.acknowledge("done.1", 3)
    assert runtime.set_desired([]) == []
    assert runtime.tasks() == {}
    assert runtime.last_status("done.1") == end


def test_one_answer_acknowledges_many_tasks_at_once(runtime: TaskRuntime) -> None:
    """What the agent does with a master's answer to a status batch: every (task id,
    seq) in one call, as acknowledging each alone would."""
    specs = [make_spec(f"acked.{i}", cmd="echo hi") for i in range(3)]
    runtime.set_desired(specs)
    ended: list[SendStatus] = []
    for spec in specs:
        ended += [s for s in run_until(runtime, spec.task_id, S.FINISHED) if s.state is S.FINISHED]
    assert runtime.acknowledge_all([(s.task_id, s.seq) for s in ended[:2]]) == []
    assert runtime.set_desired([]) == []
    assert set(runtime.tasks()) == {"acked.2"}  # its end still waits for the master
    assert runtime.unacknowledged()[-1] == ended[2]  # with its STARTING and RUNNING


def test_removing_a_task_kills_it_and_sigkill_follows_the_grace(runtime: TaskRuntime) -> None:
    spec = make_spec("stubborn.1", cmd="trap '' TERM; echo ready; sleep 60", kill_grace_seconds=0.4)
    runtime.set_desired([spec])
    stdout = runtime.executor.sandbox("stubborn.1") / "stdout"
    deadline = time.monotonic() + 10
    while stdout.read_text() != "ready\n" and time.monotonic() < deadline:
        runtime.step(0.01)
    killed_at = time.monotonic()
    assert states(runtime.set_desired([]), "stubborn.1") == [S.KILLING]
    seen = run_until(runtime, "stubborn.1", S.KILLED)
    elapsed = time.monotonic() - killed_at
    (end,) = [s for s in seen if s.state is S.KILLED]
    assert end.signal == 9 and end.reason is None
    assert 0.4 <= elapsed < 5.0


def test_a_missing_command_is_a_failed_task_with_the_shells_words(runtime: TaskRuntime) -> None:
    runtime.set_desired([make_spec("typo.1", cmd="nosuchcmd")])
    seen = run_until(runtime, "typo.1", S.FAILED, timeout=5.0)
    (end,) = [s for s in seen if s.state is S.FAILED]
    assert end.reason is Reason.COMMAND_EXECUTOR_FAILED
    assert end.exit_code == 127
    assert end.message == "Command exited with status 127: /bin/sh: 1: nosuchcmd: not found"


def _status(task_id: str, state: S, seq: int) -> SendStatus:
    return SendStatus(task_id, state, seq)


def test_only_a_starting_that_a_later_status_supersedes_is_dropped() -> None:
    a1, a2 = _status("a", S.STARTING, 1), _status("a", S.RUNNING, 2)
    b1, b2 = _status("b", S.STARTING, 1), _status("b", S.FAILED, 2)
    c1 = _status("c", S.STARTING, 1)
    d3, d4 = _status("d", S.RUNNING, 3), _status("d", S.RUNNING, 4)  # a health change
    e1 = _status("e", S.STARTING, 1)
    kept = superseded_startings_dropped([a1, b1, c1, a2, b2, d3, d4, e1], {"e": 2})
    # a and b: superseded in the list; c: nothing later; d: RUNNINGs always go; e: its
    # RUNNING was published earlier in the batch.
    assert kept == [c1, a2, b2, d3, d4]
    assert superseded_startings_dropped([c1], {}) == [c1]
    assert superseded_startings_dropped([c1], {"c": 1}) == [c1]


def test_a_launch_failure_is_reported_not_raised(runtime: TaskRuntime) -> None:
    (runtime.executor.sandbox_root / "blocked.1").write_text("a file where the sandbox goes")
    statuses = runtime.set_desired([make_spec("blocked.1")])
    assert states(statuses, "blocked.1") == [S.FAILED]  # its STARTING superseded
    assert statuses[-1].reason is Reason.CONTAINER_LAUNCH_FAILED
    assert "cannot create sandbox" in statuses[-1].message


def test_unacknowledged_statuses_come_back_out_of_step(tmp_path: Path) -> None:
    now = [1000.0]
    ex = Executor(tmp_path, agent_id="resend", isolator=NullIsolator("test"))
    rt = TaskRuntime(ex, clock=lambda: now[0], retry=RetryPolicy(initial=5.0, maximum=5.0))
    try:
        sent = rt.set_desired([make_spec("slow.1", cmd="sleep 60")])
        assert rt.step(0) == []  # nothing is due yet
        now[0] += 5.0
        assert rt.step(0) == sent  # RUNNING again, same seq (its STARTING superseded)
        rt.acknowledge("slow.1", 2)
        now[0] += 5.0
        assert rt.step(0) == [] and rt.unacknowledged() == []
    finally:
        statuses = rt.close(timeout=0.0)
    assert states(statuses, "slow.1")[-1] is S.KILLED


def test_an_acknowledgement_that_comes_late_does_not_resend_its_status(tmp_path: Path) -> None:
    """The master answered after the resend was due: the ack is fed before the clock's
    Tick, so the status it acknowledges does not go out again."""
    now = [1000.0]
    ex = Executor(tmp_path, agent_id="lateack", isolator=NullIsolator("test"))
    rt = TaskRuntime(ex, clock=lambda: now[0], retry=RetryPolicy(initial=2.0, maximum=2.0))
    try:
        (running,) = rt.set_desired([make_spec("late.1", cmd="sleep 60")])
        now[0] += 3.0  # past the resend
        assert rt.acknowledge("late.1", running.seq) == []
        assert rt.unacknowledged() == []
    finally:
        rt.close(timeout=0.0)


def test_acks_queued_behind_a_busy_runtime_go_before_the_next_tick(tmp_path: Path) -> None:
    """An ack that waits for the runtime's lock (a batch of launches holds it) is queued
    and fed by whichever call takes the lock next, before that call's Tick."""
    now = [1000.0]
    ex = Executor(tmp_path, agent_id="queuedack", isolator=NullIsolator("test"))
    rt = TaskRuntime(ex, clock=lambda: now[0], retry=RetryPolicy(initial=2.0, maximum=2.0))
    answers: list[list[SendStatus]] = []
    try:
        (running,) = rt.set_desired([make_spec("queued.1", cmd="sleep 60")])
        with rt._lock:  # as a long batch would
            acker = threading.Thread(
                target=lambda: answers.append(rt.acknowledge_all([("queued.1", running.seq)]))
            )
            acker.start()
            wait_for(lambda: bool(rt._acks))  # queued, the thread waits for the lock
            now[0] += 3.0  # past the resend
            assert rt.step(0) == []  # this step fed the ack first: nothing resent
        acker.join(10.0)
        assert answers == [[]] and rt.unacknowledged() == []
    finally:
        rt.close(timeout=0.0)


def test_a_slow_batch_publishes_every_publish_after_seconds(tmp_path: Path) -> None:
    """Fewer than PUBLISH_EVERY launches, but slow ones: their statuses go out every
    PUBLISH_AFTER seconds (the master is not left without news of a slow batch)."""
    now = [1000.0]
    ex = Executor(tmp_path, agent_id="slowbatch", isolator=NullIsolator("test"))
    rt = TaskRuntime(ex, clock=lambda: now[0])
    launch = ex.launch
    step = PUBLISH_AFTER / 4

    def slow_launch(spec: TaskSpec) -> int:
        now[0] += step
        return launch(spec)

    ex.launch = slow_launch  # type: ignore[method-assign]
    published: list[list[SendStatus]] = []
    rt.publish = published.append
    try:
        returned = rt.set_desired([make_spec(f"slow.{i}", cmd="sleep 60") for i in range(10)])
        assert [len(batch) for batch in published] == [4, 4]
        assert [s.task_id for s in returned] == ["slow.8", "slow.9"]
    finally:
        rt.close(timeout=0.0)


def test_a_long_batch_s_statuses_are_resent_from_when_they_were_made(tmp_path: Path) -> None:
    """Each early publication of a batch reads the clock: the statuses made at the end
    of a batch longer than the resend interval are not due again as soon as it ends."""
    now = [1000.0]
    ex = Executor(tmp_path, agent_id="longbatch", isolator=NullIsolator("test"))
    rt = TaskRuntime(ex, clock=lambda: now[0], retry=RetryPolicy(initial=2.0, maximum=2.0))
    launch = ex.launch

    def slow_launch(spec: TaskSpec) -> int:  # each launch takes 0.125 s of the clock
        now[0] += 0.125
        return launch(spec)

    ex.launch = slow_launch  # type: ignore[method-assign]
    published: list[list[SendStatus]] = []
    rt.publish = published.append
    try:
        returned = rt.set_desired([make_spec(f"long.{i}", cmd="sleep 60") for i in range(36)])
        early = [s for batch in published for s in batch]
        assert returned and early and now[0] >= 1004.0  # 4 s, twice the resend interval
        assert rt.acknowledge_all([(s.task_id, s.seq) for s in early]) == []
        assert rt.step(0) == []  # the last ones were made less than 2 s ago
        now[0] += 2.0
        resent = rt.step(0)  # unacknowledged: due now
        assert sorted((s.task_id, s.seq) for s in resent) == sorted(
            (s.task_id, s.seq) for s in returned
        )
    finally:
        rt.close(timeout=0.0)


def test_close_kills_everything_and_reports_it(executor: Executor) -> None:
    rt = TaskRuntime(executor)
    rt.set_desired(
        [make_spec(f"bye.{i}", cmd="sleep 60", kill_grace_seconds=0.2) for i in range(3)]
    )
    statuses = rt.close(timeout=5.0)
    for i in range(3):
        assert states(statuses, f"bye.{i}") == [S.KILLING, S.KILLED]
    assert executor.running() == set()


def test_follow_log_streams_until_the_task_ends(runtime: TaskRuntime) -> None:
    runtime.set_desired(
        [make_spec("talk.1", cmd="for i in 1 2 3; do echo line $i; sleep 0.05; done")]
    )
    chunks = []
    for chunk in runtime.follow_log("talk.1", "stdout", poll_interval=0.02):
        chunks.append(chunk)  # ends by itself, even with nobody stepping the runtime
    assert b"".join(c.data for c in chunks) == b"line 1\nline 2\nline 3\n"
    assert chunks[0].offset == 0
    assert all(a.next_offset == b.offset for a, b in itertools.pairwise(chunks))


def test_running_tasks_with_health_checks_are_listed_without_the_lock(
    runtime: TaskRuntime,
) -> None:
    checked = make_spec(
        "hc.1", cmd="sleep 60", health_checks=({"protocol": "COMMAND", "command": "true"},)
    )
    plain = make_spec("plain.1", cmd="sleep 60")
    runtime.set_desired([checked, plain])
    assert set(runtime.health_checked()) == {"hc.1"}
    assert runtime.health_checked()["hc.1"] == checked
    runtime.set_desired([plain])  # hc.1 is being killed: no more probes
    assert runtime.health_checked() == {}


def test_a_long_batch_publishes_statuses_while_it_launches(runtime: TaskRuntime) -> None:
    # The statuses of every PUBLISH_EVERY launches go out before the batch ends (the
    # master hears of the first tasks while the agent launches the rest), each status
    # once, checkpoint-free here.
    published: list[list[SendStatus]] = []
    runtime.publish = published.append
    count = 2 * PUBLISH_EVERY + 8
    runtime._clock = lambda: 1000.0  # type: ignore[method-assign]  # never PUBLISH_AFTER
    specs = [make_spec(f"many.{i}", cmd="sleep 60") for i in range(count)]
    returned = runtime.set_desired(specs)
    assert len(published) == count // PUBLISH_EVERY
    assert all(published)
    every = [s for batch in published for s in batch] + returned
    # Each task's RUNNING, once; no STARTING after it (each is superseded).
    assert sorted((s.task_id, s.state) for s in every) == sorted(
        (spec.task_id, S.RUNNING) for spec in specs
    )
