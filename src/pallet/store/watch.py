"""A watch that pulls a prefix's events from the store's history, revision by revision, and
sleeps until the next commit when it has caught up; does no I/O itself (the fetch does).

Pulling from the history rather than pushing into per-watcher queues keeps a slow watcher
from holding memory: it only holds its position, and learns it fell too far behind by a
``Compacted`` error.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType

from pallet.store.kv import WatchEvent

__all__ = ["Fetch", "Signal", "Watcher"]

Fetch = Callable[[str, int, int], Awaitable[tuple[list[WatchEvent], int]]]
"""``fetch(prefix, first, limit)``: the prefix's events of revisions ``first`` to at most
``first + limit - 1``, and the last revision looked at (``first - 1`` when there is none yet).
Raises ``Compacted`` when ``first`` is gone and ``StoreClosed`` after close."""


class Signal:
    """Wakes every watcher when a revision commits or the store closes."""

    def __init__(self) -> None:
        self._events: weakref.WeakSet[asyncio.Event] = weakref.WeakSet()

    def subscribe(self) -> asyncio.Event:
        event = asyncio.Event()
        self._events.add(event)
        return event

    def notify(self) -> None:
        for event in list(self._events):
            event.set()


class Watcher:
    """The events of keys starting with ``prefix`` from revision ``start`` on, in commit order.
    Iterate with ``async for``; stop with ``aclose()`` or ``async with``."""

    def __init__(self, fetch: Fetch, signal: Signal, prefix: str, start: int, batch: int = 256):
        self.prefix = prefix
        self._fetch = fetch
        self._wake = signal.subscribe()
        self._next = start
        self._batch = batch
        self._buffer: deque[WatchEvent] = deque()
        self._closed = False

    @property
    def next_revision(self) -> int:
        """The first revision whose events this watcher has not fetched yet."""
        return self._next

    def __aiter__(self) -> Watcher:
        return self

    async def __anext__(self) -> WatchEvent:
        while not self._buffer:
            if self._closed:
                raise StopAsyncIteration
            self._wake.clear()  # before fetching, so a commit during the fetch wakes us
            first = self._next
            events, last = await self._fetch(self.prefix, first, self._batch)
            if self._closed:
                raise StopAsyncIteration
            self._buffer.extend(events)
            if last >= first:
                self._next = last + 1
            else:
                await self._wake.wait()
        return self._buffer.popleft()

    async def aclose(self) -> None:
        """Stop: a pending or later ``__anext__`` ends the iteration."""
        self._closed = True
        self._buffer.clear()
        self._wake.set()

    async def __aenter__(self) -> Watcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
