"""The sqlite backend: reopening, crash safety, the file lock, WAL mode, bad files."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest

from pallet.store import (
    EventType,
    KeyValue,
    LeaseNotFound,
    StoreError,
    StoreLocked,
    WatchEvent,
    open_store,
)
from pallet.store.sqlite import open_sqlite

from .conftest import FakeClock, take


def url(path: Path) -> str:
    return f"sqlite://{path}"


def test_reopen_keeps_revision_keys_history_and_leases(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    clock = FakeClock(1000.0)

    async def first() -> tuple[int, int, int]:
        store = await open_store(url(db), clock=clock, expiry_interval=None)
        await store.put("a", b"1")
        await store.put("a", b"2")
        lease = await store.grant(30)
        await store.put("n/agent", b"up", lease=lease)
        gone = await store.grant(30)
        await store.revoke(gone)
        revision = await store.revision()
        await store.close()
        return revision, lease, gone

    revision, lease, gone = asyncio.run(first())

    async def second() -> None:
        clock.now += 1000  # the deadline restarts from the reopen, not from the grant
        store = await open_store(url(db), clock=clock, expiry_interval=None)
        try:
            assert await store.revision() == revision
            assert await store.get("a") == KeyValue("a", b"2", 2, 3, 2, 0)
            assert (await store.get("n/agent")).lease == lease  # type: ignore[union-attr]
            watch = await store.watch("a", 1)
            assert [e.kv.value for e in await take(watch, 2)] == [b"1", b"2"]
            with pytest.raises(LeaseNotFound):
                await store.keepalive(gone)
            assert await store.expire_leases() == []
            assert await store.keepalive(lease) == 30
            fresh = await store.grant(5)
            assert fresh not in (lease, gone)
            assert await store.put("b", b"") == revision + 1
            clock.now += 30
            assert await store.expire_leases() == [fresh, lease]
            assert await store.get("n/agent") is None
        finally:
            await store.close()

    asyncio.run(second())


def test_the_file_is_in_wal_mode(tmp_path: Path) -> None:
    db = tmp_path / "state.db"

    async def main() -> None:
        store = await open_store(url(db), expiry_interval=None)
        await store.put("k", b"v")
        await store.close()

    asyncio.run(main())
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT value FROM kv").fetchall() == [(b"v",)]


def test_a_second_opener_of_the_same_file_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "state.db"

    async def main() -> None:
        store = await open_store(url(db), expiry_interval=None)
        try:
            with pytest.raises(StoreLocked, match="in use by another process"):
                await open_store(url(db), expiry_interval=None)
            await store.put("still", b"works")
        finally:
            await store.close()
        again = await open_store(url(db), expiry_interval=None)  # free once closed
        assert (await again.get("still")) is not None
        await again.close()

    asyncio.run(main())


def test_unusable_paths_raise_store_errors_naming_the_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    missing_dir = tmp_path / "no" / "such" / "dir.db"

    other = tmp_path / "other.db"
    with contextlib.closing(sqlite3.connect(other)) as conn:
        conn.execute("CREATE TABLE accounts (id INTEGER)")
    future = tmp_path / "future.db"

    async def make_future() -> None:
        store = await open_store(url(future), expiry_interval=None)
        await store.close()

    asyncio.run(make_future())
    with contextlib.closing(sqlite3.connect(future)) as conn, conn:
        conn.execute("UPDATE meta SET value = 99 WHERE name = 'schema'")

    async def main() -> None:
        with pytest.raises(StoreError, match="not a Pallet store"):
            await open_store(url(other), expiry_interval=None)
        with pytest.raises(StoreError, match="has schema 99"):
            await open_store(url(future), expiry_interval=None)
        with pytest.raises(StoreError, match=r"junk\.db"):
            await open_store(url(junk), expiry_interval=None)
        with pytest.raises(StoreError, match=r"dir\.db"):
            await open_store(url(missing_dir), expiry_interval=None)

    asyncio.run(main())


WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from pallet.store import Put, open_store

    async def main():
        store = await open_store("sqlite://" + sys.argv[1], expiry_interval=None)
        i = 0
        while True:
            i += 1
            value = str(i).encode()
            await store.txn([], [Put("a", value), Put("b", value), Put(f"log/{i:06}", value)])
            if i == 20:
                print("ready", flush=True)

    asyncio.run(main())
    """
)


def test_a_killed_writer_leaves_whole_transactions_only(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()

    async def check() -> None:
        store = await open_store(url(db), expiry_interval=None)
        try:
            a, b = await store.get("a"), await store.get("b")
            assert a is not None and b is not None
            n = int(a.value)
            assert n >= 20
            revision = await store.revision()
            # every transaction wrote a, b and one log entry, all at its own revision
            assert b.value == a.value and a.mod_revision == b.mod_revision == revision
            logs, _ = await store.list("log/")
            assert [kv.key for kv in logs] == [f"log/{i:06}" for i in range(1, n + 1)]
            watch = await store.watch("", revision)
            last = await take(watch, 3)
            assert {(e.type, e.kv.key) for e in last} == {
                (EventType.PUT, "a"),
                (EventType.PUT, "b"),
                (EventType.PUT, f"log/{n:06}"),
            }
        finally:
            await store.close()

    asyncio.run(check())


def test_the_store_file_and_its_wal_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    # it holds every app's environment; an older world-readable file is closed too
    old = tmp_path / "old.db"

    async def scenario(db: Path) -> set[int]:
        store = await open_store(url(db), expiry_interval=None)
        try:
            await store.put("a", b"secret")
            return {
                os.stat(p).st_mode & 0o777
                for p in (db, db.with_name(db.name + "-wal"))
                if p.exists()
            }
        finally:
            await store.close()

    assert asyncio.run(scenario(tmp_path / "new.db")) == {0o600}
    asyncio.run(scenario(old))
    old.chmod(0o644)
    assert asyncio.run(scenario(old)) == {0o600}


_SCHEMA_1 = """
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


def test_a_schema_1_file_is_upgraded_keeping_keys_leases_and_every_kept_event(
    tmp_path: Path,
) -> None:
    """The file as the first schema wrote it (each history row with its previous record):
    a 'k' written at 2 and 3, 'gone' written at 4 and deleted at 5, history kept from 3."""
    db = tmp_path / "state.db"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.executescript(_SCHEMA_1)
        conn.executemany(
            "INSERT INTO meta VALUES (?, ?)", [("schema", 1), ("revision", 5), ("compacted", 3)]
        )
        conn.execute("INSERT INTO kv VALUES (?, ?, 2, 3, 2, 1)", (b"k", b"v2"))
        conn.execute("INSERT INTO leases (ttl) VALUES (30)")
        conn.executemany(
            "INSERT INTO history VALUES (?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (3, "PUT", b"k", b"v2", 2, 2, 1, b"v1", 2, 2, 1, 0),
                (4, "PUT", b"gone", b"g", 4, 1, 0, None, None, None, None, None),
                (5, "DELETE", b"gone", b"", 0, 0, 0, b"g", 4, 4, 1, 0),
            ],
        )
        conn.commit()

    async def main() -> None:
        store = await open_store(url(db), expiry_interval=None)
        try:
            assert await store.revision() == 5
            assert await store.get("k") == KeyValue("k", b"v2", 2, 3, 2, 1)
            assert await store.keepalive(1) == 30
            watch = await store.watch("", 3)
            assert await take(watch, 3) == [
                WatchEvent(
                    EventType.PUT, KeyValue("k", b"v2", 2, 3, 2, 1), KeyValue("k", b"v1", 2, 2, 1)
                ),
                WatchEvent(EventType.PUT, KeyValue("gone", b"g", 4, 4, 1), None),
                WatchEvent(
                    EventType.DELETE,
                    KeyValue("gone", b"", 0, 5, 0),
                    KeyValue("gone", b"g", 4, 4, 1),
                ),
            ]
            assert await store.put("k", b"v3", lease=1) == 6
        finally:
            await store.close()

    asyncio.run(main())
    asyncio.run(_reopened(db))


async def _reopened(db: Path) -> None:
    store = await open_store(url(db), expiry_interval=None)
    try:
        assert (await store.get("k")) == KeyValue("k", b"v3", 2, 6, 3, 1)
    finally:
        await store.close()
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone() == (2,)


def test_history_holds_each_record_once_and_the_file_stays_near_its_records(
    tmp_path: Path,
) -> None:
    """Records of an app's size (1.5 KiB), each rewritten many times past the history
    bound: the history keeps the kept revisions' new records (their previous ones are
    read from the row before), plus at most one anchor per key, and the file stays a
    small multiple of what it holds."""
    db = tmp_path / "state.db"
    keys, history, value = 50, 100, b"x" * 1500

    async def main() -> None:
        store = await open_store(f"{url(db)}?history={history}", expiry_interval=None)
        try:
            for round_ in range(10):
                for i in range(keys):
                    await store.put(f"app/{i:03d}", value + str(round_).encode())
        finally:
            await store.close()

    asyncio.run(main())
    with contextlib.closing(sqlite3.connect(db)) as conn:
        (rows,) = conn.execute("SELECT COUNT(*) FROM history").fetchone()
        (live,) = conn.execute("SELECT SUM(LENGTH(key) + LENGTH(value)) FROM kv").fetchone()
    assert history <= rows <= history + keys
    size = sum(p.stat().st_size for p in (db, db.with_name(db.name + "-wal")) if p.exists())
    # the live records, twice them in history, pages' slack and indexes: ~6 here (schema 1,
    # each history row with its previous record, in WITHOUT ROWID tables: ~10)
    assert size <= 8 * live, (size, live, size / live)


async def _one_batch(store: object, *writes: Awaitable[object]) -> list[object]:
    """Run ``writes`` so that they all wait for the same batch: the store's thread is held
    by a job until every one of them is queued."""
    gate = threading.Event()
    held = asyncio.ensure_future(store._runner(gate.wait))  # type: ignore[attr-defined]
    tasks = [asyncio.ensure_future(w) for w in writes]
    await asyncio.sleep(0.05)  # each write queued its transaction and its job
    gate.set()
    await held
    return await asyncio.gather(*tasks, return_exceptions=True)


def test_transactions_that_wait_together_commit_together_each_at_its_own_revision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pallet.store import sqlite as backend_module

    batches = []
    batch = backend_module._SqliteBackend.batch

    def counted(self: object) -> contextlib.AbstractContextManager[None]:
        batches.append(1)
        return batch(self)  # type: ignore[arg-type]

    monkeypatch.setattr(backend_module._SqliteBackend, "batch", counted)
    db = tmp_path / "state.db"

    async def first() -> list[object]:
        store = await open_sqlite(str(db), clock=FakeClock(0.0), expiry_interval=None)
        start = await store.revision()
        batches.clear()
        results = await _one_batch(store, *(store.put(f"k{i}", b"v") for i in range(40)))
        assert sorted(results) == list(range(start + 1, start + 41))  # type: ignore[type-var]
        assert len(batches) == 1, "forty transactions waiting together: one commit"
        await store.close()
        return results

    results = asyncio.run(first())

    async def second() -> None:
        store = await open_store(url(db), clock=FakeClock(0.0), expiry_interval=None)
        try:  # durable: every acknowledged write is there after a reopen
            for i, revision in enumerate(results):
                assert (await store.get(f"k{i}")).mod_revision == revision  # type: ignore[union-attr]
        finally:
            await store.close()

    asyncio.run(second())


def test_a_transaction_that_fails_alone_leaves_the_rest_of_its_batch(tmp_path: Path) -> None:
    async def body() -> None:
        store = await open_sqlite(
            str(tmp_path / "s.db"), clock=FakeClock(0.0), expiry_interval=None
        )
        try:
            start = await store.revision()
            a, bad, c = await _one_batch(
                store, store.put("a", b"1"), store.put("b", b"2", lease=999), store.put("c", b"3")
            )
            assert isinstance(bad, LeaseNotFound)
            assert (a, c) == (start + 1, start + 2)
            assert await store.get("b") is None
        finally:
            await store.close()

    asyncio.run(body())


def test_a_failed_write_fails_its_whole_batch_and_keeps_none_of_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pallet.store import sqlite as backend_module

    commit = backend_module._SqliteBackend.commit

    def failing(self: Any, revision: int, events: Any, *args: Any, **kw: Any) -> None:
        commit(self, revision, events, *args, **kw)
        if any(e.kv.key == "bad" for e in events):
            raise StoreError("disk full (test)")

    async def body() -> None:
        store = await open_sqlite(
            str(tmp_path / "s.db"), clock=FakeClock(0.0), expiry_interval=None
        )
        try:
            start = await store.revision()
            monkeypatch.setattr(backend_module._SqliteBackend, "commit", failing)
            results = await _one_batch(
                store, store.put("a", b"1"), store.put("bad", b"2"), store.put("c", b"3")
            )
            assert all(isinstance(r, StoreError) for r in results), results
            monkeypatch.setattr(backend_module._SqliteBackend, "commit", commit)
            assert await store.revision() == start
            assert [await store.get(k) for k in ("a", "bad", "c")] == [None, None, None]
            assert await store.put("a", b"again") == start + 1  # the store goes on
        finally:
            await store.close()

    asyncio.run(body())
