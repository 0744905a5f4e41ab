"""Copying every key of one store into another, empty one (a migration from SQLite to etcd, a
logical backup, a restore), and compacting a store's history; does I/O only through
``Store``.

A copy reads the source at one revision and writes the destination in transactions of at
most 128 keys (and ``_BATCH_BYTES``), each only if none of its keys exists yet, so
a copy never overwrites anything. Revisions are not copied: the destination numbers its
own. Keys attached to a lease are not copied: they live only as long as the lease (a
leader's key), and a copy would make them permanent.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from pallet.store.errors import Compacted, InvalidArgument, StoreError
from pallet.store.kv import KeyValue
from pallet.store.protocol import Store
from pallet.store.txn import Compare, Put

__all__ = ["CompactReport", "CopyReport", "compact_history", "copy_store"]

_BATCH_KEYS = 128
"""Most keys per transaction: etcd's default ``--max-txn-ops``, so a copy into an etcd
started without Pallet's larger limit (``MAX_TXN_OPS``) works too."""
_BATCH_BYTES = 512 * 1024
"""Most key and value bytes per transaction: etcd refuses requests over 1.5 MiB, and its
JSON gateway carries bytes in base64 (4/3 the size)."""


@dataclass(frozen=True, slots=True)
class CopyReport:
    keys: int
    """Keys written to the destination."""
    bytes: int
    """Their keys' and values' bytes."""
    leased: int
    """Keys left out because they are attached to a lease."""
    source_revision: int
    """The source revision the copy was read at."""
    transactions: int


@dataclass(frozen=True, slots=True)
class CompactReport:
    revision: int
    """The store's revision when compacted."""
    oldest: int
    """The oldest revision whose history is kept now."""


async def copy_store(source: Store, destination: Store) -> CopyReport:
    """Copy every key of ``source`` (without a lease) into ``destination``, which must be
    empty; check afterwards that the destination holds exactly what was copied."""
    kvs, revision = await source.list("")
    present, _ = await destination.list("")
    if present:
        raise StoreError(
            f"the destination already holds {len(present)} keys (e.g. {present[0].key!r}): "
            "a copy goes into an empty store only, so nothing there is overwritten"
        )
    copied = [kv for kv in kvs if not kv.lease]
    transactions = 0
    for batch in _batches(copied):
        result = await destination.txn(
            [Compare.absent(kv.key) for kv in batch], [Put(kv.key, kv.value) for kv in batch]
        )
        if not result.succeeded:
            raise StoreError(
                f"a key among {batch[0].key!r}..{batch[-1].key!r} appeared in the destination "
                "during the copy: something else writes to it; stop it and copy again into "
                "an empty store"
            )
        transactions += 1
    written, _ = await destination.list("")
    if [(kv.key, kv.value) for kv in written] != [(kv.key, kv.value) for kv in copied]:
        raise StoreError("the destination differs from the source after the copy")
    size = sum(len(kv.key.encode()) + len(kv.value) for kv in copied)
    return CopyReport(len(copied), size, len(kvs) - len(copied), revision, transactions)


def _batches(kvs: list[KeyValue]) -> Iterator[list[KeyValue]]:
    batch: list[KeyValue] = []
    size = 0
    for kv in kvs:
        entry = len(kv.key.encode()) + len(kv.value)
        if batch and (len(batch) == _BATCH_KEYS or size + entry > _BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(kv)
        size += entry
    if batch:
        yield batch


async def compact_history(store: Store, keep: int) -> CompactReport:
    """Drop the history older than the last ``keep`` revisions (``keep`` >= 1); watches
    may start at the oldest revision kept or later."""
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise InvalidArgument("keep", f"keep at least 1 revision, not {keep!r}")
    revision = await store.revision()
    oldest = max(1, revision - keep + 1)
    try:
        await store.compact(oldest)
    except Compacted as e:  # already compacted that far, or further
        oldest = max(oldest, e.oldest)
    return CompactReport(revision, oldest)
