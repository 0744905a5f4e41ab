"""Conformance: many writers racing on one key with compare-and-set lose no update."""

from __future__ import annotations

import asyncio

from pallet.store import Store

from .conftest import Backend

WRITERS = 20
INCREMENTS = 10


async def increment(store: Store, key: str) -> int:
    """Add one to the counter at ``key`` with a CAS loop; how many attempts lost the race."""
    lost = 0
    while True:
        kv = await store.get(key)
        assert kv is not None
        await asyncio.sleep(0)  # let the other writers in between the read and the write
        if await store.update(key, str(int(kv.value) + 1).encode(), mod_revision=kv.mod_revision):
            return lost
        lost += 1


def test_concurrent_cas_increments_end_with_the_exact_count(backend: Backend) -> None:
    async def body(store: Store) -> tuple[int, int]:
        start = await store.put("counter", b"0")

        async def writer() -> int:
            return sum([await increment(store, "counter") for _ in range(INCREMENTS)])

        lost = sum(await asyncio.gather(*(writer() for _ in range(WRITERS))))
        kv = await store.get("counter")
        assert kv is not None
        assert int(kv.value) == WRITERS * INCREMENTS
        # every successful CAS was exactly one revision; failed ones wrote nothing
        assert kv.mod_revision == start + WRITERS * INCREMENTS
        assert kv.version == 1 + WRITERS * INCREMENTS
        return lost, kv.mod_revision

    lost, _ = backend.run(body)
    assert lost > 0, "the writers never raced; the test proves nothing"
