"""What the store holds and reports: revisioned key-values and watch events; pure."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["EventType", "KeyValue", "WatchEvent"]


@dataclass(frozen=True, slots=True)
class KeyValue:
    """One key as of a revision, with etcd's bookkeeping.

    ``create_revision`` is the revision that created the key (since its last delete),
    ``mod_revision`` the one that last wrote it, ``version`` counts its writes since it was
    created (1 after the first put), ``lease`` is the lease it is attached to (0: none).
    """

    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int = 0


class EventType(enum.StrEnum):
    """What happened to a key."""

    PUT = "PUT"
    DELETE = "DELETE"


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One change of one key. For a DELETE, ``kv`` is a tombstone as etcd reports it (the key,
    an empty value, zero create revision and version, ``mod_revision`` the deleting revision).
    ``prev_kv`` is the key before the change, None when a PUT created it."""

    type: EventType
    kv: KeyValue
    prev_kv: KeyValue | None = None

    @property
    def revision(self) -> int:
        """The revision of the transaction that made this change."""
        return self.kv.mod_revision
