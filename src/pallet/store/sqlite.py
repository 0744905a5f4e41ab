"""The embedded default backend: one SQLite file in WAL mode; does file I/O on one thread.

Each commit is one SQLite transaction (keys, history, revision and leases together), so a
killed master leaves either all of a write or none of it. The file is opened with an
exclusive lock: a second process (a second master) cannot open it while this one runs.

The history holds each event's new record only, as etcd's MVCC does: an event's previous
record (its ``prev_kv``) is the key's newest history row before it. So that this row is
there for every event still kept, compaction keeps, below the oldest kept revision, one
*anchor* per key (its newest row there, if a PUT) while the key has an event at or after
that revision, and a commit whose previous record was already dropped writes it back as
an anchor. Anchors are never reported as events (they are older than any watch may start).

The file gives back to the file system the pages compaction frees, a few per write
(``auto_vacuum=INCREMENTAL``; a file made before is converted once, when opened).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from pallet.store.budget import HistoryBudget
from pallet.store.embedded import DEFAULT_HISTORY, Clock, EmbeddedStore, ThreadRunner
from pallet.store.errors import StoreError, StoreLocked
from pallet.store.kv import EventType, KeyValue, WatchEvent
from pallet.store.protocol import Store
from pallet.store.validate import prefix_end

__all__ = ["open_sqlite"]

_SCHEMA_VERSION = 2
"""2: history rows without the previous record (derived from the key's preceding row), and
records in rowid tables. (Schema 1 kept them in WITHOUT ROWID tables, whose rows should be
under a twentieth of a page: a record of 1-2 KiB, an app's, spilled most of itself to an
overflow page of its own, and the file was three times its records.)"""

_RECLAIM_STEP = 64
"""Free pages given back to the file system per write transaction, at most: enough to keep
up with what compaction frees, small enough not to stall the write (~0.25 MiB moved)."""

_RECLAIM_SHARE = 32
"""Free pages are given back once more than 1/32 of the file is free (fewer are reused by
the next writes anyway, which is cheaper than moving pages to free them)."""

_WAL_LIMIT = 4 << 20
"""Bytes the WAL is cut back to after a checkpoint: a little over what it holds between
two checkpoints (1,000 pages, SQLite's default), so that it is rewritten in place rather
than regrown each time (an append costs the sync more than an overwrite); without it, the
WAL stays at the size of the largest batch ever written (8-9 MB after the mixed bench)."""

_META = "CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID"
_LEASES = "CREATE TABLE leases (id INTEGER PRIMARY KEY AUTOINCREMENT, ttl INTEGER NOT NULL)"
_RECORDS = (
    """CREATE TABLE kv (
    key BLOB PRIMARY KEY, value BLOB NOT NULL, create_revision INTEGER NOT NULL,
    mod_revision INTEGER NOT NULL, version INTEGER NOT NULL, lease INTEGER NOT NULL
)""",
    "CREATE INDEX kv_by_lease ON kv (lease, key) WHERE lease != 0",
    """CREATE TABLE history (
    revision INTEGER NOT NULL, key BLOB NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL,
    value BLOB NOT NULL, create_revision INTEGER NOT NULL, version INTEGER NOT NULL,
    lease INTEGER NOT NULL, PRIMARY KEY (revision, key)
)""",
    "CREATE INDEX history_by_key ON history (key, revision)",
)

_KV = "key, value, create_revision, mod_revision, version, lease"
_ROW = "revision, key, seq, type, value, create_revision, version, lease"

# One event and its previous record: the key's newest row before it (none for a PUT that
# created the key). Keys are unique within a revision, and at most one event per key is
# at a revision: a transaction may not write one key twice.
_EVENTS = """
SELECT h.revision, h.type, h.key, h.value, h.create_revision, h.version, h.lease,
       p.value, p.create_revision, p.revision, p.version, p.lease
FROM history AS h LEFT JOIN history AS p
  ON p.key = h.key AND NOT (h.type = 'PUT' AND h.version = 1) AND p.revision = (
    SELECT MAX(q.revision) FROM history AS q WHERE q.key = h.key AND q.revision < h.revision
  )
WHERE h.revision BETWEEN ? AND ? AND {where}
ORDER BY h.revision, h.seq
"""


async def open_sqlite(
    path: str,
    *,
    clock: Clock = time.monotonic,
    history: int = DEFAULT_HISTORY,
    expiry_interval: float | None = None,
    budget: HistoryBudget | None = None,
) -> Store:
    """The store in the SQLite file at ``path``, created if missing (its directory must exist)."""
    runner = ThreadRunner("pallet-sqlite")
    try:
        backend = await runner(lambda: _SqliteBackend(path))
    except BaseException:
        await runner.shutdown()
        raise
    store = EmbeddedStore(
        f"sqlite:{path}", backend, runner, clock=clock, history=history, budget=budget
    )
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


_INCREMENTAL = 2
"""``PRAGMA auto_vacuum``'s answer for INCREMENTAL."""


class _SqliteBackend:
    """The store's tables on one connection, used only from the runner's thread."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._batching = False
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
            # Before WAL mode writes a new file's header: so that it can give back the
            # pages compaction frees (an existing file keeps its mode: see below).
            self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":
                raise StoreError(f"store file {self.path}: cannot use WAL mode (got {mode!r})")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(f"PRAGMA journal_size_limit={_WAL_LIMIT}")
            with self._transaction():
                tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master")}
                if tables and "meta" not in tables:
                    raise StoreError(f"{self.path} is an SQLite file but not a Pallet store")
                if not tables:
                    self._create()
                elif self._schema() == 1:
                    self._upgrade_from_1()
            meta = dict(self._db.execute("SELECT name, value FROM meta").fetchall())
        if meta.get("schema") != _SCHEMA_VERSION:
            raise StoreError(
                f"store file {self.path} has schema {meta.get('schema')}; "
                f"this Pallet reads schema {_SCHEMA_VERSION}"
            )
        with self._errors("open"):
            if self._db.execute("PRAGMA auto_vacuum").fetchone()[0] != _INCREMENTAL:
                # A file made before: the mode takes one rewrite of the whole file, once.
                self._db.execute("VACUUM")
        self.revision: int = meta["revision"]
        self.compacted: int = meta["compacted"]

    def _create(self) -> None:
        for statement in (_META, _LEASES, *_RECORDS):
            self._db.execute(statement)
        self._db.executemany(
            "INSERT INTO meta (name, value) VALUES (?, ?)",
            [("schema", _SCHEMA_VERSION), ("revision", 1), ("compacted", 0)],
        )

    def _schema(self) -> object:
        row = self._db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
        return None if row is None else row[0]

    def _upgrade_from_1(self) -> None:
        """Schema 1 kept each event's previous record in its row, in WITHOUT ROWID tables:
        copy the records into the new tables, and the previous records older than the kept
        history as anchors."""
        db = self._db
        db.execute("DROP INDEX kv_by_lease")
        db.execute("ALTER TABLE kv RENAME TO kv_1")
        db.execute("ALTER TABLE history RENAME TO history_1")
        for statement in _RECORDS:
            db.execute(statement)
        db.execute(f"INSERT INTO kv ({_KV}) SELECT {_KV} FROM kv_1")
        db.execute(
            f"INSERT INTO history ({_ROW}) SELECT revision, key, seq, type, value, "
            "create_revision, version, lease FROM history_1"
        )
        db.execute(
            f"INSERT OR IGNORE INTO history ({_ROW}) SELECT prev_mod_revision, key, 0, 'PUT', "
            "prev_value, prev_create_revision, prev_version, prev_lease FROM history_1 "
            "WHERE prev_value IS NOT NULL"
        )
        db.execute("DROP TABLE kv_1")
        db.execute("DROP TABLE history_1")
        db.execute("UPDATE meta SET value = 2 WHERE name = 'schema'")

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
                f"INSERT INTO history ({_ROW}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [_row(seq, event.type, event.kv) for seq, event in enumerate(events)],
            )
            # A previous record older than what is kept may be gone: write it back as the
            # anchor this event's prev_kv is read from (unchanged if it is still there).
            floor = max(self.compacted, compacted)
            db.executemany(
                f"INSERT OR IGNORE INTO history ({_ROW}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    _row(0, EventType.PUT, e.prev_kv)
                    for e in events
                    if e.prev_kv is not None and e.prev_kv.mod_revision < floor
                ],
            )
            if revoked:
                db.execute("DELETE FROM leases WHERE id = ?", (revoked,))
            db.execute("UPDATE meta SET value = ? WHERE name = 'revision'", (revision,))
            self._compact(compacted)
            self._reclaim()
        self.revision = revision
        self.compacted = max(self.compacted, compacted)

    def events(self, prefix: str, first: int, last: int) -> list[WatchEvent]:
        where, args = _prefix_clause(prefix, "h.key")
        with self._errors("read"):
            rows = self._db.execute(_EVENTS.format(where=where), (first, last, *args))
            return [_event(row) for row in rows]

    def history_sizes(self) -> list[tuple[int, int]]:
        with self._errors("read"):
            return self._db.execute(
                "SELECT revision, SUM(LENGTH(key) + LENGTH(value)) FROM history "
                "WHERE revision >= ? GROUP BY revision ORDER BY revision",
                (self.compacted,),
            ).fetchall()

    def live_bytes(self) -> int:
        with self._errors("read"):
            (size,) = self._db.execute(
                "SELECT COALESCE(SUM(LENGTH(key) + LENGTH(value)), 0) FROM kv"
            ).fetchone()
        return int(size)

    def compact(self, revision: int) -> None:
        with self._errors("write"), self._transaction():
            self._compact(revision)
            self._reclaim()
        self.compacted = max(self.compacted, revision)

    def grant(self, ttl: int) -> int:
        with self._errors("write"), self._transaction():
            lease = self._db.execute("INSERT INTO leases (ttl) VALUES (?)", (ttl,)).lastrowid
        assert lease is not None
        return lease

    def close(self) -> None:
        self._db.close()

    def _compact(self, revision: int) -> None:
        """Drop the history before ``revision`` but the anchors its events need: of each
        key that had an event in the dropped revisions, its newest row there is kept if it
        is a PUT and the key has an event at ``revision`` or later (that event's prev_kv)."""
        if revision <= self.compacted:
            return
        db = self._db
        db.execute("UPDATE meta SET value = ? WHERE name = 'compacted'", (revision,))
        keys = db.execute(
            "SELECT DISTINCT key FROM history WHERE revision >= ? AND revision < ?",
            (self.compacted, revision),
        ).fetchall()
        for (key,) in keys:
            newest = db.execute(
                "SELECT revision, type FROM history WHERE key = ? AND revision < ? "
                "ORDER BY revision DESC LIMIT 1",
                (key, revision),
            ).fetchone()
            assert newest is not None
            kept, kind = newest
            if (
                kind != EventType.PUT.value
                or not db.execute(
                    "SELECT 1 FROM history WHERE key = ? AND revision >= ? LIMIT 1", (key, revision)
                ).fetchone()
            ):
                kept += 1
            db.execute("DELETE FROM history WHERE key = ? AND revision < ?", (key, kept))

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Every commit inside is part of one SQLite transaction, made durable by one sync
        at the end (group commit); if anything inside fails, nothing of it is kept and the
        revision is as before."""
        revision, compacted = self.revision, self.compacted
        with self._errors("write"):
            self._db.execute("BEGIN IMMEDIATE")
        self._batching = True
        try:
            yield
            with self._errors("write"):
                self._db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            self.revision, self.compacted = revision, compacted
            raise
        finally:
            self._batching = False

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        if self._batching:
            yield  # part of the batch's transaction: it commits or rolls back the whole
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _reclaim(self) -> None:
        """Give back a few free pages, in the write's transaction, when many are free
        (compaction frees them; a few per write, so that no write waits for a VACUUM)."""
        db = self._db
        (free,) = db.execute("PRAGMA freelist_count").fetchone()
        if (
            free > _RECLAIM_STEP
            and free * _RECLAIM_SHARE > db.execute("PRAGMA page_count").fetchone()[0]
        ):
            # One page per run: Python's sqlite3 steps a statement without result columns
            # once, and the pragma frees one page per step (executescript, which steps to
            # the end, would commit the transaction first).
            for _ in range(_RECLAIM_STEP):
                db.execute("PRAGMA incremental_vacuum(1)")

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


def _prefix_clause(prefix: str, column: str = "key") -> tuple[str, tuple[bytes, ...]]:
    start = prefix.encode()
    end = prefix_end(start)
    if end is None:
        return f"{column} >= ?", (start,)
    return f"{column} >= ? AND {column} < ?", (start, end)


def _kv(row: Sequence[Any]) -> KeyValue:
    key, value, create_revision, mod_revision, version, lease = row
    return KeyValue(
        bytes(key).decode(), bytes(value), create_revision, mod_revision, version, lease
    )


def _row(seq: int, kind: EventType, kv: KeyValue) -> tuple[object, ...]:
    """A history row: the record as of its revision (a tombstone for a DELETE)."""
    return (
        kv.mod_revision,
        kv.key.encode(),
        seq,
        kind.value,
        kv.value,
        kv.create_revision,
        kv.version,
        kv.lease,
    )


def _event(row: Sequence[Any]) -> WatchEvent:
    revision, kind, key, value, create_revision, version, lease = row[:7]
    name = bytes(key).decode()
    kv = KeyValue(name, bytes(value), create_revision, revision, version, lease)
    prev = None
    if row[7] is not None:
        prev = KeyValue(name, bytes(row[7]), *row[8:12])
    elif kind != EventType.PUT.value or version != 1:
        raise StoreError(f"the history has no record of {name!r} before revision {revision}")
    return WatchEvent(EventType(kind), kv, prev)
