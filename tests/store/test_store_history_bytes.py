"""The embedded stores' history is bounded by bytes as well as revisions, a watcher left
behind by it is told so, and the SQLite file gives back the space compaction frees."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from pallet.store import Compacted, KeyValue, Store, open_store
from pallet.store.budget import HISTORY_FLOOR_BYTES, HistoryBudget
from pallet.store.kv import EventType, WatchEvent
from pallet.store.memory import open_memory
from pallet.store.sqlite import open_sqlite

from .conftest import take

BIG = 64 * 1024
"""A value of this size: 16 of them fill the default budget's floor (1 MiB)."""


def _put(key: str, size: int, revision: int, prev: KeyValue | None = None) -> WatchEvent:
    kv = KeyValue(key, b"v" * size, revision, revision, 1, 0)
    return WatchEvent(EventType.PUT, kv, prev)


def test_the_budget_keeps_the_newest_revisions_that_fit_and_grows_with_the_live_records() -> None:
    budget = HistoryBudget(share=2.0, floor=100)
    budget.add(2, [_put("a", 59, 2)])  # 60 bytes
    budget.add(3, [_put("b", 39, 3)])  # 40: 100 kept, the floor
    assert budget.live == 100 and budget.limit == 200
    assert budget.oldest_kept(0) == 0  # all fit: nothing to drop
    budget.add(4, [_put("c", 149, 4)])  # 150: 250 kept, within twice the 250 live
    assert budget.oldest_kept(0) == 0
    gone = KeyValue("c", b"v" * 149, 4, 4, 1, 0)
    budget.add(5, [WatchEvent(EventType.DELETE, KeyValue("c", b"", 0, 5, 0, 0), gone)])
    assert budget.live == 100 and budget.limit == 200  # the delete shrank the live records
    assert budget.oldest_kept(0) == 3  # 40 + 150 + 1 fit in 200; with 2's 60 they do not
    assert budget.oldest_kept(5) == 5  # an explicit compaction past it wins
    tight = HistoryBudget(share=0.0, floor=10)
    tight.add(2, [_put("a", 99, 2)])
    tight.add(3, [_put("b", 99, 3)])
    assert tight.oldest_kept(0) == 3  # the newest revision is kept whatever its size


def test_a_budget_is_not_negative() -> None:
    with pytest.raises(ValueError):
        HistoryBudget(share=-1.0)


Opener = Callable[[Path], Awaitable[Store]]


def _memory(_: Path) -> Awaitable[Store]:
    return open_memory()


def _sqlite(tmp: Path) -> Awaitable[Store]:
    return open_sqlite(str(tmp / "state.db"))


@pytest.fixture(params=[_memory, _sqlite], ids=["memory", "sqlite"])
def opener(request: pytest.FixtureRequest) -> Opener:
    return request.param  # type: ignore[no-any-return]


def test_a_watcher_behind_the_history_bytes_keep_is_told_it_was_compacted(
    opener: Opener, tmp_path: Path
) -> None:
    """Big values written fewer times than the revision bound (10,000) still push the
    oldest kept revision up: a watcher that has not read them learns it by ``Compacted``,
    as it would from a compaction by revisions, and a new watch from there is refused."""

    async def main() -> None:
        store = await opener(tmp_path)
        try:
            start = await store.put("small", b"1")
            watch = await store.watch("", start)
            for i in range(2 * HISTORY_FLOOR_BYTES // BIG):
                await store.put(f"big/{i % 4}", b"x" * BIG)
            with pytest.raises(Compacted) as err:
                await take(watch, 1)
            assert err.value.requested == start and err.value.oldest > start
            revision = await store.revision()
            assert err.value.oldest > revision - 2 * HISTORY_FLOOR_BYTES // BIG
            with pytest.raises(Compacted):
                await store.watch("", start)
            kept = await store.watch("big/", err.value.oldest)  # from the oldest kept: whole
            assert (await take(kept, 1))[0].revision == err.value.oldest
        finally:
            await store.close()

    asyncio.run(main())


def _file_bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in (db, db.with_name(db.name + "-wal")) if p.exists())


def _live_bytes(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        (live,) = conn.execute("SELECT SUM(LENGTH(key) + LENGTH(value)) FROM kv").fetchone()
    return int(live)


def test_after_many_writes_of_big_values_the_file_stays_a_few_times_its_records(
    tmp_path: Path,
) -> None:
    """20 records of 32 KiB rewritten 100 times (2,000 revisions, under the revision bound):
    the history is bounded by its bytes, so the file stays a few times its records (when
    only revisions bounded it, it was ~100 times)."""
    db = tmp_path / "state.db"
    keys, rounds, value = 20, 100, b"x" * (32 * 1024)

    async def main() -> None:
        store = await open_store(f"sqlite://{db}", expiry_interval=None)
        try:
            for round_ in range(rounds):
                await asyncio.gather(
                    *(store.put(f"app/{i:02d}", value + bytes([round_])) for i in range(keys))
                )
        finally:
            await store.close()

    asyncio.run(main())
    size, live = _file_bytes(db), _live_bytes(db)
    # live 0.66 MB, history at most twice that, one anchor per key: ~4x
    assert size <= 5 * live, (size, live, size / live)


def test_the_space_compaction_frees_is_given_back_to_the_file_system(tmp_path: Path) -> None:
    """Big records, then most of them deleted and the history moved on: the file shrinks
    (free pages are given back a few per write), where it used to stay at its largest."""
    db = tmp_path / "state.db"
    store_url = f"sqlite://{db}?history=50"

    async def fill() -> None:
        store = await open_store(store_url, expiry_interval=None)
        try:
            for round_ in range(3):
                await asyncio.gather(
                    *(store.put(f"big/{i:02d}", bytes([round_]) * BIG) for i in range(40))
                )
        finally:
            await store.close()

    async def empty() -> None:
        store = await open_store(store_url, expiry_interval=None)
        try:
            await store.delete_prefix("big/")
            for i in range(300):
                await store.put(f"small/{i % 10}", b"s" * 100)
        finally:
            await store.close()

    asyncio.run(fill())
    peak = db.stat().st_size  # closed: the WAL is in the file
    asyncio.run(empty())
    after = db.stat().st_size
    assert peak > 2 * 40 * BIG
    assert after < peak / 4, (peak, after)
    with contextlib.closing(sqlite3.connect(db)) as conn:
        free, pages = (
            conn.execute(f"PRAGMA {p}").fetchone()[0] for p in ("freelist_count", "page_count")
        )
    assert free <= max(64, pages // 32), (free, pages)


def test_reopening_a_file_whose_history_is_over_its_budget_compacts_it(tmp_path: Path) -> None:
    db = tmp_path / "state.db"

    async def fill() -> int:
        store = await open_sqlite(str(db), budget=HistoryBudget(share=1000.0))
        try:
            first = await store.put("k", b"0" * BIG)
            for i in range(40):
                await store.put("k", bytes([i]) * BIG)
            watch = await store.watch("", first)  # all of it kept under that budget
            await watch.aclose()
            return first
        finally:
            await store.close()

    async def reopen(first: int) -> None:
        store = await open_sqlite(str(db))
        try:
            with pytest.raises(Compacted) as err:
                await store.watch("", first)
            assert err.value.oldest >= (await store.revision()) - HISTORY_FLOOR_BYTES // BIG
            assert (await store.get("k")) is not None
        finally:
            await store.close()

    asyncio.run(reopen(asyncio.run(fill())))


def test_a_file_made_without_incremental_vacuum_is_converted_when_opened(tmp_path: Path) -> None:
    """Files made before the store gave space back have ``auto_vacuum=NONE``: the first
    open rewrites them once (VACUUM) in INCREMENTAL mode, keeping every record."""
    db = tmp_path / "state.db"

    async def write() -> None:
        store = await open_store(f"sqlite://{db}", expiry_interval=None)
        try:
            await store.put("k", b"v")
        finally:
            await store.close()

    asyncio.run(write())
    with contextlib.closing(sqlite3.connect(db)) as conn:  # as an older Pallet left it
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("PRAGMA auto_vacuum=NONE")
        conn.execute("VACUUM")
        assert conn.execute("PRAGMA auto_vacuum").fetchone() == (0,)

    async def reopen() -> None:
        store = await open_store(f"sqlite://{db}", expiry_interval=None)
        try:
            assert (await store.get("k")) == KeyValue("k", b"v", 2, 2, 1, 0)
        finally:
            await store.close()

    asyncio.run(reopen())
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA auto_vacuum").fetchone() == (2,)
