"""Pallet's store types to and from etcd v3's JSON (its gRPC gateway's encoding); pure.

The gateway writes protobuf's JSON mapping: bytes in base64, 64-bit integers as strings,
enum values by name, and fields at their zero value left out.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from typing import Any

from pallet.store.errors import StoreError
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
)
from pallet.store.validate import prefix_end

__all__ = [
    "Json",
    "b64",
    "decode_event",
    "decode_kv",
    "decode_response",
    "encode_compare",
    "encode_op",
    "key_range",
    "revision_of",
]

Json = dict[str, Any]

_ALL = b"\x00"
"""etcd's range end meaning "every key from the start key on" (and, as a start key, the first)."""

_OPS = {
    CompareOp.EQUAL: "EQUAL",
    CompareOp.NOT_EQUAL: "NOT_EQUAL",
    CompareOp.LESS: "LESS",
    CompareOp.GREATER: "GREATER",
}
_TARGETS = {
    Target.VERSION: ("VERSION", "version"),
    Target.CREATE_REVISION: ("CREATE", "create_revision"),
    Target.MOD_REVISION: ("MOD", "mod_revision"),
    Target.VALUE: ("VALUE", "value"),
    Target.LEASE: ("LEASE", "lease"),
}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _key(key: str) -> str:
    return b64(key.encode("utf-8"))


def key_range(prefix: str) -> Json:
    """``key`` and ``range_end`` selecting every key that starts with ``prefix``."""
    start = prefix.encode("utf-8")
    end = prefix_end(start)
    return {"key": b64(start or _ALL), "range_end": b64(end if end is not None else _ALL)}


def encode_compare(compare: Compare) -> Json:
    target, field = _TARGETS[compare.target]
    operand = compare.operand
    value = b64(operand) if isinstance(operand, bytes) else str(operand)
    return {"key": _key(compare.key), "result": _OPS[compare.op], "target": target, field: value}


def encode_op(op: Op) -> Json:
    match op:
        case Put(key, value, lease):
            put: Json = {"key": _key(key), "value": b64(value), "prev_kv": True}
            if lease:
                put["lease"] = str(lease)
            return {"request_put": put}
        case Delete(key):
            return {"request_delete_range": {"key": _key(key), "prev_kv": True}}
        case DeletePrefix(prefix):
            return {"request_delete_range": {**key_range(prefix), "prev_kv": True}}
        case Get(key):
            return {"request_range": {"key": _key(key)}}
        case GetPrefix(prefix):
            return {"request_range": key_range(prefix)}
    raise AssertionError(f"unknown operation {op!r}")  # make_txn admits no other type


def _int(message: Mapping[str, Any], field: str) -> int:
    return int(message.get(field, 0))


def decode_kv(message: Mapping[str, Any]) -> KeyValue:
    raw = base64.b64decode(message.get("key", ""))
    try:
        key = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise StoreError(
            f"etcd holds key {raw!r}, which is not UTF-8 text as Pallet's keys are: keep "
            "other programs' data out of the etcd cluster Pallet uses"
        ) from None
    return KeyValue(
        key,
        base64.b64decode(message.get("value", "")),
        _int(message, "create_revision"),
        _int(message, "mod_revision"),
        _int(message, "version"),
        _int(message, "lease"),
    )


def _kvs(messages: Iterable[Mapping[str, Any]] | None) -> tuple[KeyValue, ...]:
    return tuple(decode_kv(m) for m in messages or ())


def decode_response(op: Op, message: Mapping[str, Any]) -> Response:
    """The answer to ``op`` from its entry in a txn's ``responses``."""
    match op:
        case Put():
            prev = message.get("response_put", {}).get("prev_kv")
            return PutResponse(decode_kv(prev) if prev else None)
        case Delete() | DeletePrefix():
            return DeleteResponse(_kvs(message.get("response_delete_range", {}).get("prev_kvs")))
        case Get():
            kvs = _kvs(message.get("response_range", {}).get("kvs"))
            return GetResponse(kvs[0] if kvs else None)
        case GetPrefix():
            return GetPrefixResponse(_kvs(message.get("response_range", {}).get("kvs")))
    raise AssertionError(f"unknown operation {op!r}")


def decode_event(message: Mapping[str, Any]) -> WatchEvent:
    kind = EventType.DELETE if message.get("type") == "DELETE" else EventType.PUT
    prev = message.get("prev_kv")
    return WatchEvent(kind, decode_kv(message.get("kv", {})), decode_kv(prev) if prev else None)


def revision_of(message: Mapping[str, Any]) -> int:
    """The store revision in a response's header (0 when it has none)."""
    return int(message.get("header", {}).get("revision", 0))
