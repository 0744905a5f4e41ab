"""Leader election and the fence on one memory store with a fake clock: one member leads;
when its lease lapses another wins; the old leader's next write is refused by the fence
(whatever it believes), so it can never write after it was replaced."""

from __future__ import annotations

import pytest

from pallet.control import Control, ControlConfig, NotLeader
from pallet.control.leader import LEADER_KEY, Election, Leader
from pallet.store import open_store

from .conftest import FakeClock, definition, run_spec

pytestmark = pytest.mark.anyio


async def _no_wait(seconds: float) -> None:
    return None


async def test_one_leads_then_the_next_and_the_old_one_cannot_write(clock: FakeClock) -> None:
    store = await open_store("memory://", clock=clock, expiry_interval=None)
    a = Election(store, Leader("a", "127.0.0.1:1"), ttl=5, sleep=_no_wait)
    b = Election(store, Leader("b", "127.0.0.1:2"), ttl=5, sleep=_no_wait)
    try:
        fence_a = await a.campaign()
        assert a.leading and fence_a.key == LEADER_KEY
        assert await b._try() is None and b.leader == a.me  # b sees who leads
        old = Control(store, ControlConfig(seed=1), clock=clock)
        old.applier.fence = fence_a
        await old.load()
        await old.apps.create("/one", definition("/one"), run_spec(1))  # a leads: it writes

        # a is paused past its lease: the lease expires and b wins with a new fence
        clock.advance(6)
        await store.expire_leases()
        fence_b = await b.campaign()
        assert fence_b != fence_a
        # a's next write is refused, whatever a believes, and a learns it no longer leads
        deposed: list[str] = []
        old.applier.on_deposed = deposed.append
        with pytest.raises(NotLeader):
            await old.apps.create("/two", definition("/two"), run_spec(1))
        assert deposed and await store.get("/pallet/apps//two") is None
        # b writes with its fence
        new = Control(store, ControlConfig(seed=1), clock=clock)
        new.applier.fence = fence_b
        await new.load()
        assert "/one" in new.state.apps
        await new.apps.create("/two", definition("/two"), run_spec(1))
        # resigning frees the key at once: the next campaign wins without waiting a ttl
        await b.resign()
        assert not b.leading and await store.get(LEADER_KEY) is None
        assert (await a.campaign()) is not None and a.leading
    finally:
        await a.resign()
        await store.close()
