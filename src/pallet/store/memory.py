"""The in-memory backend, for tests and the simulator: dicts and a sorted key list; no I/O."""

from __future__ import annotations

import bisect
import time
from collections.abc import Sequence

from pallet.store.budget import HistoryBudget, record_bytes
from pallet.store.embedded import DEFAULT_HISTORY, Clock, EmbeddedStore, InlineRunner
from pallet.store.kv import EventType, KeyValue, WatchEvent
from pallet.store.protocol import Store

__all__ = ["open_memory"]

_TRIM_AT = 256
"""Dropped history is freed in runs of at least this many revisions (or half the log)."""


async def open_memory(
    *,
    clock: Clock = time.monotonic,
    history: int = DEFAULT_HISTORY,
    expiry_interval: float | None = None,
    budget: HistoryBudget | None = None,
) -> Store:
    """A new, empty store that lives as long as the process."""
    store = EmbeddedStore(
        "memory://",
        _MemoryBackend(),
        InlineRunner(),
        clock=clock,
        history=history,
        budget=budget,
    )
    await store.start(expiry_interval)
    return store


class _MemoryBackend:
    """Keys in a dict plus a sorted list for prefix scans; history as one tuple of events per
    revision, the first at revision ``_log_base``."""

    def __init__(self) -> None:
        self.revision = 1
        self.compacted = 0
        self._kvs: dict[str, KeyValue] = {}
        self._sorted: list[str] = []
        self._log: list[tuple[WatchEvent, ...]] = []
        self._log_base = self.revision + 1
        self._leases: dict[int, int] = {}
        self._lease_keys: dict[int, set[str]] = {}
        self._last_lease = 0

    def get(self, key: str) -> KeyValue | None:
        return self._kvs.get(key)

    def scan(self, prefix: str) -> list[KeyValue]:
        found: list[KeyValue] = []
        for i in range(bisect.bisect_left(self._sorted, prefix), len(self._sorted)):
            key = self._sorted[i]
            if not key.startswith(prefix):
                break
            found.append(self._kvs[key])
        return found

    def lease_exists(self, lease: int) -> bool:
        return lease in self._leases

    def lease_keys(self, lease: int) -> list[str]:
        return sorted(self._lease_keys.get(lease, ()))

    def leases(self) -> list[tuple[int, int]]:
        return sorted(self._leases.items())

    def commit(
        self, revision: int, events: Sequence[WatchEvent], compacted: int, revoked: int = 0
    ) -> None:
        if events:
            assert revision == self.revision + 1, "revisions are committed in order"
            for event in events:
                self._apply(event)
            self._log.append(tuple(events))
            self.revision = revision
        if revoked:
            del self._leases[revoked]
            self._lease_keys.pop(revoked, None)
        self.compact(compacted)

    def events(self, prefix: str, first: int, last: int) -> list[WatchEvent]:
        found: list[WatchEvent] = []
        for revision in range(max(first, self._log_base), last + 1):
            found.extend(
                e for e in self._log[revision - self._log_base] if e.kv.key.startswith(prefix)
            )
        return found

    def history_sizes(self) -> list[tuple[int, int]]:
        first = max(self.compacted, self._log_base)
        return [
            (revision, sum(record_bytes(e.kv) for e in self._log[revision - self._log_base]))
            for revision in range(first, self.revision + 1)
        ]

    def live_bytes(self) -> int:
        return sum(record_bytes(kv) for kv in self._kvs.values())

    def compact(self, revision: int) -> None:
        self.compacted = max(self.compacted, revision)
        drop = self.compacted - self._log_base
        if drop > 0 and (drop >= _TRIM_AT or 2 * drop >= len(self._log)):
            del self._log[:drop]
            self._log_base += drop

    def grant(self, ttl: int) -> int:
        self._last_lease += 1
        self._leases[self._last_lease] = ttl
        return self._last_lease

    def close(self) -> None:
        self._kvs.clear()
        self._sorted.clear()
        self._log.clear()

    def _apply(self, event: WatchEvent) -> None:
        key, prev = event.kv.key, event.prev_kv
        if prev is not None and prev.lease:
            self._detach(prev.lease, key)
        if event.type is EventType.PUT:
            if prev is None:
                bisect.insort(self._sorted, key)
            self._kvs[key] = event.kv
            if event.kv.lease:
                self._lease_keys.setdefault(event.kv.lease, set()).add(key)
        else:
            del self._kvs[key]
            del self._sorted[bisect.bisect_left(self._sorted, key)]

    def _detach(self, lease: int, key: str) -> None:
        keys = self._lease_keys.get(lease)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._lease_keys[lease]
