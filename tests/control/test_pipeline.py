"""The applier's commit pipeline (``control.pipeline``): pipelined decisions reach the store
in order, their events come out in commit order, a failure in the middle of a group fails
the ones after it and leaves memory equal to the store, the leader fence refuses a group.

The store is a real memory store behind a gate (a test double of timing only): every
transaction waits at the gate, in the order it was sent, until the test opens it, so a
whole group is in flight at once."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from pallet.control import Control, ControlConfig, NotLeader
from pallet.control.decision import Decision
from pallet.control.layout import APPS, DEPLOYMENTS, app_key
from pallet.control.leader import LEADER_KEY
from pallet.control.pipeline import CHAIN
from pallet.control.records import AppRecord, decode, encode
from pallet.model.app_run import run_spec as run_of
from pallet.store import Compare, Op, Put, Store, StoreError, TxnAborted, TxnResult, open_store

from .conftest import FakeClock, definition

pytestmark = pytest.mark.anyio


class GatedStore:
    """A store whose transactions wait at a gate, in order; ``fail`` names the calls (by
    number) that raise a store error instead."""

    def __init__(self, inner: Store, *, ordered: bool = True) -> None:
        self.inner = inner
        self.ordered_txns = ordered
        self.gate = asyncio.Event()
        self.gate.set()
        self.sent: list[int] = []
        self.fail: set[int] = set()
        self.outstanding = 0
        self.most_outstanding = 0
        self._calls = itertools.count()

    async def txn(
        self, compares: Sequence[Compare] = (), on_success: Sequence[Op] = (), *args: Any
    ) -> TxnResult:
        n = next(self._calls)
        self.outstanding += 1
        self.most_outstanding = max(self.most_outstanding, self.outstanding)
        try:
            await self.gate.wait()
            self.sent.append(n)
            if n in self.fail:
                raise StoreError(f"the disk is full (call {n})")
            return await self.inner.txn(compares, on_success, *args)
        finally:
            self.outstanding -= 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
async def gated(clock: FakeClock) -> AsyncIterator[tuple[Control, GatedStore]]:
    inner = await open_store("memory://", clock=clock, expiry_interval=None)
    store = GatedStore(inner)
    ids = itertools.count()
    ctl = Control(store, ControlConfig(seed=1), clock=clock, new_id=lambda: f"id{next(ids)}")  # type: ignore[arg-type]
    await ctl.load()
    events: list[object] = []
    ctl.bus.listen(events.append)
    ctl.events = events  # type: ignore[attr-defined]
    try:
        yield ctl, store
    finally:
        store.gate.set()
        await ctl.applier.pipeline.drained()
        await ctl.applier.pipeline.close()
        await ctl.stop()
        await inner.close()


def _app(app_id: str) -> AppRecord:
    spec = definition(app_id)
    return AppRecord(app_id, "v1", "v1", "v1", spec, run_of(spec))


def _create(app_id: str, *, compare: bool = True) -> Decision:
    app = _app(app_id)
    return Decision(
        compares=(Compare.absent(app_key(app_id)),) if compare else (),
        ops=(Put(app_key(app_id), encode(app.to_json())),),
        apps=(app,),
        events=(f"created {app_id}",),
        touch=True,
    )


async def _write(ctl: Control, decision: Decision, pipelined: bool = True) -> object:
    """One writer: decide under the lock, apply; its outcome (a result or an error)."""
    try:
        async with ctl.applier.lock:
            return await ctl.applier.apply(decision, pipelined=pipelined)
    except Exception as e:
        return e


async def _group(ctl: Control, store: GatedStore, decisions: Sequence[Decision]) -> list[object]:
    """The decisions, each by its own writer, all in flight at once: their outcomes."""
    store.gate.clear()
    writers = [asyncio.create_task(_write(ctl, d)) for d in decisions]
    for _ in range(50):  # each writer enqueues and lets go of the lock
        await asyncio.sleep(0)
    # the whole group is in flight (a store that may reorder is sent one at a time)
    assert store.outstanding == (len(decisions) if store.ordered_txns else 1)
    store.gate.set()
    return list(await asyncio.gather(*writers))


async def _stored_apps(store: GatedStore) -> set[str]:
    kvs, _ = await store.inner.list(APPS)
    return {AppRecord.from_json(decode(kv.value)).id for kv in kvs}


async def _memory_equals_store(ctl: Control, store: GatedStore) -> None:
    assert set(ctl.state.apps) == await _stored_apps(store)
    kvs, _ = await store.inner.list(DEPLOYMENTS)
    assert set(ctl.state.deployments) == {kv.key[len(DEPLOYMENTS) :] for kv in kvs}


@pytest.mark.parametrize(
    ("ordered", "count"),
    [(True, 1), (True, 5), (True, 40), (False, 5), (False, 12)],
)
async def test_a_group_commits_in_order_and_says_so_in_order(
    gated: tuple[Control, GatedStore], ordered: bool, count: int
) -> None:
    ctl, store = gated
    store.ordered_txns = ordered
    ctl.applier.pipeline._ordered = ordered
    ids = [f"/a{i:02d}" for i in range(count)]
    outcomes = await _group(ctl, store, [_create(i) for i in ids])
    assert all(isinstance(o, TxnResult) and o.succeeded for o in outcomes)
    revisions = [o.revision for o in outcomes if isinstance(o, TxnResult)]
    assert revisions == sorted(revisions) and len(set(revisions)) == count  # in order
    assert store.sent == sorted(store.sent)
    kvs = {kv.key: kv.mod_revision for kv in (await store.inner.list(APPS))[0]}
    assert [kvs[app_key(i)] for i in ids] == revisions  # each at its own, in decision order
    assert ctl.events == [f"created {i}" for i in ids]  # type: ignore[attr-defined]
    assert ctl.state.revision == revisions[-1]
    await _memory_equals_store(ctl, store)


async def test_a_remote_store_is_sent_one_transaction_at_a_time(
    gated: tuple[Control, GatedStore],
) -> None:
    ctl, store = gated
    store.ordered_txns = False
    ctl.applier.pipeline._ordered = False
    store.gate.clear()
    writers = [asyncio.create_task(_write(ctl, _create(f"/r{i}"))) for i in range(4)]
    for _ in range(50):
        await asyncio.sleep(0)
    assert store.outstanding == 1  # the next is sent when the one before returned
    store.gate.set()
    assert all(isinstance(o, TxnResult) and o.succeeded for o in await asyncio.gather(*writers))


@pytest.mark.parametrize(
    ("failing", "how"),
    [(0, "compare"), (2, "compare"), (4, "compare"), (0, "error"), (2, "error"), (4, "error")],
)
async def test_a_failure_in_a_group_fails_the_later_ones_and_memory_equals_the_store(
    gated: tuple[Control, GatedStore], failing: int, how: str
) -> None:
    ctl, store = gated
    ids = [f"/f{i}" for i in range(5)]
    if how == "compare":  # written behind the master's back: its create's compare is false
        await store.inner.put(app_key(ids[failing]), encode(_app(ids[failing]).to_json()))
    else:
        store.fail = {failing}
    outcomes = await _group(ctl, store, [_create(i) for i in ids])
    for i, outcome in enumerate(outcomes):
        if i < failing:
            assert isinstance(outcome, TxnResult) and outcome.succeeded, (i, outcome)
        elif i == failing and how == "compare":
            assert isinstance(outcome, TxnResult) and not outcome.succeeded
        elif i == failing:
            assert isinstance(outcome, StoreError) and "disk is full" in str(outcome)
        else:
            assert isinstance(outcome, TxnAborted), (i, outcome)
    stored = await _stored_apps(store)
    expected = set(ids[:failing]) | ({ids[failing]} if how == "compare" else set())
    assert stored == expected  # nothing decided on top of the failure was stored
    assert ctl.applier.pipeline.broken is None  # recovered before the writers returned
    await _memory_equals_store(ctl, store)
    assert ctl.events == [f"created {i}" for i in ids[:failing]]  # type: ignore[attr-defined]
    # and the master writes on
    again = await _write(ctl, _create("/after"))
    assert isinstance(again, TxnResult) and again.succeeded
    await _memory_equals_store(ctl, store)


async def test_a_decision_that_is_not_optimistic_waits_for_the_ones_in_flight(
    gated: tuple[Control, GatedStore],
) -> None:
    ctl, store = gated
    store.gate.clear()
    first = asyncio.create_task(_write(ctl, _create("/p")))
    for _ in range(10):
        await asyncio.sleep(0)
    assert "/p" in ctl.state.apps  # memory has it already: the next decision sees it
    after: list[str] = []
    slow = Decision(ops=(Put("/pallet/x", b"1"),), after=(lambda: after.append("x"),))
    assert not slow.optimistic
    second = asyncio.create_task(_write(ctl, slow, pipelined=True))
    for _ in range(10):
        await asyncio.sleep(0)
    assert after == [] and ctl.applier.lock.locked()  # applied once durable, lock held
    store.gate.set()
    results = await asyncio.gather(first, second)
    assert all(isinstance(r, TxnResult) and r.succeeded for r in results)
    assert after == ["x"]


async def test_the_fence_refuses_a_whole_group(gated: tuple[Control, GatedStore]) -> None:
    ctl, store = gated
    await store.inner.put(LEADER_KEY, b"me")
    kv = await store.inner.get(LEADER_KEY)
    assert kv is not None
    ctl.applier.fence = Compare.create_revision(LEADER_KEY, "==", kv.create_revision)
    deposed: list[str] = []
    ctl.applier.on_deposed = deposed.append
    ok = await _write(ctl, _create("/before"))
    assert isinstance(ok, TxnResult) and ok.succeeded
    store.gate.clear()
    writers = [asyncio.create_task(_write(ctl, _create(f"/g{i}"))) for i in range(4)]
    for _ in range(50):
        await asyncio.sleep(0)
    # another master is elected meanwhile: the leader key is created anew
    await store.inner.delete(LEADER_KEY)
    await store.inner.put(LEADER_KEY, b"another")
    store.gate.set()
    outcomes = await asyncio.gather(*writers)
    assert all(isinstance(o, NotLeader) for o in outcomes), outcomes
    assert len(deposed) == 1
    assert await _stored_apps(store) == {"/before"}
    await _memory_equals_store(ctl, store)


async def test_the_chain_is_one_more_write_and_decisions_leave_room_for_it() -> None:
    from pallet.store import MAX_TXN_OPS

    full = Decision(ops=tuple(Put(f"/k{i}", b"") for i in range(MAX_TXN_OPS)))
    assert not full.fits()
    assert Decision(ops=full.ops[:-1]).fits()
    assert CHAIN.startswith("/pallet/")


@pytest.mark.parametrize(
    ("decision", "optimistic"),
    [
        (Decision(), True),
        (_create("/o"), True),
        (Decision(dropped_apps=("/o",), dropped_deployments=("d",)), True),
        (Decision(tasks=(), dropped_tasks=("t",)), False),
        (Decision(dropped_nodes=("n",)), False),
        (Decision(after=(lambda: None,)), False),
    ],
)
def test_which_decisions_change_memory_before_they_are_durable(
    decision: Decision, optimistic: bool
) -> None:
    assert decision.optimistic is optimistic


async def test_a_writer_cancelled_while_its_commit_syncs_leaves_the_lock_free(
    gated: tuple[Control, GatedStore],
) -> None:
    ctl, store = gated
    store.gate.clear()
    writer = asyncio.create_task(_write(ctl, _create("/c")))
    for _ in range(10):
        await asyncio.sleep(0)
    writer.cancel()
    for _ in range(10):
        await asyncio.sleep(0)
    assert writer.cancelled()
    assert not ctl.applier.lock.locked()
    store.gate.set()
    await ctl.applier.pipeline.drained()
    assert await _stored_apps(store) == {"/c"}  # sent: it commits, and memory agrees
    await _memory_equals_store(ctl, store)
    assert ctl.events == ["created /c"]  # type: ignore[attr-defined]
