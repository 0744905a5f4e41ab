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
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator

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
    TaskStarted,
    TaskVanished,
    Tick,
)
from pallet.agent.executor import Executor, LaunchError, TaskExit
from pallet.agent.isolation import Usage
from pallet.agent.logs import LogChunk, LogStream, afollow_log, follow_log, read_log
from pallet.agent.spec import TaskSpec
from pallet.agent.state import AgentStateMachine, RetryPolicy, TaskView

__all__ = ["TaskRuntime", "exit_event"]


def exit_event(end: TaskExit) -> TaskExited | TaskVanished:
    """The state machine's event for an executor's report of an ended task."""
    if end.exit_code is None and end.signal is None:
        return TaskVanished(end.task_id, end.message)
    return TaskExited(end.task_id, end.exit_code, end.signal, end.oom, end.message)


class TaskRuntime:
    """Carries out the state machine's instructions with an ``Executor``."""

    def __init__(
        self,
        executor: Executor,
        *,
        clock: Callable[[], float] = time.monotonic,
        retry: RetryPolicy = RetryPolicy(),
    ) -> None:
        self.executor = executor
        self._clock = clock
        self._machine = AgentStateMachine(now=clock(), retry=retry)
        self._lock = threading.RLock()

    # ------------------------------------------------------------ the master's side

    def set_desired(self, specs: Iterable[TaskSpec]) -> list[SendStatus]:
        """The master's complete desired set for this node: launch and kill to match."""
        return self.handle(DesiredTasks(specs))

    def acknowledge(self, task_id: str, seq: int) -> list[SendStatus]:
        """The master stored the statuses of ``task_id`` up to ``seq``."""
        return self.handle(StatusAcked(task_id, seq))

    def step(self, timeout: float = 1.0) -> list[SendStatus]:
        """Wait up to ``timeout`` seconds for a task to end or a deadline (SIGKILL after
        a grace period, a status resend) to come; handle what happened."""
        with self._lock:
            wake = self._machine.next_wakeup()
        if wake is not None:
            timeout = max(0.0, min(timeout, wake - self._clock()))
        ended = self.executor.wait(timeout)
        return self.handle(*(exit_event(end) for end in ended))

    def handle(self, *events: Event) -> list[SendStatus]:
        """Feed ``events`` (after a Tick of the clock) and carry out what follows."""
        with self._lock:
            statuses: list[SendStatus] = []
            queue: list[Event] = [Tick(self._clock()), *events]
            while queue:
                instructions = self._machine.handle(*queue)
                queue = []
                for instruction in instructions:
                    if isinstance(instruction, SendStatus):
                        statuses.append(instruction)
                    else:
                        queue += self._carry_out(instruction)
            return statuses

    def _carry_out(self, instruction: Instruction) -> list[Event]:
        match instruction:
            case Launch(spec=spec):
                try:
                    return [TaskStarted(spec.task_id, self.executor.launch(spec))]
                except LaunchError as e:
                    return [TaskLaunchFailed(spec.task_id, str(e))]
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

    def read_log(
        self, task_id: str, stream: LogStream | str, offset: int = 0, length: int | None = None
    ) -> LogChunk:
        return read_log(self.executor.log_path(task_id, stream), offset, length)

    def follow_log(
        self, task_id: str, stream: LogStream | str, offset: int = 0, poll_interval: float = 0.25
    ) -> Iterator[LogChunk]:
        """Chunks as the task writes them, until it has ended and all is read."""
        return follow_log(
            self.executor.log_path(task_id, stream),
            offset,
            done=lambda: self.executor.has_ended(task_id),
            poll_interval=poll_interval,
        )

    def afollow_log(
        self, task_id: str, stream: LogStream | str, offset: int = 0, poll_interval: float = 0.25
    ) -> AsyncIterator[LogChunk]:
        return afollow_log(
            self.executor.log_path(task_id, stream),
            offset,
            done=lambda: self.executor.has_ended(task_id),
            poll_interval=poll_interval,
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
