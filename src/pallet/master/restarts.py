"""When ``pallet up`` starts a process of its cluster again after it exited: at once the
first time, then after a delay that doubles with each exit that follows soon after
(capped), as a service manager backs off a crash-looping unit; pure (time is an argument).

A process that crash-loops is never a reason to stop the others: the master and the
healthy agents keep running, and so do the tasks of every agent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["FIRST_DELAY", "MAX_DELAY", "STABLE_AFTER", "RestartPolicy"]

FIRST_DELAY = 1.0
"""Seconds before the second start of a process that keeps exiting."""
MAX_DELAY = 30.0
"""The longest wait between two starts."""
STABLE_AFTER = 60.0
"""A process that ran this long before it exited starts over at once (its earlier
exits are forgiven)."""


@dataclass
class RestartPolicy:
    """One process's exits and when it may start again."""

    started_at: float
    exits: int = 0
    """Exits in a row, each within ``STABLE_AFTER`` of its start."""
    next_start: float | None = None
    """When it is due to start again; None while it runs."""
    history: list[float] = field(default_factory=list)
    """When it exited (the last minute's worth)."""
    total: int = 0
    """Every exit since ``up`` started it first."""

    def exited(self, now: float) -> float:
        """Note an exit at ``now``; the delay before the next start."""
        self.exits = 1 if now - self.started_at >= STABLE_AFTER else self.exits + 1
        self.history = [t for t in self.history if now - t < 60.0] + [now]
        self.total += 1
        delay = 0.0 if self.exits == 1 else min(MAX_DELAY, FIRST_DELAY * 2 ** (self.exits - 2))
        self.next_start = now + delay
        return delay

    def due(self, now: float) -> bool:
        return self.next_start is not None and now >= self.next_start

    def started(self, now: float) -> None:
        self.started_at = now
        self.next_start = None

    @property
    def backing_off(self) -> bool:
        return self.next_start is not None
