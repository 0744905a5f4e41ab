"""Agents registering at once are decided together and stored in one transaction; the last
word of a node counts; a failed commit fails every registration it carried and the next
ones still go through."""

from __future__ import annotations

import asyncio

import pytest

from pallet.control import Control
from pallet.store import StoreUnavailable

from .conftest import node

pytestmark = pytest.mark.anyio


async def _register(control: Control, i: int, boot: str = "boot") -> str:
    record = await control.nodes.register(node(i), f"http://127.0.0.{i + 1}:5051", boot)
    return record.id


async def test_agents_registering_at_once_cost_one_transaction(control: Control) -> None:
    before = control.applier.transactions
    ids = await asyncio.gather(*(_register(control, i) for i in range(60)))
    assert sorted(ids) == sorted(f"node-{i}" for i in range(60))
    assert control.applier.transactions - before == 1
    assert len(control.state.view) == 60
    stored = (await control.store.list("/pallet/nodes/"))[0]
    assert len(stored) == 60


async def test_the_last_registration_of_a_node_in_a_batch_counts(control: Control) -> None:
    await asyncio.gather(_register(control, 0, "boot-a"), _register(control, 0, "boot-b"))
    assert control.state.nodes["node-0"].boot_id == "boot-b"


async def test_a_failed_commit_fails_its_batch_and_the_next_one_goes_through(
    control: Control, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = control.store.txn
    calls = 0

    async def failing_once(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise StoreUnavailable("etcd", "no member answered")
        return await real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(control.store, "txn", failing_once)
    results = await asyncio.gather(
        *(_register(control, i) for i in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, StoreUnavailable) for r in results)
    assert not control.state.nodes
    assert await _register(control, 7) == "node-7"
    assert list(control.state.nodes) == ["node-7"]
