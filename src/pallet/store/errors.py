"""The errors the store raises; pure.

PalletError
 └── StoreError                 the store refused a request or could not carry it out
      ├── InvalidArgument       an argument has a wrong value (ValueError; names the argument)
      ├── InvalidArgumentType   an argument has a wrong type (TypeError; names the argument)
      ├── Compacted             the revision asked for is older than the history kept
      ├── LeaseNotFound         no such lease: never granted, revoked, or expired
      ├── StoreClosed           the store was closed
      ├── StoreLocked           another process holds the store's file
      ├── TxnAborted            a queued write was not made: one it was decided on top of
      │                         failed (retry)
      ├── StoreUnavailable      no member of a remote store (etcd) answered in time, or a
      │                         write's outcome is unknown because its member went away
      └── WrongCluster          a remote store's member belongs to another cluster
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
    "StoreUnavailable",
    "TxnAborted",
    "WrongCluster",
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


class StoreUnavailable(StoreError):
    """The store's members could not be reached or did not answer in time; ``detail`` says
    what each one answered. When ``outcome_unknown``, a write was sent but its answer was
    lost: it may or may not have been applied, so read before writing it again."""

    def __init__(self, store: str, detail: str, *, outcome_unknown: bool = False) -> None:
        what = (
            "the answer to a write was lost (it may have been applied)"
            if outcome_unknown
            else "unreachable"
        )
        super().__init__(f"store {store}: {what}: {detail}")
        self.store = store
        self.detail = detail
        self.outcome_unknown = outcome_unknown


class WrongCluster(StoreError):
    """``endpoint`` answers for etcd cluster ``found``, not the store's cluster ``expected``:
    a member of another cluster is listed (or listens on a port meant for this one)."""

    def __init__(self, endpoint: str, expected: str, found: str) -> None:
        super().__init__(
            f"etcd member {endpoint} belongs to cluster {found}, not {expected}: "
            "remove it from the store URL or check which etcd listens there"
        )
        self.endpoint = endpoint
        self.expected = expected
        self.found = found


class TxnAborted(StoreError):
    """A write queued behind another that failed was not made (it was decided on top of
    that one); retrying decides it again."""
