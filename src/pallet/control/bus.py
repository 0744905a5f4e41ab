"""The in-memory event bus: control and the API publish, event-stream clients subscribe; asyncio.

Events are plain dataclasses; the API renders them in Marathon's shapes. A subscriber
that falls more than ``limit`` events behind is dropped (its stream ends) rather than
let the master's memory grow.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pallet.control.records import AppRecord, DeploymentRecord, TaskRecord, TaskState

__all__ = [
    "AppTerminated",
    "DeploymentChanged",
    "EventBus",
    "HealthChanged",
    "HealthCheckFailed",
    "ReadinessChanged",
    "Subscription",
    "TaskChanged",
    "UnhealthyKilled",
]


@dataclass(frozen=True, slots=True)
class TaskChanged:
    """A task changed state (``status_update_event``)."""

    task: TaskRecord
    previous: TaskState | None
    timestamp: float


@dataclass(frozen=True, slots=True)
class HealthChanged:
    """A task's health verdict changed (``health_status_changed_event``)."""

    task: TaskRecord
    alive: bool
    timestamp: float


@dataclass(frozen=True, slots=True)
class HealthCheckFailed:
    """Health check ``index`` of a task failed once more (``failed_health_check_event``)."""

    task: TaskRecord
    index: int
    timestamp: float


@dataclass(frozen=True, slots=True)
class UnhealthyKilled:
    """A task reached ``maxConsecutiveFailures`` of check ``index`` and is being killed
    (``unhealthy_instance_kill_event``)."""

    task: TaskRecord
    index: int
    timestamp: float


@dataclass(frozen=True, slots=True)
class ReadinessChanged:
    """Readiness check ``index`` of a task answered differently (``readiness_check_result``)."""

    task: TaskRecord
    index: int
    timestamp: float


@dataclass(frozen=True, slots=True)
class DeploymentChanged:
    """``kind``: ``info`` (started or moved to a step), ``step_success``, ``success``, ``failed``."""

    kind: str
    deployment: DeploymentRecord
    timestamp: float
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class AppTerminated:
    app_id: str
    timestamp: float
    record: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """The app's record as stored (``AppRecord.to_json``), read only when asked for."""

    @classmethod
    def of(cls, record: Mapping[str, Any], timestamp: float) -> AppTerminated:
        return cls(str(record["id"]), timestamp, record)

    @property
    def app(self) -> AppRecord:
        """The app as it was (read from its record now: each of the third of the writes
        that deletes an app ends with this event, and no listener but the event stream
        reads more than the id)."""
        return AppRecord.from_json(dict(self.record))


_CLOSED = object()


class Subscription:
    """One subscriber's queue; iterate it to receive events until it is closed."""

    def __init__(self, bus: EventBus, limit: int) -> None:
        self._bus = bus
        self._queue: asyncio.Queue[object] = asyncio.Queue(limit)

    def offer(self, event: object) -> bool:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            return False
        return True

    def close(self) -> None:
        self._bus.unsubscribe(self)
        while True:
            try:
                self._queue.put_nowait(_CLOSED)
                return
            except asyncio.QueueFull:
                self._queue.get_nowait()

    async def get(self) -> object | None:
        """The next event, or None once the subscription is closed."""
        event = await self._queue.get()
        return None if event is _CLOSED else event

    async def __aiter__(self) -> AsyncIterator[object]:
        while True:
            event = await self.get()
            if event is None:
                return
            yield event


class EventBus:
    def __init__(self, limit: int = 10_000) -> None:
        self._subs: list[Subscription] = []
        self._limit = limit
        self._listeners: list[Callable[[object], None]] = []

    def listen(self, listener: Callable[[object], None]) -> None:
        """Call ``listener`` with every event as it is published, in the publisher's
        stack: for the master's own loops, which must never miss one (the job
        controller learns its tasks' final states this way)."""
        self._listeners.append(listener)

    def subscribe(self) -> Subscription:
        sub = Subscription(self, self._limit)
        self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def publish(self, event: object) -> None:
        for listener in self._listeners:
            listener(event)
        for sub in list(self._subs):
            if not sub.offer(event):
                sub.close()  # too slow: drop it rather than buffer without bound

    def close(self) -> None:
        for sub in list(self._subs):
            sub.close()
