"""The errors the store raises; pure.

PalletError
 └── StoreError                 the store refused a request or could not carry it out
      ├── InvalidArgument       an argument has a wrong value (ValueError; names the argument)
      ├── InvalidArgumentType   an argument has a wrong type (TypeError; names the argument)
      ├── Compacted             the revision asked for is older than the history kept
      ├── LeaseNotFound         no such lease: never granted, revoked, or expired
      ├── StoreClosed           the store was closed
      └── StoreLocked           another process holds the store's file
"""

from __future__ import annotations

from pallet.model.errors import PalletError

__all__ = [
    "Compacted",
    "InvalidArgument",
    "InvalidArgumentType",
    "LeaseNotFound",
    "StoreClosed",
    "StoreError",
    "StoreLocked",
]


class StoreError(PalletError):
    """Base of every error the store raises on purpose."""


class InvalidArgument(StoreError, ValueError):
    """``argument`` has a value the store cannot accept."""

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(f"{argument}: {message}")
        self.argument = argument
        self.message = message


class InvalidArgumentType(StoreError, TypeError):
    """``argument`` has a type the store cannot accept."""

    def __init__(self, argument: str, expected: str, got: object) -> None:
        message = f"expected {expected}, got {type(got).__name__} {got!r:.60}"
        super().__init__(f"{argument}: {message}")
        self.argument = argument
        self.message = message


class Compacted(StoreError):
    """Revision ``requested`` is gone from the history; ``oldest`` is the first revision still
    kept. A watcher that meets this should re-list and watch from the list's revision + 1."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(
            f"revision {requested} has been compacted; the oldest revision still kept is "
            f"{oldest}: list again and watch from the list's revision + 1"
        )
        self.requested = requested
        self.oldest = oldest


class LeaseNotFound(StoreError):
    """Lease ``lease`` does not exist (never granted, revoked, or expired)."""

    def __init__(self, lease: int) -> None:
        super().__init__(f"lease {lease} not found: it was never granted, was revoked or expired")
        self.lease = lease


class StoreClosed(StoreError):
    """The store was closed; open it again to go on."""

    def __init__(self, name: str) -> None:
        super().__init__(f"store {name} is closed")
        self.name = name


class StoreLocked(StoreError):
    """Another process (another master?) has the store's file open."""

    def __init__(self, path: str) -> None:
        super().__init__(
            f"store file {path} is in use by another process; stop the other master "
            "or give this one its own file"
        )
        self.path = path
