"""Launches that must wait for something (fetched URIs, an image): run on worker threads
so the agent goes on launching, killing and reporting meanwhile; does I/O (threads).

The executor hands over a piece of work that prepares a task and starts it, returning
its pid. Its outcome (``Launched`` or ``LaunchFailed``) is queued for the runtime, which
turns it into the state machine's ``TaskStarted`` or ``TaskLaunchFailed``. A kill while
a task is being prepared cancels it: the work sees ``cancelled()`` turn true, stops at
its next check, and the task ends as killed during launch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from pallet.model import PalletError

__all__ = ["LaunchFailed", "Launched", "Outcome", "Preparations", "Work"]

WORKERS = 8
"""Tasks prepared at once. Tasks waiting for the same download or image share it."""


@dataclass(frozen=True, slots=True)
class Launched:
    task_id: str
    pid: int


@dataclass(frozen=True, slots=True)
class LaunchFailed:
    task_id: str
    message: str


Outcome = Launched | LaunchFailed
Work = Callable[[Callable[[], bool]], int]
"""Prepares and starts one task, given a ``cancelled()`` to check; returns the pid or
raises a ``PalletError`` whose message says what failed."""


class Preparations:
    """Tasks being prepared, and the outcomes not yet taken; thread-safe."""

    def __init__(self, wakeup: Callable[[], None], workers: int = WORKERS) -> None:
        self._wakeup = wakeup
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="prepare")
        self._lock = threading.Lock()
        self._cancelled: dict[str, threading.Event] = {}
        self._outcomes: list[Outcome] = []

    def submit(self, task_id: str, work: Work) -> None:
        event = threading.Event()
        with self._lock:
            self._cancelled[task_id] = event
        self._pool.submit(self._run, task_id, work, event)

    def _run(self, task_id: str, work: Work, cancelled: threading.Event) -> None:
        outcome: Outcome
        try:
            if cancelled.is_set():
                raise PalletError("killed before it started")
            outcome = Launched(task_id, work(cancelled.is_set))
        except PalletError as e:
            outcome = LaunchFailed(task_id, str(e))
        except Exception as e:  # a bug must fail the task, not leave it preparing forever
            outcome = LaunchFailed(task_id, f"{type(e).__name__}: {e}")
        with self._lock:
            self._cancelled.pop(task_id, None)
            self._outcomes.append(outcome)
        self._wakeup()

    def cancel(self, task_id: str) -> bool:
        """Cancel ``task_id`` if it is being prepared; False if it is not."""
        with self._lock:
            event = self._cancelled.get(task_id)
        if event is None:
            return False
        event.set()
        return True

    def is_cancelled(self, task_id: str) -> bool:
        with self._lock:
            event = self._cancelled.get(task_id)
        return event is not None and event.is_set()

    def pending(self) -> set[str]:
        """Tasks being prepared, and those whose outcome is not taken yet."""
        with self._lock:
            return set(self._cancelled) | {o.task_id for o in self._outcomes}

    def has_outcomes(self) -> bool:
        with self._lock:
            return bool(self._outcomes)

    def take(self) -> list[Outcome]:
        with self._lock:
            out, self._outcomes = self._outcomes, []
        return out

    def close(self) -> None:
        """Cancel everything being prepared and wait for the workers."""
        with self._lock:
            events = list(self._cancelled.values())
        for event in events:
            event.set()
        self._pool.shutdown(wait=True, cancel_futures=False)
