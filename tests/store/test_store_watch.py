"""Conformance: watches from the past and the live tail, ordering, compaction, closing."""

from __future__ import annotations

import asyncio

import pytest

from pallet.store import (
    Compacted,
    Delete,
    DeletePrefix,
    EventType,
    InvalidArgument,
    KeyValue,
    Put,
    Store,
    StoreClosed,
    WatchEvent,
)

from .conftest import Backend, next_event, nothing_more, take


def test_watch_replays_committed_history_then_follows_live_writes(backend: Backend) -> None:
    async def body(store: Store) -> None:
        r1 = await store.put("a/x", b"1")
        r2 = await store.put("a/x", b"2")
        watch = await store.watch("a/", r1)
        past = await take(watch, 2)
        assert [(e.type, e.kv.value, e.revision) for e in past] == [
            (EventType.PUT, b"1", r1),
            (EventType.PUT, b"2", r2),
        ]
        assert past[1].prev_kv == past[0].kv
        live = asyncio.create_task(next_event(watch))
        await asyncio.sleep(0)  # let the watcher catch up and wait
        r3 = await store.put("a/y", b"3")
        event = await live
        assert event == WatchEvent(EventType.PUT, KeyValue("a/y", b"3", r3, r3, 1, 0), None)
        await watch.aclose()

    backend.run(body)


def test_watch_start_is_inclusive_like_etcd(backend: Backend) -> None:
    async def body(store: Store) -> None:
        await store.put("k", b"1")
        r2 = await store.put("k", b"2")
        watch = await store.watch("k", r2)
        assert (await next_event(watch)).revision == r2
        await nothing_more(store, watch, "k")

    backend.run(body)


def test_watch_without_start_sees_only_later_writes(backend: Backend) -> None:
    async def body(store: Store) -> None:
        await store.put("k", b"old")
        watch = await store.watch("k")
        r = await store.put("k", b"new")  # committed before the first __anext__
        event = await next_event(watch)
        assert (event.kv.value, event.revision) == (b"new", r)

    backend.run(body)


def test_list_then_watch_from_its_revision_plus_one_misses_nothing(backend: Backend) -> None:
    async def body(store: Store) -> None:
        await store.put("n/1", b"a")
        kvs, revision = await store.list("n/")
        r = await store.put("n/2", b"b")
        watch = await store.watch("n/", revision + 1)
        event = await next_event(watch)
        assert [kv.key for kv in kvs] == ["n/1"]
        assert (event.kv.key, event.revision) == ("n/2", r)

    backend.run(body)


def test_watch_filters_by_prefix_and_keeps_commit_order(backend: Backend) -> None:
    async def body(store: Store) -> None:
        start = await store.revision() + 1
        await store.put("apps/1", b"a")
        await store.put("nodes/1", b"n")
        await store.put("apps/2", b"b")
        await store.delete("apps/1")
        await store.put("appsx", b"not under apps/")
        watch = await store.watch("apps/", start)
        events = await take(watch, 3)
        assert [(e.type, e.kv.key) for e in events] == [
            (EventType.PUT, "apps/1"),
            (EventType.PUT, "apps/2"),
            (EventType.DELETE, "apps/1"),
        ]
        assert [e.revision for e in events] == sorted(e.revision for e in events)
        await nothing_more(store, watch, "apps/")

    backend.run(body)


def test_delete_events_carry_a_tombstone_and_the_previous_value(backend: Backend) -> None:
    async def body(store: Store) -> None:
        put = await store.put("k", b"v")
        watch = await store.watch("k", put + 1)
        assert await store.delete("k") is True
        event = await next_event(watch)
        assert event.type is EventType.DELETE
        assert event.kv == KeyValue("k", b"", 0, event.revision, 0, 0)
        assert event.prev_kv == KeyValue("k", b"v", put, put, 1, 0)

    backend.run(body)


def test_one_transaction_gives_events_at_one_revision_in_operation_order(backend: Backend) -> None:
    async def body(store: Store) -> None:
        await store.put("t/b", b"0")
        await store.put("t/a", b"0")
        await store.put("t/c", b"0")
        start = await store.revision() + 1
        result = await store.txn([], [Put("t/z", b"1"), DeletePrefix("t/a"), Put("t/b", b"2")])
        result2 = await store.txn([], [DeletePrefix("t/"), Delete("t/nothing")])
        watch = await store.watch("t/", start)
        events = await take(watch, 3 + 3)
        assert [(e.type, e.kv.key, e.revision) for e in events] == [
            (EventType.PUT, "t/z", result.revision),
            (EventType.DELETE, "t/a", result.revision),
            (EventType.PUT, "t/b", result.revision),
            (EventType.DELETE, "t/b", result2.revision),  # a prefix deletes in key order
            (EventType.DELETE, "t/c", result2.revision),
            (EventType.DELETE, "t/z", result2.revision),
        ]

    backend.run(body)


def test_many_watchers_see_the_same_sequence(backend: Backend) -> None:
    async def body(store: Store) -> None:
        start = await store.revision() + 1
        watches = [await store.watch("w/", start) for _ in range(5)]
        readers = [asyncio.create_task(take(w, 40)) for w in watches]
        for i in range(40):
            await store.put(f"w/{i % 7}", str(i).encode())
        seen = await asyncio.gather(*readers)
        expected = [(f"w/{i % 7}", str(i).encode()) for i in range(40)]
        for events in seen:
            assert [(e.kv.key, e.kv.value) for e in events] == expected

    backend.run(body)


def test_watch_from_a_future_revision_waits_for_it(backend: Backend) -> None:
    async def body(store: Store) -> None:
        r = await store.revision()
        watch = await store.watch("f", r + 3)
        await store.put("f", b"1")
        await store.put("f", b"2")
        await store.put("f", b"3")
        event = await next_event(watch)
        assert (event.kv.value, event.revision) == (b"3", r + 3)

    backend.run(body)


def test_watch_of_compacted_history_raises_with_the_oldest_revision(backend: Backend) -> None:
    async def body(store: Store) -> None:
        first = await store.put("c", b"1")
        await store.put("c", b"2")
        kept = await store.put("c", b"3")
        await store.compact(kept)
        with pytest.raises(Compacted) as err:
            await store.watch("c", first)
        assert (err.value.requested, err.value.oldest) == (first, kept)
        assert f"oldest revision still kept is {kept}" in str(err.value)
        watch = await store.watch("c", kept)  # the compaction revision itself is still there
        assert (await next_event(watch)).kv.value == b"3"
        with pytest.raises(Compacted):
            await store.compact(kept)  # already compacted, as etcd says
        with pytest.raises(InvalidArgument, match="future"):
            await store.compact(kept + 1)

    backend.run(body)


def test_history_is_bounded(backend: Backend) -> None:
    async def body(store: Store) -> None:
        revisions = [await store.put("h", str(i).encode()) for i in range(10)]
        with pytest.raises(Compacted) as err:
            await store.watch("h", revisions[-4])
        assert err.value.oldest == revisions[-3]  # three revisions kept
        watch = await store.watch("h", revisions[-3])
        assert [e.kv.value for e in await take(watch, 3)] == [b"7", b"8", b"9"]

    backend.run(body, history=3)


def test_prev_kv_is_reported_even_when_the_previous_write_is_older_than_the_history(
    backend: Backend,
) -> None:
    """As etcd: an event's previous record is the key as of the revision before it, kept
    by compaction for every event still in the history (etcd keeps each key's newest
    revision at the compaction point)."""

    async def body(store: Store) -> None:
        put = await store.put("p/a", b"1")
        await store.put("p/b", b"1")
        for i in range(6):  # far past the three revisions kept
            await store.put("other", str(i).encode())
        again = await store.put("p/a", b"2")
        gone = (await store.txn((), [Delete("p/b")])).revision
        for i in range(2):  # the first write of p/a's predecessor chain leaves the window
            await store.put("other", str(i).encode())
        watch = await store.watch("p/", again)
        events = await take(watch, 2)
        assert events[0] == WatchEvent(
            EventType.PUT,
            KeyValue("p/a", b"2", put, again, 2, 0),
            KeyValue("p/a", b"1", put, put, 1, 0),
        )
        assert events[1].type is EventType.DELETE
        assert events[1].prev_kv == KeyValue("p/b", b"1", put + 1, put + 1, 1, 0)
        assert events[1].kv == KeyValue("p/b", b"", 0, gone, 0, 0)

    backend.run(body, history=4)


def test_prev_kv_follows_deletes_and_re_creations_through_compaction(backend: Backend) -> None:
    async def body(store: Store) -> None:
        first = await store.put("q", b"1")
        await store.delete("q")
        created = await store.put("q", b"2")
        for i in range(4):
            await store.put("other", str(i).encode())
        updated = await store.put("q", b"3")
        await store.compact(updated)
        await store.put("other", b"x")
        watch = await store.watch("q", updated)
        event = await next_event(watch)
        assert event.prev_kv == KeyValue("q", b"2", created, created, 1, 0)
        assert event.kv == KeyValue("q", b"3", created, updated, 2, 0)
        deleted = (await store.txn((), [Delete("q")])).revision
        recreated = await store.put("q", b"4")
        assert [(e.type, e.prev_kv) for e in await take(watch, 2)] == [
            (EventType.DELETE, KeyValue("q", b"3", created, updated, 2, 0)),
            (EventType.PUT, None),
        ]
        assert first < deleted < recreated

    backend.run(body, history=3)


def test_a_watcher_that_falls_behind_the_history_gets_compacted(backend: Backend) -> None:
    async def body(store: Store) -> None:
        start = await store.revision() + 1
        watch = await store.watch("", start)
        for i in range(6):
            await store.put("k", str(i).encode())
        with pytest.raises(Compacted) as err:
            await next_event(watch)
        assert err.value.requested == start

    backend.run(body, history=2)


def test_aclose_ends_a_waiting_watch(backend: Backend) -> None:
    async def body(store: Store) -> None:
        watch = await store.watch("x")
        waiting = asyncio.create_task(anext(watch, None))
        await asyncio.sleep(0)
        await watch.aclose()
        assert await asyncio.wait_for(waiting, 5) is None
        async with await store.watch("x") as scoped:
            pass
        assert await anext(scoped, None) is None

    backend.run(body)


def test_closing_the_store_ends_watches_with_store_closed(backend: Backend) -> None:
    async def body(store: Store) -> None:
        watch = await store.watch("x")
        waiting = asyncio.create_task(anext(watch))
        await asyncio.sleep(0)
        await store.close()
        with pytest.raises(StoreClosed):
            await asyncio.wait_for(waiting, 5)
        with pytest.raises(StoreClosed):
            await store.put("x", b"")

    backend.run(body)


def test_watch_reads_long_histories_in_batches(backend: Backend) -> None:
    async def body(store: Store) -> None:
        start = await store.revision() + 1
        for i in range(300):  # more revisions than one fetch reads
            await store.put("other", b"")
            if i % 50 == 0:
                await store.put("mine", str(i).encode())
        watch = await store.watch("mine", start)
        events = await take(watch, 6)
        assert [e.kv.value for e in events] == [str(i).encode() for i in range(0, 300, 50)]

    backend.run(body)
