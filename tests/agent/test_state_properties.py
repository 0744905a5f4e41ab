"""Invariants of the task state machine under random event sequences (hypothesis).

Whatever order desired sets, process events, acks and time arrive in: no illegal
transition, no task lost, sequence numbers increase by one per state change, nothing
undesired keeps running, nothing ended is relaunched, and every terminal state is
reported until it is acknowledged.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pallet.agent import (
    TRANSITIONS,
    AgentStateMachine,
    DesiredTasks,
    ForceKill,
    Kill,
    KillTimeout,
    Launch,
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
from pallet.agent.events import Event, Instruction

from .conftest import make_spec

IDS = ("a", "b", "c", "d")
SPECS = {tid: make_spec(tid, kill_grace_seconds=float(i)) for i, tid in enumerate(IDS)}
LIVE = (TaskState.STARTING, TaskState.RUNNING)

task_ids = st.sampled_from(IDS)
process_events = st.one_of(
    st.builds(TaskStarted, task_ids, st.integers(1, 99)),
    st.builds(
        TaskExited,
        task_ids,
        exit_code=st.sampled_from([0, 1, 127, None]),
        signal=st.sampled_from([None, 9, 15]),
        oom=st.booleans(),
    ),
    st.builds(TaskLaunchFailed, task_ids, st.just("cannot fork")),
    st.builds(TaskVanished, task_ids),
    st.builds(KillTimeout, task_ids),
)


class Observer:
    """Checks every instruction the machine gives against what it said before."""

    def __init__(self) -> None:
        self.sent: dict[str, dict[int, SendStatus]] = {tid: {} for tid in IDS}
        self.acked: dict[str, int] = dict.fromkeys(IDS, 0)
        self.launched: dict[str, int] = dict.fromkeys(IDS, 0)
        self.ever_desired: set[str] = set()
        self.desired: set[str] = set()

    def state(self, tid: str) -> TaskState:
        seqs = self.sent[tid]
        return seqs[max(seqs)].state if seqs else TaskState.STAGING

    def check(self, instructions: list[Instruction]) -> None:
        for ins in instructions:
            if isinstance(ins, SendStatus):
                known = self.sent[ins.task_id]
                if ins.seq in known:  # a resend repeats the original exactly
                    assert known[ins.seq] == ins
                    continue
                assert ins.seq == max(known, default=0) + 1, "seqs grow by one"
                edge = (self.state(ins.task_id), ins.state)
                assert edge in TRANSITIONS, f"illegal transition {edge}"
                known[ins.seq] = ins
            elif isinstance(ins, Launch):
                tid = ins.spec.task_id
                assert tid in self.desired, "launched a task nobody wants"
                assert self.state(tid) is TaskState.STARTING
                self.launched[tid] += 1
                assert self.launched[tid] == 1, "a task id is launched at most once"
            elif isinstance(ins, Kill | ForceKill):
                assert self.state(ins.task_id) is TaskState.KILLING

    def check_machine(self, m: AgentStateMachine) -> None:
        tasks = m.tasks()
        assert self.desired <= set(tasks), "a desired task is missing"
        for tid in self.ever_desired:
            if tid in tasks:
                view = tasks[tid]
                assert view.state is self.state(tid)
                assert view.desired or view.state not in LIVE, "undesired task still live"
            else:  # forgotten: only once it ended and the end was acknowledged
                last = m.last_status(tid)
                assert last is not None and last.state.is_terminal
                assert self.acked[tid] >= last.seq


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_event_sequences_keep_the_invariants(data: st.DataObject) -> None:
    m = AgentStateMachine(now=0.0, retry=RetryPolicy(initial=1.0, maximum=8.0))
    seen = Observer()
    now = 0.0
    for _ in range(data.draw(st.integers(1, 40), label="steps")):
        kind = data.draw(st.sampled_from(["desired", "process", "ack", "tick"]), label="kind")
        event: Event
        if kind == "desired":
            ids = data.draw(st.frozensets(task_ids), label="desired")
            event = DesiredTasks(SPECS[tid] for tid in ids)
            seen.desired = set(ids)
            seen.ever_desired |= ids
        elif kind == "process":
            event = data.draw(process_events, label="process event")
        elif kind == "ack":
            tid = data.draw(task_ids, label="ack task")
            sent = sorted(seen.sent[tid]) or [0]  # the master acks only what it received
            seq = data.draw(st.sampled_from(sent), label="ack seq")
            seen.acked[tid] = max(seen.acked[tid], seq)
            event = StatusAcked(tid, seq)
        else:
            now += data.draw(st.floats(0.0, 10.0), label="advance")
            event = Tick(now)
        seen.check(m.handle(event))
        seen.check_machine(m)

    # Liveness: with time passing, every unacknowledged terminal state is sent again.
    pending_ends = {
        tid: seen.sent[tid][max(seen.sent[tid])]
        for tid in IDS
        if seen.sent[tid] and seen.state(tid).is_terminal and seen.acked[tid] < max(seen.sent[tid])
    }
    resent: list[Instruction] = []
    for i in range(1, 5):
        resent += m.handle(Tick(now + 10.0 * i))
    for end in pending_ends.values():
        assert end in resent, f"terminal status {end} was not reported again"


@settings(max_examples=200, deadline=None)
@given(st.lists(process_events, max_size=25), st.frozensets(task_ids))
def test_draining_ends_every_task_and_forgets_it_once_acked(
    history: list[Event], first: frozenset[str]
) -> None:
    """From any state, an empty desired set, the kills carried out and every status
    acknowledged leave the machine empty."""
    m = AgentStateMachine()
    m.handle(DesiredTasks(SPECS[tid] for tid in first), *history)
    m.handle(DesiredTasks([]))
    for tid in list(m.tasks()):
        m.handle(KillTimeout(tid), TaskExited(tid, signal=9))
    for tid, view in m.tasks().items():
        assert view.state.is_terminal
        m.handle(StatusAcked(tid, view.seq))
    assert m.tasks() == {}
    for tid in first:
        assert m.last_status(tid).state.is_terminal  # type: ignore[union-attr]
