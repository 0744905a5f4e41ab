"""Transactions as etcd v3 has them: compares, then the operations of one branch; pure.

A transaction checks every ``Compare``; if all hold, its ``on_success`` operations run,
otherwise its ``on_failure`` ones, all at one new revision (or none when nothing is
written). As in etcd, a branch may not put one key twice nor put a key it also deletes,
no list holds more than ``MAX_TXN_OPS`` entries, and a branch writes at most
``MAX_TXN_BYTES`` of keys and values.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from pallet.store.errors import InvalidArgument, InvalidArgumentType
from pallet.store.kv import KeyValue
from pallet.store.validate import check_key, check_lease, check_prefix, check_value

__all__ = [
    "ETCD_MAX_REQUEST_BYTES",
    "MAX_TXN_BYTES",
    "MAX_TXN_OPS",
    "Compare",
    "CompareOp",
    "Delete",
    "DeletePrefix",
    "DeleteResponse",
    "Get",
    "GetPrefix",
    "GetPrefixResponse",
    "GetResponse",
    "Op",
    "Put",
    "PutResponse",
    "Response",
    "Target",
    "Txn",
    "TxnResult",
    "make_txn",
]

MAX_TXN_OPS = 4096
"""The most compares, or operations in one branch. etcd's default ``--max-txn-ops`` is
128; Pallet starts its etcd with this instead, so that any one decision of the master (a
node and all its tasks, a status batch) is one transaction (``control.decision``)."""

MAX_TXN_BYTES = 4 * 1024 * 1024
"""The most key and value bytes the writes of one transaction carry. etcd refuses a
request over ``--max-request-bytes`` (1.5 MiB unless set); Pallet starts its etcd with
``ETCD_MAX_REQUEST_BYTES``, room for these bytes in base64 (4/3) and JSON."""

ETCD_MAX_REQUEST_BYTES = 8 * 1024 * 1024
"""The ``--max-request-bytes`` Pallet's etcd runs with."""

_T = TypeVar("_T")


class Target(enum.StrEnum):
    """Which field of a key a ``Compare`` reads. A missing key reads as 0 for every
    number; a VALUE compare on a missing key never holds (etcd's rule)."""

    VERSION = "version"
    CREATE_REVISION = "create_revision"
    MOD_REVISION = "mod_revision"
    VALUE = "value"
    LEASE = "lease"


class CompareOp(enum.StrEnum):
    EQUAL = "=="
    NOT_EQUAL = "!="
    LESS = "<"
    GREATER = ">"


@dataclass(frozen=True, slots=True)
class Compare:
    """``<target of key> <op> <operand>``, e.g. ``Compare.mod_revision("a", "==", 7)``."""

    key: str
    target: Target
    op: CompareOp
    operand: int | bytes

    def __post_init__(self) -> None:
        check_key(self.key)
        try:
            object.__setattr__(self, "target", Target(self.target))
        except ValueError:
            raise InvalidArgument("target", f"unknown compare target {self.target!r}") from None
        try:
            object.__setattr__(self, "op", CompareOp(self.op))
        except ValueError:
            ops = ", ".join(o.value for o in CompareOp)
            raise InvalidArgument("op", f"unknown compare op {self.op!r}; use {ops}") from None
        if self.target is Target.VALUE:
            check_value(self.operand, "operand")
        elif isinstance(self.operand, bool) or not isinstance(self.operand, int):
            raise InvalidArgumentType("operand", "int", self.operand)
        elif self.operand < 0:
            raise InvalidArgument("operand", f"a {self.target} is >= 0, got {self.operand}")

    @classmethod
    def version(cls, key: str, op: str, version: int) -> Compare:
        return cls(key, Target.VERSION, CompareOp(op), version)

    @classmethod
    def create_revision(cls, key: str, op: str, revision: int) -> Compare:
        return cls(key, Target.CREATE_REVISION, CompareOp(op), revision)

    @classmethod
    def mod_revision(cls, key: str, op: str, revision: int) -> Compare:
        return cls(key, Target.MOD_REVISION, CompareOp(op), revision)

    @classmethod
    def value(cls, key: str, op: str, value: bytes) -> Compare:
        return cls(key, Target.VALUE, CompareOp(op), value)

    @classmethod
    def lease(cls, key: str, op: str, lease: int) -> Compare:
        return cls(key, Target.LEASE, CompareOp(op), lease)

    @classmethod
    def exists(cls, key: str) -> Compare:
        """Holds when ``key`` is present."""
        return cls(key, Target.VERSION, CompareOp.GREATER, 0)

    @classmethod
    def absent(cls, key: str) -> Compare:
        """Holds when ``key`` is missing."""
        return cls(key, Target.VERSION, CompareOp.EQUAL, 0)


@dataclass(frozen=True, slots=True)
class Put:
    """Write ``value`` at ``key``, attached to ``lease`` (0: none, detaching any lease)."""

    key: str
    value: bytes
    lease: int = 0

    def __post_init__(self) -> None:
        check_key(self.key)
        check_value(self.value)
        check_lease(self.lease, allow_none=True)


@dataclass(frozen=True, slots=True)
class Delete:
    """Delete ``key`` if present."""

    key: str

    def __post_init__(self) -> None:
        check_key(self.key)


@dataclass(frozen=True, slots=True)
class DeletePrefix:
    """Delete every key that starts with ``prefix`` ("" deletes every key)."""

    prefix: str

    def __post_init__(self) -> None:
        check_prefix(self.prefix)


@dataclass(frozen=True, slots=True)
class Get:
    """Read ``key``, seeing the writes made earlier in the same branch."""

    key: str

    def __post_init__(self) -> None:
        check_key(self.key)


@dataclass(frozen=True, slots=True)
class GetPrefix:
    """Read every key that starts with ``prefix``, in key order."""

    prefix: str

    def __post_init__(self) -> None:
        check_prefix(self.prefix)


Op = Put | Delete | DeletePrefix | Get | GetPrefix


@dataclass(frozen=True, slots=True)
class PutResponse:
    prev_kv: KeyValue | None


@dataclass(frozen=True, slots=True)
class DeleteResponse:
    """The keys deleted, as they were just before, in key order."""

    deleted: tuple[KeyValue, ...]


@dataclass(frozen=True, slots=True)
class GetResponse:
    kv: KeyValue | None


@dataclass(frozen=True, slots=True)
class GetPrefixResponse:
    kvs: tuple[KeyValue, ...]


Response = PutResponse | DeleteResponse | GetResponse | GetPrefixResponse


@dataclass(frozen=True, slots=True)
class TxnResult:
    """Whether every compare held, the store's revision after the transaction, and one
    response per operation of the branch that ran."""

    succeeded: bool
    revision: int
    responses: tuple[Response, ...]


@dataclass(frozen=True, slots=True)
class Txn:
    """A checked transaction; build one with ``make_txn``."""

    compares: tuple[Compare, ...]
    on_success: tuple[Op, ...]
    on_failure: tuple[Op, ...]


_OP_TYPES = (Put, Delete, DeletePrefix, Get, GetPrefix)


def make_txn(
    compares: Sequence[Compare], on_success: Sequence[Op], on_failure: Sequence[Op]
) -> Txn:
    """A ``Txn`` from its three lists, or an error naming the list (and entry) that is wrong."""
    txn = Txn(
        _entries(compares, "compares", (Compare,), "Compare"),
        _entries(on_success, "on_success", _OP_TYPES, "Put, Delete, DeletePrefix, Get, GetPrefix"),
        _entries(on_failure, "on_failure", _OP_TYPES, "Put, Delete, DeletePrefix, Get, GetPrefix"),
    )
    _check_writes(txn.on_success, "on_success")
    _check_writes(txn.on_failure, "on_failure")
    _check_bytes(txn.on_success, "on_success")
    _check_bytes(txn.on_failure, "on_failure")
    return txn


def _check_bytes(ops: tuple[Op, ...], argument: str) -> None:
    """Every backend refuses what etcd (started by Pallet) would: more than
    ``MAX_TXN_BYTES`` of keys and values in one branch."""
    size = sum(len(op.key.encode()) + len(op.value) for op in ops if isinstance(op, Put))
    if size > MAX_TXN_BYTES:
        raise InvalidArgument(argument, f"{size} bytes of keys and values; at most {MAX_TXN_BYTES}")


def _entries(
    entries: Sequence[_T], argument: str, types: tuple[type, ...], expected: str
) -> tuple[_T, ...]:
    if isinstance(entries, str | bytes) or not isinstance(entries, Sequence):
        raise InvalidArgumentType(argument, f"a list of {expected}", entries)
    if len(entries) > MAX_TXN_OPS:
        raise InvalidArgument(argument, f"{len(entries)} entries; at most {MAX_TXN_OPS} allowed")
    for i, entry in enumerate(entries):
        if not isinstance(entry, types):
            raise InvalidArgumentType(f"{argument}[{i}]", expected, entry)
    return tuple(entries)


def _check_writes(ops: tuple[Op, ...], argument: str) -> None:
    """etcd refuses a branch that puts a key twice or puts a key it also deletes."""
    put: set[str] = set()
    deleted: set[str] = set()
    prefixes: list[str] = []
    for op in ops:
        if isinstance(op, Put):
            if op.key in put:
                raise InvalidArgument(argument, f"key {op.key!r} is put twice in one branch")
            put.add(op.key)
        elif isinstance(op, Delete):
            deleted.add(op.key)
        elif isinstance(op, DeletePrefix):
            prefixes.append(op.prefix)
    for key in sorted(put):
        if key in deleted or any(key.startswith(p) for p in prefixes):
            raise InvalidArgument(argument, f"key {key!r} is both put and deleted in one branch")
