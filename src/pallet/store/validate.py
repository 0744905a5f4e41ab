"""Checks on the arguments the store takes, raising errors that name the argument; pure."""

from __future__ import annotations

from pallet.store.errors import InvalidArgument, InvalidArgumentType

__all__ = [
    "MAX_LEASE_TTL",
    "check_key",
    "check_lease",
    "check_prefix",
    "check_revision",
    "check_ttl",
    "check_value",
    "prefix_end",
]

MAX_LEASE_TTL = 9_000_000_000
"""etcd's largest lease TTL in seconds; kept so every backend accepts the same leases."""


def check_key(key: object, argument: str = "key") -> str:
    """``key`` if it is a non-empty string that encodes as UTF-8."""
    if not isinstance(key, str):
        raise InvalidArgumentType(argument, "str", key)
    if not key:
        raise InvalidArgument(argument, "a key must be a non-empty string")
    _check_utf8(key, argument)
    return key


def check_prefix(prefix: object, argument: str = "prefix") -> str:
    """``prefix`` if it is a string that encodes as UTF-8; the empty prefix means every key."""
    if not isinstance(prefix, str):
        raise InvalidArgumentType(argument, "str", prefix)
    _check_utf8(prefix, argument)
    return prefix


def check_value(value: object, argument: str = "value") -> bytes:
    """``value`` if it is ``bytes`` (encode text yourself: the store keeps bytes)."""
    if not isinstance(value, bytes):
        raise InvalidArgumentType(argument, "bytes", value)
    return value


def check_revision(revision: object, argument: str = "revision") -> int:
    """``revision`` if it is an int >= 1."""
    revision = _int(revision, argument)
    if revision < 1:
        raise InvalidArgument(argument, f"a revision is >= 1, got {revision}")
    return revision


def check_lease(lease: object, argument: str = "lease", *, allow_none: bool = False) -> int:
    """``lease`` if it is a lease id (an int >= 1); with ``allow_none``, 0 (no lease) too."""
    lease = _int(lease, argument)
    if lease < (0 if allow_none else 1):
        lowest = "0 (no lease) or a lease id" if allow_none else "a lease id >= 1"
        raise InvalidArgument(argument, f"expected {lowest}, got {lease}")
    return lease


def check_ttl(ttl: object, argument: str = "ttl") -> int:
    """``ttl`` if it is a whole number of seconds from 1 to ``MAX_LEASE_TTL``."""
    ttl = _int(ttl, argument)
    if not 1 <= ttl <= MAX_LEASE_TTL:
        raise InvalidArgument(argument, f"a lease TTL is 1 to {MAX_LEASE_TTL} seconds, got {ttl}")
    return ttl


def prefix_end(prefix: bytes) -> bytes | None:
    """The first byte string after every key that starts with ``prefix`` (etcd's range end),
    or None when no such string exists (empty prefix, or only 0xff bytes)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


def _int(number: object, argument: str) -> int:
    if isinstance(number, bool) or not isinstance(number, int):
        raise InvalidArgumentType(argument, "int", number)
    return number


def _check_utf8(text: str, argument: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InvalidArgument(argument, f"{text!r} is not valid UTF-8 text ({e.reason})") from e
