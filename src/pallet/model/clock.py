"""A clock that moves only when told to (pure): what the pure core, the simulator, the
invariants bench and the tests pass where the live master passes ``time.time`` or
``time.monotonic``.
"""

from __future__ import annotations

__all__ = ["FakeClock"]


class FakeClock:
    """Seconds that move only by ``advance`` or ``sleep``; calling it reads the time.

    ``sleep`` also records each wait in ``sleeps`` (for code that is handed a ``sleep``
    function, as the CLI's waits and the client's watches are)."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
