"""How much history an embedded store keeps: at most ``history`` revisions and at most a
budget of bytes, which grows with the live records (``share`` times their bytes, never
less than ``floor``); pure.

Bounding by revisions alone let the history of big records outgrow the records many times
over: 10,000 revisions of 2 KiB app and deployment records are ~20 MB whatever the number
of apps, and a store of 300 apps (~1 MB) was 15-17 times its records. etcd bounds its
file by bytes too (its backend quota); here the bound is relative so that the file is a
fixed multiple of what it holds at any size.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence

from pallet.store.kv import EventType, KeyValue, WatchEvent

__all__ = ["HISTORY_FLOOR_BYTES", "HISTORY_SHARE", "HistoryBudget", "record_bytes"]

HISTORY_SHARE = 2.0
"""History is kept up to this many times the bytes of the live records ..."""

HISTORY_FLOOR_BYTES = 1 << 20
"""... or up to this many bytes, whichever is more (a small store keeps some history)."""

_STEP = 32
"""Compaction by bytes drops 1/32 of the budget beyond what it must (see ``oldest_kept``)."""


def record_bytes(kv: KeyValue) -> int:
    """What a record weighs: its key's and its value's bytes (a tombstone: its key)."""
    return len(kv.key.encode()) + len(kv.value)


class HistoryBudget:
    """The bytes of each kept revision's events and of the live records, and so the oldest
    revision the byte budget lets the history keep."""

    def __init__(self, share: float = HISTORY_SHARE, floor: int = HISTORY_FLOOR_BYTES) -> None:
        if share < 0 or floor < 0:
            raise ValueError(f"a history budget is >= 0, not share={share} floor={floor}")
        self.share = share
        self.floor = floor
        self.live = 0
        """Bytes of the live records."""
        self.kept = 0
        """Bytes of the events of the revisions in ``_sizes``."""
        self._sizes: deque[tuple[int, int]] = deque()

    @property
    def limit(self) -> int:
        """The most bytes of history kept now."""
        return max(self.floor, int(self.share * self.live))

    def load(self, sizes: Iterable[tuple[int, int]], live: int) -> None:
        """Start from a store's ``(revision, bytes)`` of its kept revisions, oldest first,
        and the bytes of its live records."""
        self._sizes = deque(sizes)
        self.kept = sum(size for _, size in self._sizes)
        self.live = live

    def add(self, revision: int, events: Sequence[WatchEvent]) -> None:
        """Count the events committed at ``revision`` (newer than any counted so far)."""
        size = 0
        for event in events:
            weight = record_bytes(event.kv)
            size += weight
            if event.prev_kv is not None:
                self.live -= record_bytes(event.prev_kv)
            if event.type is EventType.PUT:
                self.live += weight
        if events:
            self._sizes.append((revision, size))
            self.kept += size

    def oldest_kept(self, compacted: int) -> int:
        """The oldest revision to keep, given that history before ``compacted`` is gone
        already: the oldest such that the kept revisions fit the budget (the newest is
        always kept, whatever its size), and never below ``compacted``. Once the history
        is over its budget, the oldest revisions are dropped to 1/32 under it."""
        sizes = self._sizes
        while sizes and sizes[0][0] < compacted:
            self.kept -= sizes.popleft()[1]
        limit = self.limit
        if len(sizes) < 2 or self.kept <= limit:
            return compacted
        # Past the limit, down to a little under it: compaction then runs every few dozen
        # revisions, each time over keys written many times since (one step each).
        target = limit - limit // _STEP
        while len(sizes) > 1 and self.kept > target:
            self.kept -= sizes.popleft()[1]
        return max(compacted, sizes[0][0])
