"""The agent's task runtime: the pure state machine driven over a real executor; does I/O.

The agent's HTTP loop, which talks to the master, needs only this class::

    runtime = TaskRuntime(Executor(sandbox_root, agent_id=node.id))
    send(runtime.set_desired(specs))          # on every desired set from the master
    send(runtime.acknowledge(task_id, seq))   # on every acknowledgement
    while running:
        send(runtime.step(timeout=1.0))       # exits, kill deadlines, resends

where ``send`` posts each ``SendStatus`` to the master. Every method returns the
statuses to send now; an unacknowledged status comes back out of ``step`` until the
master acknowledges it. Methods may be called from several threads (an asyncio loop
calls them through ``asyncio.to_thread``); ``step`` blocks without holding the lock.

With a ``CheckpointStore``, every launched task is checkpointed when its state changes
(after the launches of a batch, so that forks are not held up by disk writes) and the
checkpoint removed once its final status is acknowledged; ``recover`` on start takes
back the tasks an earlier run of the agent left (``pallet.agent.recovery`` decides).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from pallet.agent.checkpoint import CheckpointStore
from pallet.agent.events import (
    DesiredTasks,
    Event,
    ForceKill,
    Instruction,
    Kill,
    Launch,
    SendStatus,
    StatusAcked,
    TaskExited,
    TaskLaunchFailed,
    TaskRecovered,
    TaskStarted,
    TaskVanished,
    Tick,
)
from pallet.agent.executor import Executor, LaunchError, ProcessIdentity, TaskExit
from pallet.agent.isolation import Sample, Usage
from pallet.agent.logs import LogChunk, LogStream, afollow_log, follow_log, read_log
from pallet.agent.preparing import Launched
from pallet.agent.procfs import read_boot_id, read_start_time
from pallet.agent.recovery import Checkpoint, ProcessFacts, RecoveryPlan, plan_recovery
from pallet.agent.state import AgentStateMachine, RetryPolicy, TaskView
from pallet.agent.status import Reason, TaskState
from pallet.model import TaskSpec

__all__ = ["RecoveryReport", "TaskRuntime", "exit_event", "superseded_startings_dropped"]

log = logging.getLogger(__name__)


PUBLISH_EVERY = 64
"""Launches between two early publications of statuses within one batch. Each is a
status post the agent makes and the master stores (one transaction): at 16, a batch of
120 launches made seven, and ``bench e2e``'s agents and master spent a tenth more CPU
than at 64 (four pairs: agents 1.66 / 1.48 CPU-s, master 0.54 / 0.45)."""
PUBLISH_AFTER = 1.0
"""Seconds after which a batch's statuses are published even if fewer launches came
(a slow machine): the master hears of a task within about a second, well before the
status would be due again (``RetryPolicy.initial``)."""


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What ``recover`` did: task ids adopted, reported ended, resent, killed as orphans."""

    adopted: tuple[str, ...] = ()
    lost: tuple[str, ...] = ()
    resent: tuple[str, ...] = ()
    orphans: tuple[str, ...] = ()


@dataclass(slots=True)
class _Launched:
    """What a checkpoint says about a launched task besides the machine's record."""

    identity: ProcessIdentity
    cgroups: dict[str, str]
    launched_at: float
    written_seq: int = 0


def superseded_startings_dropped(
    statuses: list[SendStatus], published: Mapping[str, int]
) -> list[SendStatus]:
    """``statuses`` without each TASK_STARTING that a later status of the same task
    (in ``statuses``, or already ``published``: task id -> highest seq) supersedes. In a
    batch of launches a task's STARTING came out after its RUNNING had been published,
    so the master got every task's STARTING late and skipped it as stale; and the
    master keeps only the newest state anyway. The acknowledgement of the later status
    covers the dropped one (an ack is of every seq up to its own). Only STARTING says
    nothing else: a RUNNING or an end is always sent."""
    latest = dict(published)
    for s in statuses:
        if s.seq > latest.get(s.task_id, 0):
            latest[s.task_id] = s.seq
    return [s for s in statuses if s.state is not TaskState.STARTING or latest[s.task_id] <= s.seq]


def exit_event(end: TaskExit) -> TaskExited | TaskVanished:
    """The state machine's event for an executor's report of an ended task."""
    if end.exit_code is None and end.signal is None and not end.oom:
        return TaskVanished(end.task_id, end.message)
    limitation = _LIMITATIONS.get(end.limitation) if end.limitation else None
    return TaskExited(end.task_id, end.exit_code, end.signal, end.oom, end.message, limitation)


_LIMITATIONS = {"disk": Reason.CONTAINER_LIMITATION_DISK}


class TaskRuntime:
    """Carries out the state machine's instructions with an ``Executor``."""

    def __init__(
        self,
        executor: Executor,
        *,
        clock: Callable[[], float] = time.monotonic,
        retry: RetryPolicy = RetryPolicy(),
        checkpoints: CheckpointStore | None = None,
    ) -> None:
        self.executor = executor
        self.checkpoints = checkpoints
        self._clock = clock
        self._machine = AgentStateMachine(now=clock(), retry=retry)
        self._lock = threading.RLock()
        self._acks: list[StatusAcked] = []
        """The master's acknowledgements not fed yet (under ``_acks_lock``, not ``_lock``):
        a batch of launches holds ``_lock`` for seconds while the master acknowledges its
        early statuses, and whichever ``handle`` comes next feeds them before its Tick."""
        self._acks_lock = threading.Lock()
        self._boot_id = read_boot_id()
        self._launched: dict[str, _Launched] = {}
        self.publish: Callable[[list[SendStatus]], None] | None = None
        """Where statuses go before ``handle`` returns, in long batches (thread-safe)."""
        self._checked: dict[str, TaskSpec] = {}
        """Running tasks with health or readiness checks; replaced, never changed in
        place, so that ``health_checked`` reads it without the lock."""
        self.recovery = RecoveryReport()
        self._published_at = 0.0
        """When the batch being handled began or last published its statuses early."""

    # ------------------------------------------------------------ recovery

    def recover(self) -> list[SendStatus]:
        """Take back the tasks an earlier run of this agent checkpointed (their processes
        adopted, or their ends reported), kill the task cgroups nobody checkpointed,
        and return the statuses to send. Call once, before the first desired set."""
        if self.checkpoints is None:
            self.executor.sweep_orphans()
            return []
        found = self.checkpoints.load()
        isolator = self.executor.isolator
        facts = ProcessFacts(
            boot_id=self._boot_id,
            start_times={
                cp.pid: started for cp in found if (started := read_start_time(cp.pid)) is not None
            },
            cgroups=isolator.leftovers(),
            oom_kills={cp.task_id: isolator.oom_kills(cp.task_id) for cp in found},
        )
        plan = plan_recovery(found, facts)
        events, adopted, lost = self._carry_out_recovery(plan)
        orphans = self.executor.sweep_orphans(keep=frozenset(adopted))
        self.recovery = RecoveryReport(
            tuple(adopted),
            tuple(lost),
            tuple(r.checkpoint.task_id for r in plan.resend),
            tuple(orphans),
        )
        if found or orphans:
            log.warning(
                "recovered from an earlier run: adopted %d tasks, %d ended while the agent "
                "was down, %d final updates to resend, %d orphans killed",
                len(self.recovery.adopted),
                len(self.recovery.lost),
                len(self.recovery.resent),
                len(self.recovery.orphans),
            )
        statuses = self.handle(*events)
        with self._lock:  # adopted tasks may send nothing: look at them all once
            self._note_checked(list(self._machine.tasks()))
        return statuses

    def _carry_out_recovery(self, plan: RecoveryPlan) -> tuple[list[Event], list[str], list[str]]:
        events: list[Event] = []
        adopted: list[str] = []
        lost: list[str] = []

        def recovered(cp: Checkpoint, alive: bool = False) -> None:
            if not alive:
                self.executor.destroy_cgroups(cp.task_id)  # what is left of its processes
            self._launched[cp.task_id] = _Launched(
                ProcessIdentity(cp.pid, cp.start_time), dict(cp.cgroups), cp.launched_at, cp.seq
            )
            events.append(TaskRecovered(cp.spec, cp.state, cp.seq, cp.unacked))

        for a in plan.adopt:
            cp = a.checkpoint
            if self.executor.adopt(cp.spec, ProcessIdentity(cp.pid, cp.start_time)):
                recovered(cp, alive=True)
                events.append(TaskStarted(cp.task_id, cp.pid))  # a STARTING task runs
                adopted.append(cp.task_id)
            else:  # ended between the look at /proc and now
                recovered(cp)
                events.append(TaskVanished(cp.task_id, f"pid {cp.pid} ended during recovery"))
                lost.append(cp.task_id)
        for gone in plan.lost:
            cp = gone.checkpoint
            recovered(cp)
            if gone.oom:
                message = (
                    f"Memory limit exceeded: the kernel OOM-killed the task (limit "
                    f"{cp.spec.mem_mib} MiB) while the agent was down"
                )
                events.append(TaskExited(cp.task_id, None, None, True, message))
            else:
                events.append(TaskVanished(cp.task_id, gone.message))
            lost.append(cp.task_id)
        for r in plan.resend:
            recovered(r.checkpoint)
        return events, adopted, lost

    # ------------------------------------------------------------ the master's side

    def set_desired(self, specs: Iterable[TaskSpec]) -> list[SendStatus]:
        """The master's complete desired set for this node: launch and kill to match."""
        return self.handle(DesiredTasks(specs))

    def acknowledge(self, task_id: str, seq: int) -> list[SendStatus]:
        """The master stored the statuses of ``task_id`` up to ``seq``."""
        return self.acknowledge_all([(task_id, seq)])

    def acknowledge_all(self, acks: Iterable[tuple[str, int]]) -> list[SendStatus]:
        """``acknowledge`` of each ``(task id, seq)`` of one answer of the master, at once.
        Queued first, without waiting for the runtime's lock: another thread's
        ``handle`` (a batch of launches' early publication, a step) may feed them."""
        with self._acks_lock:
            self._acks += (StatusAcked(task_id, seq) for task_id, seq in acks)
        return self.handle()

    def _take_acks(self) -> list[StatusAcked]:
        with self._acks_lock:
            taken, self._acks = self._acks, []
        return taken

    def step(self, timeout: float = 1.0) -> list[SendStatus]:
        """Wait up to ``timeout`` seconds for a task to end, a prepared launch to start
        or fail, or a deadline (SIGKILL after a grace period, a status resend) to come;
        handle what happened."""
        with self._lock:
            wake = self._machine.next_wakeup()
        if wake is not None:
            timeout = max(0.0, min(timeout, wake - self._clock()))
        ended = self.executor.wait(timeout)
        events: list[Event] = []
        with self._lock:
            for outcome in self.executor.take_launches():
                if isinstance(outcome, Launched):
                    events.append(self._started(outcome.task_id, outcome.pid))
                else:
                    events.append(TaskLaunchFailed(outcome.task_id, outcome.message))
        return self.handle(*events, *(exit_event(end) for end in ended))

    def handle(self, *events: Event) -> list[SendStatus]:
        """Feed ``events`` (after the queued acknowledgements and a Tick of the clock)
        and carry out what follows. Acknowledgements go before the Tick: one that came
        after its status's resend was due (the master answered slowly, or a batch held
        the lock) must not make that very status go out again."""
        with self._lock:
            statuses: list[SendStatus] = []
            published: dict[str, int] = {}
            acks = self._take_acks()
            acks += (e for e in events if isinstance(e, StatusAcked))
            rest = [e for e in events if not isinstance(e, StatusAcked)]
            acked = [a.task_id for a in acks]
            now = self._clock()
            self._published_at = now
            self._run([*acks, Tick(now), *rest], statuses, published)
            if self.checkpoints is not None:
                self._checkpoint({s.task_id for s in statuses}.union(acked))
            self._note_checked(s.task_id for s in statuses)
            return superseded_startings_dropped(statuses, published)

    def _run(
        self, queue: list[Event], statuses: list[SendStatus], published: dict[str, int]
    ) -> None:
        """Feed the machine until nothing follows. With ``publish`` set, every
        ``PUBLISH_EVERY`` launches (or ``PUBLISH_AFTER`` seconds) the events so far are
        fed at once and their statuses published (checkpointed first), so the master
        hears of a batch's first tasks while the agent still launches the rest;
        ``published`` gets the highest seq
        published so of each task. Each such round first feeds the acknowledgements
        queued meanwhile and the clock (a Tick that carries out no deadline): a status's
        resend is due ``RetryPolicy.initial`` after it was made, not after the batch
        began (with the batch's first Tick, the statuses of a batch longer than that
        were all due again as it ended)."""
        while queue:
            instructions = self._machine.handle(*queue)
            queue = []
            for instruction in instructions:
                if isinstance(instruction, SendStatus):
                    statuses.append(instruction)
                    continue
                queue += self._carry_out(instruction)
                if self.publish is not None and queue and self._publish_due(len(queue)):
                    early: list[SendStatus] = []
                    acks = self._take_acks()
                    now = Tick(self._published_at, deadlines=False)
                    self._run([*acks, now, *queue], early, published)
                    queue = []
                    if self.checkpoints is not None:
                        self._checkpoint({s.task_id for s in early}.union(a.task_id for a in acks))
                    self._note_checked(s.task_id for s in early)
                    for s in early:
                        published[s.task_id] = max(s.seq, published.get(s.task_id, 0))
                    self.publish(superseded_startings_dropped(early, published))

    def _publish_due(self, waiting: int) -> bool:
        """Whether a batch's ``waiting`` events are published early now: every
        ``PUBLISH_EVERY`` launches, or ``PUBLISH_AFTER`` seconds after the batch began or
        last published (then ``_published_at`` is now)."""
        now = self._clock()
        if waiting >= PUBLISH_EVERY or now - self._published_at >= PUBLISH_AFTER:
            self._published_at = now
            return True
        return False

    def _note_checked(self, task_ids: Iterable[str]) -> None:
        """Keep ``_checked`` current for tasks whose state may have changed (every state
        change sends a status)."""
        checked = self._checked
        for tid in task_ids:
            view = self._machine.task(tid)
            wanted = view is not None and view.state is TaskState.RUNNING
            checks = view is not None and (view.spec.health_checks or view.spec.readiness_checks)
            if wanted and checks and view is not None:
                if tid not in checked:
                    checked = {**checked, tid: view.spec}
            elif tid in checked:
                checked = {k: v for k, v in checked.items() if k != tid}
        self._checked = checked

    def health_checked(self) -> dict[str, TaskSpec]:
        """The running tasks that have health or readiness checks, read without taking
        the lock: the agent's event loop asks often, and must not wait behind a batch of
        launches."""
        return self._checked

    def _checkpoint(self, task_ids: Iterable[str]) -> None:
        """Bring the checkpoints of ``task_ids`` up to date: written when the task's state
        changed, removed once it has ended and its final status is acknowledged; all in
        one append to the journal."""
        assert self.checkpoints is not None
        written: list[Checkpoint] = []
        removed: list[str] = []
        for tid in sorted(task_ids):
            launched = self._launched.get(tid)
            if launched is None:
                continue  # never started: there is no process to recover
            view = self._machine.task(tid)
            if view is None or (view.state.is_terminal and not view.unacked):
                removed.append(tid)
                del self._launched[tid]
            elif view.seq != launched.written_seq:
                written.append(
                    Checkpoint(
                        spec=view.spec,
                        pid=launched.identity.pid,
                        start_time=launched.identity.start_time,
                        boot_id=self._boot_id,
                        state=view.state,
                        seq=view.seq,
                        unacked=tuple(self._machine.pending(tid)),
                        cgroups=launched.cgroups,
                        launched_at=launched.launched_at,
                    )
                )
                launched.written_seq = view.seq
        if written or removed:
            self.checkpoints.update(written, removed)

    def _started(self, task_id: str, pid: int) -> TaskStarted:
        """Note a launched task's process for its checkpoints."""
        identity = self.executor.identity(task_id)
        if self.checkpoints is not None and identity is not None:
            paths = self.executor.isolator.path_names(task_id)
            self._launched[task_id] = _Launched(identity, paths, time.time())
        view = self._machine.task(task_id)
        container = view.spec.container if view is not None else None
        if container is not None and container.network == "container":
            return TaskStarted(task_id, pid, self.executor.containers.addresses(task_id))
        return TaskStarted(task_id, pid)

    def _carry_out(self, instruction: Instruction) -> list[Event]:
        match instruction:
            case Launch(spec=spec):
                if self.executor.needs_preparation(spec):
                    try:
                        self.executor.launch_later(spec)  # the outcome comes out of step()
                    except LaunchError as e:
                        return [TaskLaunchFailed(spec.task_id, str(e))]
                    return []
                try:
                    pid = self.executor.launch(spec)
                except LaunchError as e:
                    return [TaskLaunchFailed(spec.task_id, str(e))]
                return [self._started(spec.task_id, pid)]
            case Kill(task_id=task_id):
                self.executor.kill(task_id)
            case ForceKill(task_id=task_id):
                self.executor.force_kill(task_id)
        return []

    # ------------------------------------------------------------ reading

    def tasks(self) -> dict[str, TaskView]:
        with self._lock:
            return self._machine.tasks()

    def task(self, task_id: str) -> TaskView | None:
        with self._lock:
            return self._machine.task(task_id)

    def last_status(self, task_id: str) -> SendStatus | None:
        with self._lock:
            return self._machine.last_status(task_id)

    def unacknowledged(self) -> list[SendStatus]:
        """Every status the master has not acknowledged yet (to resend after a reconnect)."""
        with self._lock:
            return self._machine.unacknowledged()

    def usage(self, task_id: str) -> Usage | None:
        return self.executor.usage(task_id)

    def sample(self, task_id: str) -> Sample | None:
        """CPU seconds and resident memory of a running task, for the heartbeat."""
        return self.executor.sample(task_id)

    def read_log(
        self,
        task_id: str,
        stream: LogStream | str,
        offset: int = 0,
        length: int | None = None,
        container: str | None = None,
    ) -> LogChunk:
        """``container``: that pod container's log instead of the task's own."""
        path = self.executor.log_path(task_id, stream, container)
        return read_log(path, offset, length, beneath=self.executor.sandbox_root)

    def follow_log(
        self, task_id: str, stream: LogStream | str, offset: int = 0, poll_interval: float = 0.25
    ) -> Iterator[LogChunk]:
        """Chunks as the task writes them, until it has ended and all is read."""
        return follow_log(
            self.executor.log_path(task_id, stream),
            offset,
            done=lambda: self.executor.has_ended(task_id),
            poll_interval=poll_interval,
            beneath=self.executor.sandbox_root,
        )

    def afollow_log(
        self, task_id: str, stream: LogStream | str, offset: int = 0, poll_interval: float = 0.25
    ) -> AsyncIterator[LogChunk]:
        return afollow_log(
            self.executor.log_path(task_id, stream),
            offset,
            done=lambda: self.executor.has_ended(task_id),
            poll_interval=poll_interval,
            beneath=self.executor.sandbox_root,
        )

    def close(self, timeout: float = 10.0) -> list[SendStatus]:
        """Kill every task (SIGTERM, SIGKILL after its grace period; whatever is left
        when ``timeout`` runs out is SIGKILLed), remove the cgroups, and return the
        statuses that came of it."""
        deadline = self._clock() + timeout
        statuses = self.set_desired(())
        while self.executor.running() and self._clock() < deadline:
            statuses += self.step(deadline - self._clock())
        return statuses + self.handle(*(exit_event(end) for end in self.executor.close()))
