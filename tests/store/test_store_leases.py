"""Conformance: leases granted, kept alive, revoked and expired on a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from pallet.store import (
    Compare,
    EventType,
    LeaseNotFound,
    Put,
    Store,
    open_store,
)

from .conftest import Backend, FakeClock, next_event, nothing_more, take


def test_keys_of_a_lease_vanish_when_it_expires(backend: Backend) -> None:
    async def body(store: Store) -> None:
        lease = await store.grant(10)
        await store.put("agents/a1", b"alive", lease=lease)
        await store.put("agents/a2", b"alive", lease=lease)
        await store.put("config", b"stays")
        start = await store.revision() + 1
        watch = await store.watch("agents/", start)
        await backend.advance(9.9)
        assert await store.expire_leases() == []
        assert (await store.get("agents/a1")) is not None
        await backend.advance(0.1)  # 10 s after the grant
        assert await store.expire_leases() == [lease]
        assert [kv.key for kv in (await store.list(""))[0]] == ["config"]
        events = await take(watch, 2)
        assert [(e.type, e.kv.key, e.revision) for e in events] == [
            (EventType.DELETE, "agents/a1", start),  # one revision, keys in order
            (EventType.DELETE, "agents/a2", start),
        ]
        assert events[0].prev_kv is not None and events[0].prev_kv.lease == lease
        with pytest.raises(LeaseNotFound):
            await store.keepalive(lease)

    backend.run(body)


def test_keepalive_restarts_the_ttl(backend: Backend) -> None:
    async def body(store: Store) -> None:
        lease = await store.grant(10)
        await store.put("k", b"", lease=lease)
        await backend.advance(8)
        assert await store.keepalive(lease) == 10
        await backend.advance(8)  # 16 s after the grant, 8 after the keepalive
        assert await store.expire_leases() == []
        assert await store.get("k") is not None
        await backend.advance(2)
        assert await store.expire_leases() == [lease]
        assert await store.get("k") is None

    backend.run(body)


def test_keepalive_of_an_expired_lease_fails_and_deletes_its_keys(backend: Backend) -> None:
    async def body(store: Store) -> None:
        lease = await store.grant(5)
        await store.put("k", b"", lease=lease)
        await backend.advance(5)
        with pytest.raises(LeaseNotFound) as err:
            await store.keepalive(lease)  # expired but not yet reaped: too late all the same
        assert err.value.lease == lease
        assert await store.get("k") is None
        assert await store.expire_leases() == []

    backend.run(body)


def test_leases_expire_earliest_deadline_first(backend: Backend) -> None:
    async def body(store: Store) -> None:
        late = await store.grant(30)
        early = await store.grant(10)
        middle = await store.grant(20)
        never = await store.grant(100)
        for lease in (late, early, middle, never):
            await store.put(f"l/{lease}", b"", lease=lease)
        await backend.advance(50)
        assert await store.expire_leases() == [early, middle, late]
        assert [kv.key for kv in (await store.list("l/"))[0]] == [f"l/{never}"]

    backend.run(body)


def test_revoke_deletes_the_keys_in_one_revision_with_events(backend: Backend) -> None:
    async def body(store: Store) -> None:
        lease = await store.grant(60)
        other = await store.grant(60)
        await store.put("s/b", b"", lease=lease)
        await store.put("s/a", b"", lease=lease)
        await store.put("s/c", b"", lease=other)
        r = await store.revision()
        watch = await store.watch("s/", r + 1)
        await store.revoke(lease)
        assert await store.revision() == r + 1
        events = await take(watch, 2)
        assert [(e.type, e.kv.key, e.revision) for e in events] == [
            (EventType.DELETE, "s/a", r + 1),
            (EventType.DELETE, "s/b", r + 1),
        ]
        await nothing_more(store, watch, "s/")
        assert (await store.get("s/c")) is not None
        with pytest.raises(LeaseNotFound):
            await store.revoke(lease)
        with pytest.raises(LeaseNotFound):
            await store.put("s/d", b"", lease=lease)

    backend.run(body)


def test_revoking_a_lease_without_keys_writes_nothing(backend: Backend) -> None:
    async def body(store: Store) -> None:
        lease = await store.grant(60)
        r = await store.revision()
        await store.revoke(lease)
        assert await store.revision() == r
        with pytest.raises(LeaseNotFound):
            await store.keepalive(lease)

    backend.run(body)


def test_a_put_moves_a_key_between_leases(backend: Backend) -> None:
    async def body(store: Store) -> None:
        first = await store.grant(10)
        second = await store.grant(100)
        await store.put("moved", b"1", lease=first)
        await store.put("detached", b"1", lease=first)
        await store.put("moved", b"2", lease=second)
        await store.put("detached", b"2")  # no lease: detaches it
        assert (await store.get("moved")).lease == second  # type: ignore[union-attr]
        assert (await store.txn([Compare.lease("detached", "==", 0)])).succeeded
        await store.revoke(first)
        assert [kv.key for kv in (await store.list(""))[0]] == ["detached", "moved"]
        await store.revoke(second)
        assert [kv.key for kv in (await store.list(""))[0]] == ["detached"]

    backend.run(body)


def test_a_deleted_key_is_no_longer_deleted_by_its_old_lease(backend: Backend) -> None:
    async def body(store: Store) -> None:
        lease = await store.grant(10)
        await store.put("k", b"", lease=lease)
        await store.delete("k")
        r = await store.revision()
        await store.revoke(lease)
        assert await store.revision() == r

    backend.run(body)


def test_lease_ids_are_distinct_and_never_reused(backend: Backend) -> None:
    async def body(store: Store) -> None:
        leases = [await store.grant(5) for _ in range(5)]
        for lease in leases:
            await store.revoke(lease)
        again = await store.grant(5)
        assert len(set(leases)) == 5 and again not in leases

    backend.run(body)


def test_a_lease_in_a_transaction_branch(backend: Backend) -> None:
    async def body(store: Store) -> None:
        lease = await store.grant(10)
        result = await store.txn([Compare.absent("leader")], [Put("leader", b"m1", lease=lease)])
        assert result.succeeded
        await backend.advance(10)
        await store.expire_leases()
        assert await store.create("leader", b"m2") is not None  # the old leader's key expired

    backend.run(body)


def test_the_background_task_expires_leases(backend: Backend) -> None:
    clock = FakeClock(1000.0)

    async def main() -> None:
        store = await open_store(backend.url, clock=clock, expiry_interval=0.01)
        try:
            lease = await store.grant(10)
            await store.put("beat", b"", lease=lease)
            watch = await store.watch("beat")
            clock.now += 10
            event = await next_event(watch)  # no explicit expire_leases(): the task did it
            assert (event.type, event.kv.key) == (EventType.DELETE, "beat")
        finally:
            await store.close()

    asyncio.run(main())
