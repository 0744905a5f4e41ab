"""Conformance: revisions, reads, writes, compare-and-set and transactions, on every backend."""

from __future__ import annotations

import pytest

from pallet.store import (
    MAX_TXN_BYTES,
    MAX_TXN_OPS,
    Compare,
    Delete,
    DeletePrefix,
    DeleteResponse,
    Get,
    GetPrefix,
    GetPrefixResponse,
    GetResponse,
    InvalidArgument,
    KeyValue,
    LeaseNotFound,
    Put,
    PutResponse,
    Store,
)

from .conftest import Backend


def test_new_store_is_empty_at_revision_one(backend: Backend) -> None:
    async def body(store: Store) -> None:
        assert await store.revision() == 1
        assert await store.list() == ([], 1)
        assert await store.get("a") is None

    backend.run(body)


def test_each_write_raises_the_revision_by_one_and_is_stamped_with_it(backend: Backend) -> None:
    async def body(store: Store) -> None:
        r0 = await store.revision()
        assert await store.put("a", b"1") == r0 + 1
        assert await store.put("b", b"2") == r0 + 2
        assert await store.put("a", b"3") == r0 + 3
        assert await store.revision() == r0 + 3
        # a: created at r0+1, written twice; b: created and written at r0+2
        assert await store.get("a") == KeyValue("a", b"3", r0 + 1, r0 + 3, 2, 0)
        assert await store.get("b") == KeyValue("b", b"2", r0 + 2, r0 + 2, 1, 0)

    backend.run(body)


def test_delete_then_put_starts_a_new_life_of_the_key(backend: Backend) -> None:
    async def body(store: Store) -> None:
        r0 = await store.revision()
        await store.put("a", b"1")
        await store.put("a", b"2")
        assert await store.delete("a") is True
        assert await store.get("a") is None
        await store.put("a", b"3")
        # the new life: created at r0+4, version back to 1
        assert await store.get("a") == KeyValue("a", b"3", r0 + 4, r0 + 4, 1, 0)

    backend.run(body)


def test_writes_that_change_nothing_keep_the_revision(backend: Backend) -> None:
    async def body(store: Store) -> None:
        await store.put("a", b"1")
        r = await store.revision()
        assert await store.delete("missing") is False
        assert await store.delete_prefix("nothing/") == 0
        result = await store.txn((), (Get("a"), GetPrefix("")))
        assert result.revision == r
        assert await store.revision() == r

    backend.run(body)


def test_list_returns_the_prefix_in_byte_order_with_the_revision(backend: Backend) -> None:
    async def body(store: Store) -> None:
        for key in ["apps/b", "apps/a", "apps", "apps/a/1", "appsx", "nodes/1", "é", "z"]:
            await store.put(key, key.encode())
        kvs, revision = await store.list("apps/")
        assert [kv.key for kv in kvs] == ["apps/a", "apps/a/1", "apps/b"]
        assert revision == await store.revision()
        everything, _ = await store.list("")
        # UTF-8 byte order: "é" (0xc3 0xa9) sorts after "z" (0x7a)
        assert [kv.key for kv in everything] == [
            "apps",
            "apps/a",
            "apps/a/1",
            "apps/b",
            "appsx",
            "nodes/1",
            "z",
            "é",
        ]

    backend.run(body)


def test_delete_prefix_deletes_exactly_the_prefix_in_one_revision(backend: Backend) -> None:
    async def body(store: Store) -> None:
        for key in ["t/1", "t/2", "t/3", "t", "u/1"]:
            await store.put(key, b"x")
        r = await store.revision()
        result = await store.txn((), (DeletePrefix("t/"),))
        assert result.revision == r + 1
        (response,) = result.responses
        assert isinstance(response, DeleteResponse)
        assert [kv.key for kv in response.deleted] == ["t/1", "t/2", "t/3"]
        kvs, _ = await store.list("")
        assert [kv.key for kv in kvs] == ["t", "u/1"]
        assert await store.delete_prefix("u") == 1

    backend.run(body)


def test_create_only_if_absent(backend: Backend) -> None:
    async def body(store: Store) -> None:
        r = await store.create("leader", b"m1")
        assert r == await store.revision()
        assert await store.create("leader", b"m2") is None
        kv = await store.get("leader")
        assert kv is not None and kv.value == b"m1"

    backend.run(body)


def test_update_is_compare_and_set_on_mod_revision(backend: Backend) -> None:
    async def body(store: Store) -> None:
        first = await store.put("k", b"1")
        second = await store.update("k", b"2", mod_revision=first)
        assert second == first + 1
        assert await store.update("k", b"3", mod_revision=first) is None  # stale
        kv = await store.get("k")
        assert kv is not None and (kv.value, kv.mod_revision) == (b"2", second)
        assert await store.update("gone", b"x", mod_revision=first) is None
        assert await store.get("gone") is None

    backend.run(body)


def test_failing_compare_runs_the_failure_branch_and_changes_nothing(backend: Backend) -> None:
    async def body(store: Store) -> None:
        await store.put("a", b"1")
        await store.put("b", b"1")
        before = await store.list("")
        result = await store.txn(
            [Compare.value("a", "==", b"1"), Compare.value("b", "==", b"other")],
            [Put("a", b"new"), Put("c", b"new"), Delete("b")],
            [Get("a")],
        )
        assert result.succeeded is False
        assert result.revision == before[1]
        assert result.responses == (GetResponse(before[0][0]),)
        assert await store.list("") == before

    backend.run(body)


def test_successful_txn_writes_everything_at_one_revision(backend: Backend) -> None:
    async def body(store: Store) -> None:
        await store.put("gone", b"x")
        await store.put("old", b"1")
        r = await store.revision()
        result = await store.txn(
            [Compare.exists("old"), Compare.absent("new")],
            [Put("new", b"n"), Put("old", b"2"), Delete("gone"), Get("new"), GetPrefix("")],
        )
        assert result.succeeded and result.revision == r + 1
        put_new, put_old, deleted, got, listed = result.responses
        assert put_new == PutResponse(None)
        assert isinstance(put_old, PutResponse) and put_old.prev_kv is not None
        assert put_old.prev_kv.value == b"1"
        assert isinstance(deleted, DeleteResponse) and [kv.key for kv in deleted.deleted] == [
            "gone"
        ]
        new = KeyValue("new", b"n", r + 1, r + 1, 1, 0)
        assert got == GetResponse(new)  # reads see the branch's earlier writes
        assert isinstance(listed, GetPrefixResponse)
        assert [(kv.key, kv.mod_revision) for kv in listed.kvs] == [("new", r + 1), ("old", r + 1)]
        assert await store.get("new") == new

    backend.run(body)


@pytest.mark.parametrize(
    ("compare", "holds"),
    [
        (Compare.version("k", "==", 2), True),
        (Compare.version("k", "!=", 2), False),
        (Compare.version("k", ">", 1), True),
        (Compare.version("k", "<", 2), False),
        (Compare.create_revision("k", "<", 10**9), True),
        (Compare.mod_revision("k", ">", 10**9), False),
        (Compare.value("k", "==", b"v2"), True),
        (Compare.value("k", "<", b"v3"), True),  # bytes compare
        (Compare.value("k", ">", b"v2"), False),
        (Compare.lease("k", "==", 0), True),
        (Compare.exists("k"), True),
        (Compare.absent("k"), False),
        (Compare.absent("missing"), True),
        (Compare.version("missing", "==", 0), True),  # a missing key reads as zeros
        (Compare.mod_revision("missing", "==", 0), True),
        (Compare.create_revision("missing", ">", 0), False),
        (Compare.value("missing", "==", b""), False),  # except its value: never equal
        (Compare.value("missing", "!=", b"x"), False),
    ],
)
def test_compare_targets_and_ops(backend: Backend, compare: Compare, holds: bool) -> None:
    async def body(store: Store) -> None:
        await store.put("k", b"v1")
        await store.put("k", b"v2")
        result = await store.txn([compare], [Get("k")], [])
        assert result.succeeded is holds
        assert len(result.responses) == (1 if holds else 0)

    backend.run(body)


def test_compare_mod_revision_against_the_real_revision(backend: Backend) -> None:
    async def body(store: Store) -> None:
        r = await store.put("k", b"v")
        assert (await store.txn([Compare.mod_revision("k", "==", r)])).succeeded
        assert (await store.txn([Compare.create_revision("k", "==", r)])).succeeded
        assert not (await store.txn([Compare.mod_revision("k", "==", r - 1)])).succeeded

    backend.run(body)


@pytest.mark.parametrize(
    "ops",
    [
        [Put("a", b"1"), Put("a", b"2")],
        [Put("a", b"1"), Delete("a")],
        [Delete("a"), Put("a", b"1")],
        [DeletePrefix("a/"), Put("a/b", b"1")],
        [Put("x", b"1"), DeletePrefix("")],
    ],
)
def test_branch_that_writes_a_key_twice_is_refused_like_etcd(backend: Backend, ops: list) -> None:
    async def body(store: Store) -> None:
        r = await store.revision()
        with pytest.raises(InvalidArgument, match="on_failure: key") as err:
            await store.txn([], [], ops)
        assert err.value.argument == "on_failure"
        assert await store.revision() == r

    backend.run(body)


def test_deleting_twice_and_reading_after_writing_are_allowed(backend: Backend) -> None:
    async def body(store: Store) -> None:
        await store.put("a/1", b"1")
        result = await store.txn([], [Delete("a/1"), DeletePrefix("a/"), Get("a/1")])
        assert result.responses[1] == DeleteResponse(())  # already gone in this branch
        assert result.responses[2] == GetResponse(None)

    backend.run(body)


def test_too_many_operations_are_refused(backend: Backend) -> None:
    async def body(store: Store) -> None:
        ops = [Get(f"k{i}") for i in range(MAX_TXN_OPS + 1)]
        with pytest.raises(InvalidArgument, match=f"at most {MAX_TXN_OPS}"):
            await store.txn([], ops)
        assert len((await store.txn([], ops[:MAX_TXN_OPS])).responses) == MAX_TXN_OPS

    backend.run(body)


def test_too_many_bytes_are_refused_on_every_backend(backend: Backend) -> None:
    # Pallet's etcd takes MAX_TXN_BYTES of keys and values (in base64 and JSON); the
    # other backends refuse what it would, so a decision that fits one fits all.
    async def body(store: Store) -> None:
        value = b"x" * (MAX_TXN_BYTES // 4)
        ops = [Put(f"k{i}", value) for i in range(4)]
        with pytest.raises(InvalidArgument, match=f"at most {MAX_TXN_BYTES}"):
            await store.txn([], ops)
        assert (await store.list("k"))[0] == []
        await store.txn([], [Put(f"k{i}", value[:-8]) for i in range(4)])
        assert len((await store.list("k"))[0]) == 4

    backend.run(body)


def test_put_to_a_missing_lease_fails_whole_and_changes_nothing(backend: Backend) -> None:
    async def body(store: Store) -> None:
        before = await store.list("")
        with pytest.raises(LeaseNotFound) as err:
            await store.txn([], [Put("a", b"1"), Put("b", b"2", lease=4242)])
        assert err.value.lease == 4242
        assert await store.list("") == before
        # the branch not taken is not checked, as in etcd
        result = await store.txn([Compare.exists("nope")], [Put("b", b"2", lease=4242)])
        assert result.succeeded is False

    backend.run(body)


def test_values_are_bytes_verbatim(backend: Backend) -> None:
    async def body(store: Store) -> None:
        blob = bytes(range(256)) * 4
        await store.put("bin", blob)
        await store.put("empty", b"")
        await store.put("nul\x00key", b"\x00")
        assert (await store.get("bin")).value == blob  # type: ignore[union-attr]
        assert (await store.get("empty")).value == b""  # type: ignore[union-attr]
        assert (await store.get("nul\x00key")).value == b"\x00"  # type: ignore[union-attr]
        kvs, _ = await store.list("nul")
        assert [kv.key for kv in kvs] == ["nul\x00key"]

    backend.run(body)
