"""The pure task state machine: events in, instructions out; no processes, no clock."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from pallet.agent import (
    TRANSITIONS,
    AgentStateMachine,
    DesiredTasks,
    ForceKill,
    Instruction,
    Kill,
    KillTimeout,
    Launch,
    Reason,
    RetryPolicy,
    SendStatus,
    StatusAcked,
    TaskExited,
    TaskLaunchFailed,
    TaskStarted,
    TaskState,
    TaskVanished,
    Tick,
)
from pallet.agent.events import Event, TaskRecovered
from pallet.agent.state import InvalidTransition

from .conftest import make_spec

S = TaskState
A = make_spec("a", kill_grace_seconds=5.0)
B = make_spec("b")


def status(tid: str, state: TaskState, seq: int, **kw: object) -> SendStatus:
    return SendStatus(tid, state, seq, **kw)  # type: ignore[arg-type]


def running(*specs: object) -> AgentStateMachine:
    """A machine whose ``specs`` are RUNNING with statuses 1 and 2 acknowledged."""
    m = AgentStateMachine()
    m.handle(DesiredTasks(specs))  # type: ignore[arg-type]
    for spec in specs:
        m.handle(TaskStarted(spec.task_id, 100), StatusAcked(spec.task_id, 2))  # type: ignore[attr-defined]
    return m


@dataclass
class Case:
    name: str
    given: tuple[Event, ...]  # fed to a machine where A (and B) are RUNNING, acked
    expect: list[Instruction]


CASES = [
    # A stays desired and B is new: only B is launched; its first report is STARTING (seq 1).
    Case(
        "new desired task is launched",
        (DesiredTasks([A, B]),),
        [status("b", S.STARTING, 1), Launch(B)],
    ),
    # Nothing changed: level-triggered, repeating the desired set does nothing.
    Case("same desired set is a no-op", (DesiredTasks([A]),), []),
    # A is no longer desired: KILLING (seq 3) and SIGTERM with A's grace of 5 s.
    Case(
        "undesired running task is killed",
        (DesiredTasks([]),),
        [status("a", S.KILLING, 3), Kill("a", 5.0)],
    ),
    Case(
        "exit 0 finishes",
        (TaskExited("a", exit_code=0, message="Command exited with status 0"),),
        [status("a", S.FINISHED, 3, message="Command exited with status 0", exit_code=0)],
    ),
    Case(
        "non-zero exit fails with the command's reason",
        (TaskExited("a", exit_code=127, message="not found"),),
        [
            status(
                "a",
                S.FAILED,
                3,
                reason=Reason.COMMAND_EXECUTOR_FAILED,
                message="not found",
                exit_code=127,
            )
        ],
    ),
    Case(
        "a signal that nobody asked for fails",
        (TaskExited("a", signal=9),),
        [status("a", S.FAILED, 3, reason=Reason.COMMAND_EXECUTOR_FAILED, signal=9)],
    ),
    # OOM wins over the exit code: the memory limit is the reason.
    Case(
        "OOM fails with the memory limitation",
        (TaskExited("a", exit_code=137, oom=True),),
        [status("a", S.FAILED, 3, reason=Reason.CONTAINER_LIMITATION_MEMORY, exit_code=137)],
    ),
    Case(
        "a vanished process is gone",
        (TaskVanished("a", "lost"),),
        [status("a", S.GONE, 3, reason=Reason.EXECUTOR_TERMINATED, message="lost")],
    ),
    # Killed, then it exits on SIGTERM: KILLED (seq 4), whatever the exit status.
    Case(
        "exit after kill is KILLED",
        (DesiredTasks([]), TaskExited("a", signal=15)),
        [status("a", S.KILLING, 3), Kill("a", 5.0), status("a", S.KILLED, 4, signal=15)],
    ),
    Case(
        "kill timeout forces once",
        (DesiredTasks([]), KillTimeout("a"), KillTimeout("a")),
        [status("a", S.KILLING, 3), Kill("a", 5.0), ForceKill("a")],
    ),
    # Events about ended or unknown tasks change nothing.
    Case(
        "late events are ignored",
        (
            TaskExited("a", exit_code=0),
            TaskExited("a", exit_code=1),
            TaskStarted("a"),
            TaskVanished("a"),
            KillTimeout("a"),
            TaskExited("zz", exit_code=0),
            StatusAcked("zz", 9),
        ),
        [status("a", S.FINISHED, 3, exit_code=0)],
    ),
    Case("kill timeout of a running task is ignored", (KillTimeout("a"),), []),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_table(case: Case) -> None:
    m = running(A)
    assert m.handle(*case.given) == case.expect


def test_launch_then_start_then_ack_forgets_nothing_while_desired() -> None:
    m = AgentStateMachine()
    assert m.handle(DesiredTasks([A])) == [status("a", S.STARTING, 1), Launch(A)]
    assert m.handle(TaskStarted("a", 42)) == [status("a", S.RUNNING, 2)]
    m.handle(TaskExited("a", exit_code=0), StatusAcked("a", 3))
    view = m.task("a")
    assert view is not None and view.state is S.FINISHED and view.unacked == ()
    # Still desired and ended: never launched again.
    assert m.handle(DesiredTasks([A])) == []


def test_launch_failure_fails_with_container_reason() -> None:
    m = AgentStateMachine()
    m.handle(DesiredTasks([A]))
    assert m.handle(TaskLaunchFailed("a", "cannot create cgroup")) == [
        status(
            "a", S.FAILED, 2, reason=Reason.CONTAINER_LAUNCH_FAILED, message="cannot create cgroup"
        )
    ]


def test_kill_during_launch_is_reported_as_such() -> None:
    m = AgentStateMachine()
    m.handle(DesiredTasks([A]))
    assert m.handle(DesiredTasks([])) == [status("a", S.KILLING, 2), Kill("a", 5.0)]
    # The shell launched it before carrying out the kill; that start changes nothing.
    assert m.handle(TaskStarted("a", 7)) == []
    assert m.handle(TaskExited("a", signal=15)) == [
        status("a", S.KILLED, 3, reason=Reason.TASK_KILLED_DURING_LAUNCH, signal=15)
    ]


def test_grace_period_ends_in_force_kill_on_tick() -> None:
    m = AgentStateMachine(now=100.0)
    m.handle(DesiredTasks([A]), TaskStarted("a"), StatusAcked("a", 2))
    m.handle(DesiredTasks([]), StatusAcked("a", 3))
    # The grace period is 5 s from the kill at t=100: nothing at 104.9, SIGKILL at 105.
    assert m.next_wakeup() == 105.0
    assert m.handle(Tick(104.9)) == []
    assert m.handle(Tick(105.0)) == [ForceKill("a")]
    assert m.handle(Tick(200.0)) == []  # once only
    assert m.next_wakeup() is None


def test_unacknowledged_status_is_resent_with_backoff_until_acked() -> None:
    m = AgentStateMachine(now=0.0, retry=RetryPolicy(initial=1.0, maximum=4.0))
    first = m.handle(DesiredTasks([B]))[0]
    assert first == status("b", S.STARTING, 1)
    # Resent at 1, then after 2, 4, 4 (doubling, capped at 4): t = 1, 3, 7, 11.
    sent_at = [t for t in range(12) if first in m.handle(Tick(float(t)))]
    assert sent_at == [1, 3, 7, 11]
    m.handle(StatusAcked("b", 1))
    assert m.handle(Tick(100.0)) == [] and m.next_wakeup() is None


def test_a_tick_without_deadlines_only_moves_the_clock() -> None:
    """What a long batch feeds between its early publications: nothing due goes out,
    and a status made after it waits its whole interval from then."""
    m = AgentStateMachine(now=0.0, retry=RetryPolicy(initial=1.0, maximum=4.0))
    assert m.handle(DesiredTasks([B]))[0] == status("b", S.STARTING, 1)  # due again at 1
    assert m.handle(Tick(5.0, deadlines=False)) == []
    assert m.handle(TaskStarted("b", 100)) == [status("b", S.RUNNING, 2)]  # due at 6
    assert m.handle(StatusAcked("b", 1)) == []
    assert m.handle(Tick(5.9)) == []  # STARTING acknowledged, RUNNING not due yet
    assert m.handle(Tick(6.0)) == [status("b", S.RUNNING, 2)]


def test_ack_is_cumulative_and_ignores_stale_seqs() -> None:
    m = AgentStateMachine()
    m.handle(DesiredTasks([B]), TaskStarted("b"), TaskExited("b", exit_code=0))
    # Its STARTING (1) is superseded by the RUNNING (2): no longer waiting to be resent.
    assert m.task("b").unacked == (2, 3)  # type: ignore[union-attr]
    m.handle(StatusAcked("b", 2))
    assert m.task("b").unacked == (3,)  # type: ignore[union-attr]
    m.handle(StatusAcked("b", 1))  # a late duplicate
    assert m.task("b").unacked == (3,)  # type: ignore[union-attr]
    assert m.unacknowledged() == [status("b", S.FINISHED, 3, exit_code=0)]


def test_ended_task_is_forgotten_only_when_acked_and_undesired() -> None:
    m = AgentStateMachine()
    m.handle(DesiredTasks([B]), TaskStarted("b"), TaskExited("b", exit_code=0))
    m.handle(DesiredTasks([]))
    assert m.task("b") is not None  # FINISHED is not acknowledged yet
    m.handle(StatusAcked("b", 3))
    assert m.task("b") is None
    # Listed again by a confused master: its end is reported again, it is not relaunched.
    assert m.handle(DesiredTasks([B])) == [status("b", S.FINISHED, 3, exit_code=0)]
    assert m.task("b").state is S.FINISHED  # type: ignore[union-attr]


def test_graveyard_is_bounded() -> None:
    m = AgentStateMachine(graveyard_size=1)
    for tid in ("x", "y"):
        spec = make_spec(tid)
        m.handle(DesiredTasks([spec]), TaskExited(tid, exit_code=0), DesiredTasks([]))
        m.handle(StatusAcked(tid, 2))
    assert m.last_status("x") is None  # pushed out by y
    assert m.last_status("y") == status("y", S.FINISHED, 2, exit_code=0)


def test_converges_from_a_mixed_state() -> None:
    # a RUNNING, b STARTING, c FINISHED; the master now wants only c and d.
    c, d = make_spec("c"), make_spec("d")
    m = AgentStateMachine()
    m.handle(
        DesiredTasks([A, B, c]), TaskStarted("a"), TaskStarted("c"), TaskExited("c", exit_code=0)
    )
    out = m.handle(DesiredTasks([c, d]))
    assert out == [
        status("a", S.KILLING, 3),
        Kill("a", 5.0),
        status("b", S.KILLING, 2),
        Kill("b", 3.0),
        status("d", S.STARTING, 1),
        Launch(d),
    ]


def test_desired_set_rejects_one_id_with_two_specs() -> None:
    with pytest.raises(ValueError, match="appears twice"):
        DesiredTasks([make_spec("a"), make_spec("a", cmd="false")])


def test_every_legal_edge_has_one_action_and_illegal_edges_are_refused() -> None:
    m = AgentStateMachine()
    assert set(m._actions) == TRANSITIONS
    m.handle(DesiredTasks([A]))
    task = m._tasks["a"]
    with pytest.raises(InvalidTransition, match="TASK_STARTING -> TASK_KILLED"):
        m._transition(task, S.KILLED)


def test_non_events_are_refused() -> None:
    with pytest.raises(TypeError, match="not an agent event"):
        AgentStateMachine().handle("launch everything")  # type: ignore[arg-type]


# ---------------------------------------------------------------- recovery


def test_recovered_running_task_keeps_its_seq_and_is_not_relaunched() -> None:
    m = AgentStateMachine()
    # The checkpoint said RUNNING at seq 2, acknowledged: nothing to send.
    assert m.handle(TaskRecovered(A, S.RUNNING, 2), TaskStarted("a", 100)) == []
    assert m.handle(DesiredTasks([A])) == []  # the master still wants it: no launch
    # It dies later (not our child: no exit status): the next seq, 3.
    assert m.handle(TaskVanished("a", "lost")) == [
        status("a", S.GONE, 3, reason=Reason.EXECUTOR_TERMINATED, message="lost")
    ]


def test_recovered_unacked_updates_are_resent_until_acked() -> None:
    m = AgentStateMachine(retry=RetryPolicy(initial=2.0, maximum=60.0))
    final = status("a", S.FAILED, 3, reason=Reason.COMMAND_EXECUTOR_FAILED, exit_code=1)
    assert m.handle(TaskRecovered(A, S.FAILED, 3, (final,))) == [final]
    assert m.handle(Tick(2.0)) == [final]
    assert m.handle(StatusAcked("a", 3), DesiredTasks([])) == []
    assert m.task("a") is None and m.last_status("a") == final


def test_recovered_task_no_longer_desired_is_killed() -> None:
    m = AgentStateMachine()
    m.handle(TaskRecovered(A, S.RUNNING, 2))
    assert m.handle(DesiredTasks([])) == [status("a", S.KILLING, 3), Kill("a", 5.0)]


def test_recovered_kill_resumes_with_a_new_grace_period() -> None:
    m = AgentStateMachine(now=10.0)
    assert m.handle(TaskRecovered(A, S.KILLING, 3)) == [Kill("a", 5.0)]
    assert m.handle(Tick(15.0)) == [ForceKill("a")]
    assert m.handle(TaskVanished("a", "gone")) == [status("a", S.KILLED, 4, message="gone")]
