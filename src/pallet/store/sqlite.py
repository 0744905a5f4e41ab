"""The embedded default backend: one SQLite file in WAL mode; does file I/O on one thread.

Each commit is one SQLite transaction (keys, history, revision and leases together), so a
killed master leaves either all of a write or none of it. The file is opened with an
exclusive lock: a second process (a second master) cannot open it while this one runs.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from pallet.store.embedded import DEFAULT_HISTORY, Clock, EmbeddedStore, ThreadRunner
from pallet.store.errors import StoreError, StoreLocked
from pallet.store.kv import EventType, KeyValue, WatchEvent
from pallet.store.protocol import Store
from pallet.store.validate import prefix_end

__all__ = ["open_sqlite"]

_SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE kv (
    key BLOB PRIMARY KEY, value BLOB NOT NULL, create_revision INTEGER NOT NULL,
    mod_revision INTEGER NOT NULL, version INTEGER NOT NULL, lease INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX kv_by_lease ON kv (lease, key) WHERE lease != 0;
CREATE TABLE history (
    revision INTEGER NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL, key BLOB NOT NULL,
    value BLOB NOT NULL, create_revision INTEGER NOT NULL, version INTEGER NOT NULL,
    lease INTEGER NOT NULL, prev_value BLOB, prev_create_revision INTEGER,
    prev_mod_revision INTEGER, prev_version INTEGER, prev_lease INTEGER,
    PRIMARY KEY (revision, seq)
) WITHOUT ROWID;
CREATE TABLE leases (id INTEGER PRIMARY KEY AUTOINCREMENT, ttl INTEGER NOT NULL);
"""

_KV = "key, value, create_revision, mod_revision, version, lease"
_EVENT = (
    "revision, type, key, value, create_revision, version, lease, "
    "prev_value, prev_create_revision, prev_mod_revision, prev_version, prev_lease"
)


async def open_sqlite(
    path: str,
    *,
    clock: Clock = time.monotonic,
    history: int = DEFAULT_HISTORY,
    expiry_interval: float | None = None,
) -> Store:
    """The store in the SQLite file at ``path``, created if missing (its directory must exist)."""
    runner = ThreadRunner("pallet-sqlite")
    try:
        backend = await runner(lambda: _SqliteBackend(path))
    except BaseException:
        await runner.shutdown()
        raise
    store = EmbeddedStore(f"sqlite:{path}", backend, runner, clock=clock, history=history)
    await store.start(expiry_interval)
    return store


def _private(path: str) -> None:
    """Create the store file readable by its owner only (0600; SQLite gives its WAL the
    same mode), or close an older one: it holds every app's environment."""
    if path == ":memory:" or path.startswith("file:"):
        return
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
    except OSError as e:
        raise StoreError(f"store file {path}: cannot open: {e.strerror}") from e
    for name in (path, path + "-wal", path + "-shm"):
        with contextlib.suppress(OSError):  # absent, or another user's file we may write
            os.chmod(name, 0o600)


class _SqliteBackend:
    """The store's tables on one connection, used only from the runner's thread."""

    def __init__(self, path: str) -> None:
        self.path = path
        with self._errors("open"):
            _private(path)
            self._db = sqlite3.connect(path, timeout=0.5, isolation_level=None)
        try:
            self._setup()
        except BaseException:
            self._db.close()
            raise

    def _setup(self) -> None:
        with self._errors("open"):
            # Exclusive before WAL: the lock is held from the first access, and no shared
            # memory index is needed since no other connection may read.
            self._db.execute("PRAGMA locking_mode=EXCLUSIVE")
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":
                raise StoreError(f"store file {self.path}: cannot use WAL mode (got {mode!r})")
            self._db.execute("PRAGMA synchronous=FULL")
            with self._transaction():
                tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master")}
                if tables and "meta" not in tables:
                    raise StoreError(f"{self.path} is an SQLite file but not a Pallet store")
                if not tables:
                    self._create()
            meta = dict(self._db.execute("SELECT name, value FROM meta").fetchall())
        if meta.get("schema") != _SCHEMA_VERSION:
            raise StoreError(
                f"store file {self.path} has schema {meta.get('schema')}; "
                f"this Pallet reads schema {_SCHEMA_VERSION}"
            )
        self.revision: int = meta["revision"]
        self.compacted: int = meta["compacted"]

    def _create(self) -> None:
        for statement in filter(str.strip, _SCHEMA.split(";")):
            self._db.execute(statement)
        self._db.executemany(
            "INSERT INTO meta (name, value) VALUES (?, ?)",
            [("schema", _SCHEMA_VERSION), ("revision", 1), ("compacted", 0)],
        )

    def get(self, key: str) -> KeyValue | None:
        with self._errors("read"):
            row = self._db.execute(f"SELECT {_KV} FROM kv WHERE key = ?", (key.encode(),))
            found = row.fetchone()
        return _kv(found) if found else None

    def scan(self, prefix: str) -> list[KeyValue]:
        where, args = _prefix_clause(prefix)
        with self._errors("read"):
            rows = self._db.execute(f"SELECT {_KV} FROM kv WHERE {where} ORDER BY key", args)
            return [_kv(row) for row in rows]

    def lease_exists(self, lease: int) -> bool:
        with self._errors("read"):
            return (
                self._db.execute("SELECT 1 FROM leases WHERE id = ?", (lease,)).fetchone()
                is not None
            )

    def lease_keys(self, lease: int) -> list[str]:
        with self._errors("read"):
            rows = self._db.execute("SELECT key FROM kv WHERE lease = ? ORDER BY key", (lease,))
            return [bytes(row[0]).decode() for row in rows]

    def leases(self) -> list[tuple[int, int]]:
        with self._errors("read"):
            return [(i, t) for i, t in self._db.execute("SELECT id, ttl FROM leases ORDER BY id")]

    def commit(
        self, revision: int, events: Sequence[WatchEvent], compacted: int, revoked: int = 0
    ) -> None:
        db = self._db
        with self._errors("write"), self._transaction():
            for event in events:
                kv = event.kv
                if event.type is EventType.PUT:
                    db.execute(
                        f"INSERT OR REPLACE INTO kv ({_KV}) VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            kv.key.encode(),
                            kv.value,
                            kv.create_revision,
                            kv.mod_revision,
                            kv.version,
                            kv.lease,
                        ),
                    )
                else:
                    db.execute("DELETE FROM kv WHERE key = ?", (kv.key.encode(),))
            db.executemany(
                f"INSERT INTO history (seq, {_EVENT}) VALUES ({', '.join('?' * 13)})",
                [_event_row(seq, event) for seq, event in enumerate(events)],
            )
            if revoked:
                db.execute("DELETE FROM leases WHERE id = ?", (revoked,))
            db.execute("UPDATE meta SET value = ? WHERE name = 'revision'", (revision,))
            self._compact(compacted)
        self.revision = revision
        self.compacted = max(self.compacted, compacted)

    def events(self, prefix: str, first: int, last: int) -> list[WatchEvent]:
        where, args = _prefix_clause(prefix)
        with self._errors("read"):
            rows = self._db.execute(
                f"SELECT {_EVENT} FROM history WHERE revision BETWEEN ? AND ? AND {where} "
                "ORDER BY revision, seq",
                (first, last, *args),
            )
            return [_event(row) for row in rows]

    def compact(self, revision: int) -> None:
        with self._errors("write"), self._transaction():
            self._compact(revision)
        self.compacted = max(self.compacted, revision)

    def grant(self, ttl: int) -> int:
        with self._errors("write"), self._transaction():
            lease = self._db.execute("INSERT INTO leases (ttl) VALUES (?)", (ttl,)).lastrowid
        assert lease is not None
        return lease

    def close(self) -> None:
        self._db.close()

    def _compact(self, revision: int) -> None:
        if revision > self.compacted:
            self._db.execute("UPDATE meta SET value = ? WHERE name = 'compacted'", (revision,))
            self._db.execute("DELETE FROM history WHERE revision < ?", (revision,))

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as e:
            if "locked" in str(e):
                raise StoreLocked(self.path) from e
            raise StoreError(f"store file {self.path}: cannot {doing}: {e}") from e
        except sqlite3.Error as e:
            raise StoreError(f"store file {self.path}: cannot {doing}: {e}") from e


def _prefix_clause(prefix: str) -> tuple[str, tuple[bytes, ...]]:
    start = prefix.encode()
    end = prefix_end(start)
    if end is None:
        return "key >= ?", (start,)
    return "key >= ? AND key < ?", (start, end)


def _kv(row: Sequence[Any]) -> KeyValue:
    key, value, create_revision, mod_revision, version, lease = row
    return KeyValue(
        bytes(key).decode(), bytes(value), create_revision, mod_revision, version, lease
    )


def _event_row(seq: int, event: WatchEvent) -> tuple[object, ...]:
    kv, prev = event.kv, event.prev_kv
    prev_fields: tuple[object, ...] = (None,) * 5
    if prev is not None:
        prev_fields = (
            prev.value,
            prev.create_revision,
            prev.mod_revision,
            prev.version,
            prev.lease,
        )
    head = (seq, kv.mod_revision, event.type.value, kv.key.encode(), kv.value)
    return (*head, kv.create_revision, kv.version, kv.lease, *prev_fields)


def _event(row: Sequence[Any]) -> WatchEvent:
    revision, kind, key, value, create_revision, version, lease = row[:7]
    name = bytes(key).decode()
    kv = KeyValue(name, bytes(value), create_revision, revision, version, lease)
    prev = None
    if row[7] is not None:
        prev = KeyValue(name, bytes(row[7]), *row[8:12])
    return WatchEvent(EventType(kind), kv, prev)
