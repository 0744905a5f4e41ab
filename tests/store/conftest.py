"""The backends every conformance test runs against, a fake clock, and small async helpers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest

from pallet.store import Store, WatchEvent, WatchStream, open_store

T = TypeVar("T")

WAIT = 5.0
"""Seconds a test waits for an event that must come; only reached when the store is broken."""


class FakeClock:
    """Lease time that moves only when a test says so."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Backend:
    """One backend under test: ``run`` opens its store, runs a body, closes the store."""

    name: str
    url: str
    persistent: bool
    clock: FakeClock = field(default_factory=FakeClock)

    def run(self, body: Callable[[Store], Awaitable[T]], *, history: int | None = None) -> T:
        url = self.url if history is None else f"{self.url}?history={history}"

        async def main() -> T:
            store = await open_store(url, clock=self.clock, expiry_interval=None)
            try:
                return await body(store)
            finally:
                await store.close()

        return asyncio.run(main())

    async def advance(self, seconds: float) -> None:
        """Let ``seconds`` of lease time pass."""
        self.clock.now += seconds


@pytest.fixture(params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "memory":
        yield Backend("memory", "memory://", persistent=False)
    else:
        yield Backend("sqlite", f"sqlite://{tmp_path / 'pallet.db'}", persistent=True)


async def next_event(watch: WatchStream) -> WatchEvent:
    """The watch's next event; fails the test instead of hanging when none comes."""
    return await asyncio.wait_for(anext(watch), WAIT)


async def take(watch: WatchStream, count: int) -> list[WatchEvent]:
    return [await next_event(watch) for _ in range(count)]


async def nothing_more(store: Store, watch: WatchStream, prefix: str) -> None:
    """Assert ``watch`` has no pending event: write a marker under ``prefix`` and check it
    is the very next event (no sleeping, no guessing a timeout)."""
    marker = f"{prefix}~marker"
    revision = await store.put(marker, b"")
    event = await next_event(watch)
    assert (event.kv.key, event.revision) == (marker, revision), f"unexpected {event}"
