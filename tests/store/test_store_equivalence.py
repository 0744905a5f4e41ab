"""Hypothesis: any sequence of operations gives the same observable results on every backend."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pallet.store import (
    Compacted,
    Compare,
    CompareOp,
    Delete,
    DeletePrefix,
    Get,
    GetPrefix,
    Put,
    Store,
    StoreError,
    Target,
    open_store,
)

from .conftest import FakeClock, next_event

KEYS = ["a", "a/1", "a/2", "ab", "b", "b/1"]
PREFIXES = ["", "a", "a/", "b", "c"]
HISTORY = 12  # small, so bounded history and compaction errors happen

keys = st.sampled_from(KEYS)
prefixes = st.sampled_from(PREFIXES)
values = st.binary(max_size=3)
leases = st.sampled_from([0, 0, 0, 1, 2, 3, 7])  # ids go 1, 2, 3 ...: small ones exist
revisions = st.integers(1, 40)
backs = st.integers(0, 14)  # how far before the current revision + 1 a step reaches

compares = st.one_of(
    st.builds(
        Compare,
        keys,
        st.sampled_from([t for t in Target if t is not Target.VALUE]),
        st.sampled_from(list(CompareOp)),
        st.integers(0, 40),
    ),
    st.builds(Compare, keys, st.just(Target.VALUE), st.sampled_from(list(CompareOp)), values),
)
ops = st.one_of(
    st.builds(Put, keys, values, leases),
    st.builds(Delete, keys),
    st.builds(DeletePrefix, prefixes),
    st.builds(Get, keys),
    st.builds(GetPrefix, prefixes),
)
steps = st.one_of(
    st.tuples(st.just("put"), keys, values, leases),
    st.tuples(st.just("delete"), keys),
    st.tuples(st.just("delete_prefix"), prefixes),
    st.tuples(st.just("create"), keys, values),
    st.tuples(st.just("update"), keys, values, st.one_of(st.just("current"), revisions)),
    st.tuples(
        st.just("txn"),
        st.lists(compares, max_size=3),
        st.lists(ops, max_size=4),
        st.lists(ops, max_size=3),
    ),
    st.tuples(st.just("get"), keys),
    st.tuples(st.just("list"), prefixes),
    st.tuples(st.just("grant"), st.integers(1, 20)),
    st.tuples(st.just("grant_put"), st.integers(1, 20), keys, values),
    st.tuples(st.just("keepalive"), leases),
    st.tuples(st.just("revoke"), leases),
    st.tuples(st.just("advance"), st.integers(0, 15)),
    st.tuples(st.just("compact"), backs),
    st.tuples(st.just("watch"), prefixes, backs),
)


async def apply(store: Store, clock: FakeClock, step: tuple[Any, ...]) -> object:
    """Run one step; what it returned or raised, in a form two backends can be compared on."""
    name, *args = step
    try:
        match name:
            case "put":
                return await store.put(args[0], args[1], lease=args[2])
            case "update":
                key, value, revision = args
                if revision == "current":
                    kv = await store.get(key)
                    revision = kv.mod_revision if kv else 1
                return await store.update(key, value, mod_revision=revision)
            case "compact":
                return await store.compact(max(1, await store.revision() + 1 - args[0]))
            case "txn":
                return await store.txn(*args)
            case "grant_put":
                lease = await store.grant(args[0])
                return lease, await store.put(args[1], args[2], lease=lease)
            case "advance":
                clock.now += args[0]
                return await store.expire_leases()
            case "watch":
                return await watched(store, args[0], await store.revision() + 1 - args[1])
            case _:
                return await getattr(store, name)(*args)
    except StoreError as e:
        return (type(e).__name__, str(e))


async def watched(store: Store, prefix: str, start: int) -> list[object]:
    """The events a watch from ``start`` delivers up to now: a marker write ends the read."""
    watch = await store.watch(prefix, max(1, start))
    marker = f"{prefix}~end"
    await store.put(marker, b"")
    events: list[object] = []
    while (event := await next_event(watch)).kv.key != marker:
        events.append(event)
    await watch.aclose()
    return events


async def whole_history(store: Store) -> object:
    try:
        return await watched(store, "", 1)
    except Compacted as e:
        # the marker write moves a full history's floor up by one: start above it
        return await watched(store, "", e.oldest + 1)


@contextlib.contextmanager
def scratch_dir() -> Iterator[str]:
    # Durability is not under test here: skip the fsyncs on a RAM disk when there is one.
    where = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    with tempfile.TemporaryDirectory(dir=where) as path:
        yield path


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(steps, min_size=5, max_size=40))
def test_memory_and_sqlite_agree_on_every_step(sequence: list[tuple[Any, ...]]) -> None:
    async def main(directory: str) -> None:
        clock = FakeClock(1000.0)
        urls = [f"memory://?history={HISTORY}", f"sqlite://{directory}/s.db?history={HISTORY}"]
        stores = [await open_store(u, clock=clock, expiry_interval=None) for u in urls]
        try:
            for i, step in enumerate(sequence):
                before = clock.now
                results = []
                for store in stores:
                    clock.now = before  # every backend sees the same time
                    results.append(await apply(store, clock, step))
                assert results[0] == results[1], f"step {i} {step}"
            states = [(await s.list(""), await whole_history(s)) for s in stores]
            assert states[0] == states[1]
        finally:
            for store in stores:
                await store.close()

    with scratch_dir() as directory:
        asyncio.run(main(directory))
