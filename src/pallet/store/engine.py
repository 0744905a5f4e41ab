"""Running one transaction against a read-only view of the keys: which branch runs, what it
answers, and the events it would write; pure (the caller commits the events).

The embedded backends share this so they cannot disagree on etcd's rules; a backend only
stores keys, history and leases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pallet.store.errors import LeaseNotFound
from pallet.store.kv import EventType, KeyValue, WatchEvent
from pallet.store.txn import (
    Compare,
    CompareOp,
    Delete,
    DeletePrefix,
    DeleteResponse,
    Get,
    GetPrefix,
    GetPrefixResponse,
    GetResponse,
    Op,
    Put,
    PutResponse,
    Response,
    Target,
    Txn,
)

__all__ = ["KeyView", "Outcome", "compare_holds", "run_txn"]

_ABSENT = KeyValue("", b"", 0, 0, 0, 0)


class KeyView(Protocol):
    """Read access to the committed keys and leases."""

    def get(self, key: str) -> KeyValue | None: ...

    def scan(self, prefix: str) -> list[KeyValue]:
        """Every key starting with ``prefix``, in key order."""
        ...

    def lease_exists(self, lease: int) -> bool: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a transaction did: the branch taken, its responses, the events to commit."""

    succeeded: bool
    responses: tuple[Response, ...]
    events: tuple[WatchEvent, ...]


def compare_holds(compare: Compare, kv: KeyValue | None) -> bool:
    """Whether ``compare`` holds for ``kv`` (None: the key is missing)."""
    if kv is None:
        if compare.target is Target.VALUE:
            return False
        kv = _ABSENT
    actual: int | bytes
    match compare.target:
        case Target.VERSION:
            actual = kv.version
        case Target.CREATE_REVISION:
            actual = kv.create_revision
        case Target.MOD_REVISION:
            actual = kv.mod_revision
        case Target.LEASE:
            actual = kv.lease
        case Target.VALUE:
            actual = kv.value
    expected = compare.operand
    match compare.op:
        case CompareOp.EQUAL:
            return actual == expected
        case CompareOp.NOT_EQUAL:
            return actual != expected
        case CompareOp.LESS:
            return actual < expected  # type: ignore[operator]  # both int or both bytes
        case CompareOp.GREATER:
            return actual > expected  # type: ignore[operator]


def run_txn(view: KeyView, txn: Txn, revision: int) -> Outcome:
    """Run ``txn`` over ``view``, stamping writes with ``revision`` (the current one + 1).
    Raises ``LeaseNotFound`` before anything is written if the branch puts to a missing lease."""
    succeeded = all(compare_holds(c, view.get(c.key)) for c in txn.compares)
    ops = txn.on_success if succeeded else txn.on_failure
    for op in ops:
        if isinstance(op, Put) and op.lease and not view.lease_exists(op.lease):
            raise LeaseNotFound(op.lease)
    pending = _Pending(view)
    responses = tuple(pending.apply(op, revision) for op in ops)
    return Outcome(succeeded, responses, tuple(pending.events))


class _Pending:
    """The committed keys overlaid with the writes made so far in this transaction."""

    def __init__(self, view: KeyView) -> None:
        self.view = view
        self.written: dict[str, KeyValue | None] = {}
        self.events: list[WatchEvent] = []

    def get(self, key: str) -> KeyValue | None:
        if key in self.written:
            return self.written[key]
        return self.view.get(key)

    def scan(self, prefix: str) -> list[KeyValue]:
        found = {kv.key: kv for kv in self.view.scan(prefix)}
        for key, kv in self.written.items():
            if key.startswith(prefix):
                if kv is None:
                    found.pop(key, None)
                else:
                    found[key] = kv
        return [found[key] for key in sorted(found)]

    def apply(self, op: Op, revision: int) -> Response:
        match op:
            case Get(key):
                return GetResponse(self.get(key))
            case GetPrefix(prefix):
                return GetPrefixResponse(tuple(self.scan(prefix)))
            case Put(key, value, lease):
                prev = self.get(key)
                if prev is None:
                    kv = KeyValue(key, value, revision, revision, 1, lease)
                else:
                    kv = KeyValue(
                        key, value, prev.create_revision, revision, prev.version + 1, lease
                    )
                self.written[key] = kv
                self.events.append(WatchEvent(EventType.PUT, kv, prev))
                return PutResponse(prev)
            case Delete(key):
                prev = self.get(key)
                return DeleteResponse(self._delete([prev] if prev else [], revision))
            case DeletePrefix(prefix):
                return DeleteResponse(self._delete(self.scan(prefix), revision))
        raise AssertionError(f"unknown operation {op!r}")  # make_txn admits no other type

    def _delete(self, kvs: list[KeyValue], revision: int) -> tuple[KeyValue, ...]:
        for prev in kvs:
            self.written[prev.key] = None
            tombstone = KeyValue(prev.key, b"", 0, revision, 0, 0)
            self.events.append(WatchEvent(EventType.DELETE, tombstone, prev))
        return tuple(kvs)
