"""The agent's task state machine: events in, instructions out; pure (time is ``Tick.now``).

Level-triggered, in the style of dask's ``worker_state_machine``: ``handle(*events)``
folds events into one record per task and returns what the shell must do. From any
state it converges on the master's desired set: a desired task it has never seen is
launched, a live task that is no longer desired is killed (SIGTERM, then SIGKILL when
the grace period ends), a task that ended stays ended. Every state change gets the
next sequence number of its task and is sent again, with backoff, until the master
acknowledges it (at-least-once; the master dedupes by task id and seq). A task is
forgotten only when it has ended, its last status is acknowledged and the master no
longer lists it; its last status is kept (bounded) so a task id the master lists again
is reported as ended, never relaunched.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pallet.agent.events import (
    DesiredTasks,
    Event,
    ForceKill,
    HealthChanged,
    Instruction,
    Kill,
    KillTimeout,
    Launch,
    ReadinessChanged,
    SendStatus,
    StatusAcked,
    TaskExited,
    TaskLaunchFailed,
    TaskRecovered,
    TaskStarted,
    TaskVanished,
    Tick,
)
from pallet.agent.status import TRANSITIONS, Reason, TaskState
from pallet.model import PalletError, TaskSpec

__all__ = ["AgentStateMachine", "InvalidTransition", "RetryPolicy", "TaskView"]

_S = TaskState
_LIVE = (_S.STARTING, _S.RUNNING)


class InvalidTransition(PalletError):
    """The machine tried an edge that is not in ``TRANSITIONS`` (a bug, never input)."""

    def __init__(self, task_id: str, source: TaskState, target: TaskState) -> None:
        super().__init__(f"task {task_id}: illegal transition {source} -> {target}")
        self.task_id = task_id
        self.source = source
        self.target = target


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long an unacknowledged status waits before it is sent again: ``initial``
    seconds, doubling up to ``maximum`` (Mesos' status update manager does the same)."""

    initial: float = 2.0
    maximum: float = 60.0


@dataclass(frozen=True, slots=True)
class TaskView:
    """A read-only picture of one task record."""

    spec: TaskSpec
    state: TaskState
    seq: int
    unacked: tuple[int, ...]
    desired: bool


@dataclass(slots=True)
class _Pending:
    update: SendStatus
    due: float
    interval: float


@dataclass(slots=True)
class _Task:
    spec: TaskSpec
    state: TaskState = _S.STAGING
    seq: int = 0
    desired: bool = True
    pending: list[_Pending] = field(default_factory=list)
    kill_deadline: float | None = None
    force_killed: bool = False
    killed_during_launch: bool = False
    last: SendStatus | None = None


_Action = Callable[[_Task], list[Instruction]]


class AgentStateMachine:
    """Desired tasks and process events in, instructions out. Not thread-safe: one
    shell owns it."""

    def __init__(
        self,
        *,
        now: float = 0.0,
        retry: RetryPolicy = RetryPolicy(),
        graveyard_size: int = 10_000,
    ) -> None:
        self._now = now
        self._retry = retry
        self._tasks: dict[str, _Task] = {}
        self._graveyard: OrderedDict[str, SendStatus] = OrderedDict()
        self._graveyard_size = graveyard_size
        # dask's transition table: one action per legal (from, to) edge.
        self._actions: dict[tuple[TaskState, TaskState], _Action] = {
            (_S.STAGING, _S.STARTING): self._launch,
            (_S.STARTING, _S.RUNNING): _nothing,
            (_S.STARTING, _S.KILLING): self._kill_during_launch,
            (_S.RUNNING, _S.KILLING): self._kill,
            **{(_S.STARTING, end): _nothing for end in (_S.FINISHED, _S.FAILED, _S.GONE)},
            **{(_S.RUNNING, end): _nothing for end in (_S.FINISHED, _S.FAILED, _S.GONE)},
            (_S.KILLING, _S.KILLED): self._settle_kill,
        }
        assert set(self._actions) == TRANSITIONS, "every legal edge needs exactly one action"
        self._handlers: dict[type, Callable[[Any], list[Instruction]]] = {
            DesiredTasks: self._on_desired,
            TaskStarted: self._on_started,
            TaskLaunchFailed: self._on_launch_failed,
            TaskExited: self._on_exited,
            TaskVanished: self._on_vanished,
            TaskRecovered: self._on_recovered,
            KillTimeout: self._on_kill_timeout,
            HealthChanged: self._on_health,
            ReadinessChanged: self._on_readiness,
            StatusAcked: self._on_acked,
            Tick: self._on_tick,
        }

    # ------------------------------------------------------------ public

    def handle(self, *events: Event) -> list[Instruction]:
        """Apply ``events`` in order; return the instructions for the shell, in order."""
        out: list[Instruction] = []
        for event in events:
            handler = self._handlers.get(type(event))
            if handler is None:
                raise TypeError(f"not an agent event: {event!r}")
            out.extend(handler(event))
        return out

    @property
    def now(self) -> float:
        """The latest ``Tick.now`` seen."""
        return self._now

    def task(self, task_id: str) -> TaskView | None:
        t = self._tasks.get(task_id)
        return None if t is None else _view(t)

    def tasks(self) -> dict[str, TaskView]:
        return {tid: _view(t) for tid, t in self._tasks.items()}

    def last_status(self, task_id: str) -> SendStatus | None:
        """The latest status of a task, remembered or forgotten (None if never seen)."""
        t = self._tasks.get(task_id)
        return t.last if t is not None else self._graveyard.get(task_id)

    def pending(self, task_id: str) -> list[SendStatus]:
        """The statuses of ``task_id`` not acknowledged yet, by seq."""
        t = self._tasks.get(task_id)
        return [] if t is None else [p.update for p in t.pending]

    def unacknowledged(self) -> list[SendStatus]:
        """Every status not acknowledged yet, by task id and seq."""
        return [p.update for tid in sorted(self._tasks) for p in self._tasks[tid].pending]

    def next_wakeup(self) -> float | None:
        """When the next Tick has work to do (a resend or a kill deadline), if ever."""
        times = [p.due for t in self._tasks.values() for p in t.pending]
        times += [d for t in self._tasks.values() if (d := _kill_deadline(t)) is not None]
        return min(times, default=None)

    # ------------------------------------------------------------ transitions

    def _transition(
        self,
        task: _Task,
        target: TaskState,
        *,
        reason: Reason | None = None,
        message: str = "",
        exit_code: int | None = None,
        signal: int | None = None,
        ip_addresses: tuple[str, ...] | None = None,
    ) -> list[Instruction]:
        action = self._actions.get((task.state, target))
        if action is None:
            raise InvalidTransition(task.spec.task_id, task.state, target)
        task.state = target
        task.seq += 1
        update = SendStatus(
            task.spec.task_id,
            target,
            task.seq,
            reason,
            message,
            exit_code,
            signal,
            ip_addresses=ip_addresses,
        )
        return [self._send(task, update), *action(task)]

    def _send(self, task: _Task, update: SendStatus) -> SendStatus:
        task.last = update
        # An unacknowledged STARTING says nothing the new status does not (the master
        # keeps the newest state, and acknowledging the new one covers it): it is not
        # sent again. A batch of launches held its STARTINGs back, and they were resent
        # on their own as the batch ended, after the RUNNING that superseded them.
        pending = [p for p in task.pending if p.update.state is not TaskState.STARTING]
        pending.append(_Pending(update, self._now + self._retry.initial, self._retry.initial))
        task.pending = pending
        return update

    def _launch(self, task: _Task) -> list[Instruction]:
        return [Launch(task.spec)]

    def _kill_during_launch(self, task: _Task) -> list[Instruction]:
        task.killed_during_launch = True
        return self._kill(task)

    def _kill(self, task: _Task) -> list[Instruction]:
        task.kill_deadline = self._now + task.spec.kill_grace_seconds
        return [Kill(task.spec.task_id, task.spec.kill_grace_seconds)]

    def _settle_kill(self, task: _Task) -> list[Instruction]:
        task.kill_deadline = None
        return []

    def _force(self, task: _Task) -> list[Instruction]:
        task.force_killed = True
        return [ForceKill(task.spec.task_id)]

    # ------------------------------------------------------------ events

    def _on_desired(self, event: DesiredTasks) -> list[Instruction]:
        wanted = {spec.task_id: spec for spec in event.tasks}
        out: list[Instruction] = []
        for tid, task in list(self._tasks.items()):
            task.desired = tid in wanted
            if not task.desired:
                if task.state in _LIVE:
                    out += self._transition(task, _S.KILLING)
                self._maybe_forget(task)
        for tid in sorted(wanted):
            if tid in self._tasks:
                continue
            buried = self._graveyard.pop(tid, None)
            if buried is not None:
                out.append(self._revive(wanted[tid], buried))
            else:
                task = self._tasks[tid] = _Task(wanted[tid])
                out += self._transition(task, _S.STARTING)
        return out

    def _revive(self, spec: TaskSpec, last: SendStatus) -> SendStatus:
        """A forgotten task is listed again: report its end again, never relaunch it."""
        task = self._tasks[spec.task_id] = _Task(spec, last.state, last.seq, last=last)
        task.pending.append(_Pending(last, self._now + self._retry.initial, self._retry.initial))
        return last

    def _on_recovered(self, event: TaskRecovered) -> list[Instruction]:
        """Take back a task from a checkpoint: same state and seq (the master ignores a
        seq it has stored), its unacknowledged updates sent again, a kill resumed."""
        tid = event.spec.task_id
        if tid in self._tasks:
            return []
        self._graveyard.pop(tid, None)
        last = event.unacked[-1] if event.unacked else SendStatus(tid, event.state, event.seq)
        task = self._tasks[tid] = _Task(event.spec, event.state, event.seq, last=last)
        due = self._now + self._retry.initial
        task.pending = [_Pending(u, due, self._retry.initial) for u in event.unacked]
        out: list[Instruction] = list(event.unacked)
        if task.state is _S.KILLING:
            out += self._kill(task)
        return out

    def _on_started(self, event: TaskStarted) -> list[Instruction]:
        task = self._tasks.get(event.task_id)
        if task is None or task.state is not _S.STARTING:
            return []
        return self._transition(task, _S.RUNNING, ip_addresses=event.ip_addresses or None)

    def _on_launch_failed(self, event: TaskLaunchFailed) -> list[Instruction]:
        task = self._tasks.get(event.task_id)
        if task is None:
            return []
        if task.state is _S.STARTING:
            return self._transition(
                task, _S.FAILED, reason=Reason.CONTAINER_LAUNCH_FAILED, message=event.message
            )
        if task.state is _S.KILLING:
            return self._transition(
                task, _S.KILLED, reason=Reason.TASK_KILLED_DURING_LAUNCH, message=event.message
            )
        return []

    def _on_exited(self, event: TaskExited) -> list[Instruction]:
        task = self._tasks.get(event.task_id)
        if task is None:
            return []
        reason: Reason | None
        if task.state is _S.KILLING:
            target = _S.KILLED
            reason = Reason.TASK_KILLED_DURING_LAUNCH if task.killed_during_launch else None
        elif task.state not in _LIVE:
            return []
        elif event.oom:
            target, reason = _S.FAILED, Reason.CONTAINER_LIMITATION_MEMORY
        elif event.limitation is not None:
            target, reason = _S.FAILED, event.limitation
        elif event.exit_code == 0:
            target, reason = _S.FINISHED, None
        else:
            target, reason = _S.FAILED, Reason.COMMAND_EXECUTOR_FAILED
        return self._transition(
            task,
            target,
            reason=reason,
            message=event.message,
            exit_code=event.exit_code,
            signal=event.signal,
        )

    def _on_vanished(self, event: TaskVanished) -> list[Instruction]:
        task = self._tasks.get(event.task_id)
        if task is None:
            return []
        if task.state is _S.KILLING:
            return self._transition(task, _S.KILLED, message=event.message)
        if task.state in _LIVE:
            return self._transition(
                task, _S.GONE, reason=Reason.EXECUTOR_TERMINATED, message=event.message
            )
        return []

    def _on_kill_timeout(self, event: KillTimeout) -> list[Instruction]:
        task = self._tasks.get(event.task_id)
        if task is None or task.state is not _S.KILLING or task.force_killed:
            return []
        return self._force(task)

    def _on_health(self, event: HealthChanged) -> list[Instruction]:
        """Health is news only about a running task; it is not a state change, but it
        takes the next seq so it travels (and is retried) like one."""
        task = self._tasks.get(event.task_id)
        if task is None or task.state is not _S.RUNNING:
            return []
        task.seq += 1
        failing = [r.last_failure_cause for r in event.health if r.alive is False]
        update = SendStatus(
            task.spec.task_id,
            _S.RUNNING,
            task.seq,
            message=next((c for c in failing if c), ""),
            healthy=event.healthy,
            health=event.health,
        )
        return [self._send(task, update)]

    def _on_readiness(self, event: ReadinessChanged) -> list[Instruction]:
        """Readiness, like health, is news about a running task with a seq of its own."""
        task = self._tasks.get(event.task_id)
        if task is None or task.state is not _S.RUNNING:
            return []
        task.seq += 1
        update = SendStatus(task.spec.task_id, _S.RUNNING, task.seq, readiness=event.readiness)
        return [self._send(task, update)]

    def _on_acked(self, event: StatusAcked) -> list[Instruction]:
        task = self._tasks.get(event.task_id)
        if task is not None:
            task.pending = [p for p in task.pending if p.update.seq > event.seq]
            self._maybe_forget(task)
        return []

    def _on_tick(self, event: Tick) -> list[Instruction]:
        self._now = max(self._now, event.now)
        if not event.deadlines:
            return []
        out: list[Instruction] = []
        for task in list(self._tasks.values()):
            for pending in task.pending:
                if pending.due <= self._now:
                    out.append(pending.update)
                    pending.interval = min(pending.interval * 2, self._retry.maximum)
                    pending.due = self._now + pending.interval
            deadline = _kill_deadline(task)
            if deadline is not None and deadline <= self._now:
                out += self._force(task)
        return out

    # ------------------------------------------------------------ bookkeeping

    def _maybe_forget(self, task: _Task) -> None:
        if task.desired or task.pending or not task.state.is_terminal:
            return
        tid = task.spec.task_id
        del self._tasks[tid]
        assert task.last is not None, "a terminal task has reported at least once"
        self._graveyard[tid] = task.last
        while len(self._graveyard) > self._graveyard_size:
            self._graveyard.popitem(last=False)


def _kill_deadline(task: _Task) -> float | None:
    """When SIGKILL is due for ``task``; None if it is not waiting on a grace period."""
    if task.state is _S.KILLING and not task.force_killed:
        return task.kill_deadline
    return None


def _nothing(task: _Task) -> list[Instruction]:
    return []


def _view(task: _Task) -> TaskView:
    return TaskView(
        task.spec, task.state, task.seq, tuple(p.update.seq for p in task.pending), task.desired
    )
