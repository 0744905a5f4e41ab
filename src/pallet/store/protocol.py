"""The ``Store`` protocol every backend provides, and its helpers built on ``txn``; no I/O
of its own.

Semantics are etcd v3's, so an etcd backend can provide them unchanged: one revision counter
for the whole store, raised by one for every transaction that writes; compare-and-set
transactions; watches that replay history from a revision; leases whose expiry deletes
their keys. Keys are non-empty ``str`` (kept as UTF-8, ordered as bytes), values ``bytes``.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Protocol

from pallet.store.kv import KeyValue, WatchEvent
from pallet.store.txn import (
    Compare,
    Delete,
    DeletePrefix,
    DeleteResponse,
    Op,
    Put,
    TxnResult,
)
from pallet.store.validate import check_revision

__all__ = ["Store", "WatchStream"]


class WatchStream(Protocol):
    """An ordered stream of watch events; ``aclose()`` (or leaving ``async with``) stops it."""

    def __aiter__(self) -> AsyncIterator[WatchEvent]: ...

    async def __anext__(self) -> WatchEvent: ...

    async def aclose(self) -> None: ...

    async def __aenter__(self) -> WatchStream: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class Store(Protocol):
    """A revisioned key-value store with transactions, watches and leases.

    Backends subclass it to inherit the helpers (``put`` ... ``update``), which are plain
    transactions. Every method raises ``StoreClosed`` after ``close``.
    """

    ordered_txns: bool = False
    """Whether transactions are run in the order the ``txn`` calls were made, even when
    several are awaited at once (the embedded backends); False for a remote store whose
    concurrent requests may be reordered (etcd)."""

    async def get(self, key: str) -> KeyValue | None:
        """``key`` as of now, or None if it is missing."""
        ...

    async def list(self, prefix: str = "") -> tuple[builtins.list[KeyValue], int]:
        """Every key starting with ``prefix`` in key order, and the revision they are as of:
        watch from that revision + 1 to see every later change."""
        ...

    async def revision(self) -> int:
        """The store's current revision (1 for a new, empty store)."""
        ...

    async def txn(
        self,
        compares: Sequence[Compare] = (),
        on_success: Sequence[Op] = (),
        on_failure: Sequence[Op] = (),
    ) -> TxnResult:
        """If every compare holds run ``on_success``, else ``on_failure``: atomically, at one
        new revision if anything is written. A put to a missing lease raises
        ``LeaseNotFound`` and changes nothing."""
        ...

    async def watch(self, prefix: str = "", start_revision: int | None = None) -> WatchStream:
        """Every change to keys starting with ``prefix`` at revision ``start_revision`` and
        later (etcd's inclusive start), in order, history first then live; with None, the
        changes after the current revision. Raises ``Compacted`` if ``start_revision`` is no
        longer kept; the stream raises it too if it falls behind the kept history."""
        ...

    async def compact(self, revision: int) -> None:
        """Forget the history before ``revision``; watches may then start at ``revision`` or
        later. Raises ``Compacted`` if it is already forgotten."""
        ...

    async def grant(self, ttl: int) -> int:
        """A new lease that expires ``ttl`` seconds from now unless kept alive; its id."""
        ...

    async def keepalive(self, lease: int) -> int:
        """Restart ``lease``'s TTL and return it; ``LeaseNotFound`` if it is gone."""
        ...

    async def revoke(self, lease: int) -> None:
        """End ``lease`` now, deleting its keys in one revision (with DELETE events)."""
        ...

    async def expire_leases(self) -> builtins.list[int]:
        """Revoke every lease past its deadline, earliest first; their ids."""
        ...

    async def close(self) -> None:
        """Release the store; open watches end with ``StoreClosed``. Idempotent."""
        ...

    async def put(self, key: str, value: bytes, *, lease: int = 0) -> int:
        """Write ``key``; the revision of the write."""
        result = await self.txn((), (Put(key, value, lease),))
        return result.revision

    async def delete(self, key: str) -> bool:
        """Delete ``key``; whether it was there."""
        result = await self.txn((), (Delete(key),))
        response = result.responses[0]
        assert isinstance(response, DeleteResponse)
        return bool(response.deleted)

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every key starting with ``prefix``; how many there were."""
        result = await self.txn((), (DeletePrefix(prefix),))
        response = result.responses[0]
        assert isinstance(response, DeleteResponse)
        return len(response.deleted)

    async def create(self, key: str, value: bytes, *, lease: int = 0) -> int | None:
        """Write ``key`` only if it is missing; the revision of the write, or None."""
        result = await self.txn((Compare.absent(key),), (Put(key, value, lease),))
        return result.revision if result.succeeded else None

    async def update(
        self, key: str, value: bytes, *, mod_revision: int, lease: int = 0
    ) -> int | None:
        """Write ``key`` only if it was last written at ``mod_revision`` (compare-and-set);
        the revision of the write, or None if the key changed or is gone."""
        mod_revision = check_revision(mod_revision, "mod_revision")
        result = await self.txn(
            (Compare.mod_revision(key, "==", mod_revision),), (Put(key, value, lease),)
        )
        return result.revision if result.succeeded else None
