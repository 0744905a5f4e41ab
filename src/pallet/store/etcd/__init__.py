"""The etcd backend: ``open_etcd("etcd://h1:2379,h2:2379")`` gives a ``Store`` on an etcd 3
cluster; nothing of etcd's is seen past this package.

It speaks etcd's v3 JSON gateway (``/v3/kv/txn``, ``/v3/watch``, ...) over httpx, which Pallet
already uses, instead of a gRPC client: see docs/design.md ("Store") for why.
"""

from __future__ import annotations

from pallet.store.embedded import Clock
from pallet.store.etcd.store import EtcdStore
from pallet.store.etcd.url import EtcdUrl, parse_etcd_url
from pallet.store.protocol import Store

__all__ = ["EtcdUrl", "open_etcd", "parse_etcd_url"]


async def open_etcd(
    url: EtcdUrl,
    *,
    name: str,
    clock: Clock,
    history: int,
    expiry_interval: float | None,
) -> Store:
    """A store on the members ``url`` names. Nothing is sent yet: the first call finds a
    member that answers (so a master can start before its etcd does, and wait for it)."""
    store = EtcdStore(url, name, clock=clock, history=history)
    await store.start(expiry_interval)
    return store
