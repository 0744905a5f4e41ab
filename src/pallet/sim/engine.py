"""A small discrete-event engine with a virtual clock; pure (no wall clock, no I/O).

Events wait in a heap keyed ``(time, priority, seq)``: earlier times first; at equal
times the lower ``priority`` first (e.g. departures before arrivals, so capacity freed
at ``t`` is usable at ``t``); then in the order they were scheduled (``seq``), so runs
are deterministic. The clock only moves forward, to the time of the event being handled.

    engine = Engine(start=0)
    engine.at(5, "ping")
    engine.run(lambda eng, event: print(eng.now, event))
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Engine"]

E = TypeVar("E")


class Engine(Generic[E]):
    """A virtual clock and a queue of future events of type ``E``."""

    def __init__(self, start: float = 0) -> None:
        self.now: float = start
        self._heap: list[tuple[float, int, int, E]] = []
        self._seq = 0
        self.handled = 0

    def __len__(self) -> int:
        return len(self._heap)

    def at(self, time: float, event: E, priority: int = 0) -> None:
        """Schedule ``event`` at absolute ``time`` (not before now)."""
        if time < self.now:
            raise ValueError(f"cannot schedule at {time}: the clock is already at {self.now}")
        heapq.heappush(self._heap, (time, priority, self._seq, event))
        self._seq += 1

    def after(self, delay: float, event: E, priority: int = 0) -> None:
        """Schedule ``event`` ``delay`` time units from now."""
        self.at(self.now + delay, event, priority)

    def peek_time(self) -> float | None:
        """Time of the next event, or None when the queue is empty."""
        return self._heap[0][0] if self._heap else None

    def pop(self) -> tuple[float, E]:
        """Advance the clock to the next event and return ``(time, event)``."""
        time, _, _, event = heapq.heappop(self._heap)
        self.now = time
        self.handled += 1
        return time, event

    def run(self, handle: Callable[[Engine[E], E], None], until: float | None = None) -> None:
        """Handle events in order until the queue is empty or the next event is after
        ``until`` (then the clock stops at ``until``). ``handle`` may schedule more."""
        while self._heap:
            if until is not None and self._heap[0][0] > until:
                self.now = max(self.now, until)
                return
            _, event = self.pop()
            handle(self, event)
        if until is not None:
            self.now = max(self.now, until)
