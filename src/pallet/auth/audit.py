"""The audit log: who wrote what, and how it went; kept in the store; does I/O.

Every write to the API (and every refused attempt) becomes one entry,
``/pallet/audit/<time in ms>-<random>`` ``{"time", "uid", "kind", "method", "path",
"status", "outcome", "client"}``. Entries are queued and written in batches by one
background task, so a request never waits for its audit entry; the newest ``keep`` stay.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import secrets as _secrets
import time
from collections.abc import Callable
from typing import Any

from pallet.auth.records import decode, encode
from pallet.store import MAX_TXN_OPS, Delete, Put, Store, StoreError

__all__ = ["AUDIT_PREFIX", "AuditLog"]

log = logging.getLogger(__name__)

AUDIT_PREFIX = "/pallet/audit/"


class AuditLog:
    def __init__(
        self, store: Store, *, keep: int = 10_000, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.keep = keep
        self.clock = clock
        self._queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(maxsize=100_000)
        self._keys: list[str] = []
        self._loaded = False
        self.dropped = 0

    def record(self, entry: dict[str, Any]) -> None:
        """Queue ``entry`` (its time is added); never blocks a request."""
        now = self.clock()
        entry = {"time": dt.datetime.fromtimestamp(now, dt.UTC).isoformat(), **entry}
        name = f"{AUDIT_PREFIX}{int(now * 1000):015d}-{_secrets.token_hex(4)}"
        try:
            self._queue.put_nowait((name, entry))
        except asyncio.QueueFull:
            self.dropped += 1

    async def run(self) -> None:
        """Write what is queued, in batches, until cancelled (then write the rest)."""
        try:
            while True:
                batch = [await self._queue.get()]
                await self._write(batch)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.flush(), 2.0)
            raise

    async def flush(self) -> None:
        while not self._queue.empty():
            await self._write([])

    async def _write(self, batch: list[tuple[str, dict[str, Any]]]) -> None:
        while len(batch) < MAX_TXN_OPS // 2 and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        if not batch:
            return
        try:
            if not self._loaded:
                kvs, _ = await self.store.list(AUDIT_PREFIX)
                self._keys = [kv.key for kv in kvs]
                self._loaded = True
            ops: list[Put | Delete] = [Put(name, encode(entry)) for name, entry in batch]
            self._keys += [name for name, _ in batch]
            excess = min(max(0, len(self._keys) - self.keep), MAX_TXN_OPS // 2)
            old, self._keys = self._keys[:excess], self._keys[excess:]
            ops += [Delete(k) for k in old]
            await self.store.txn((), tuple(ops))
        except StoreError as e:
            log.error("cannot write %d audit entries: %s", len(batch), e)

    async def read(self, limit: int = 100, uid: str | None = None) -> list[dict[str, Any]]:
        """The newest ``limit`` entries (of ``uid``), newest first."""
        await self.flush()
        kvs, _ = await self.store.list(AUDIT_PREFIX)
        out: list[dict[str, Any]] = []
        for kv in reversed(kvs):
            entry = decode(kv.value)
            if uid is None or entry.get("uid") == uid:
                out.append({"id": kv.key[len(AUDIT_PREFIX) :], **entry})
                if len(out) >= limit:
                    break
        return out
