"""The backends every conformance test runs against (memory, sqlite, and a real etcd that
each test gets fresh), a fake clock, and small async helpers."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest

from pallet.model.clock import FakeClock
from pallet.store import Store, WatchEvent, WatchStream, open_store
from pallet.store.etcd.server import EtcdCluster, etcd_available, spawn_cluster

T = TypeVar("T")

WAIT = 5.0
"""Seconds a test waits for an event that must come; only reached when the store is broken."""


@dataclass
class Backend:
    """One backend under test: ``run`` opens its store, runs a body, closes the store."""

    name: str
    url: str
    persistent: bool
    clock: FakeClock = field(default_factory=FakeClock)

    def run(self, body: Callable[[Store], Awaitable[T]], *, history: int | None = None) -> T:
        joiner = "&" if "?" in self.url else "?"
        url = self.url if history is None else f"{self.url}{joiner}history={history}"

        async def main() -> T:
            store = await open_store(url, clock=self.clock, expiry_interval=None)
            try:
                return await body(store)
            finally:
                await store.close()

        return asyncio.run(main())

    async def advance(self, seconds: float) -> None:
        """Let ``seconds`` of lease time pass."""
        self.clock.now += seconds


class EtcdPool:
    """Fresh single-member etcd clusters, one per test (a new store is at revision 1 only
    on a new cluster): the next one starts while the current test runs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.count = 0
        self.spare: EtcdCluster | None = None

    def _spawn(self) -> EtcdCluster:
        self.count += 1
        return spawn_cluster(self.root / f"etcd-{self.count}")

    def take(self) -> EtcdCluster:
        cluster = self.spare or self._spawn()
        self.spare = self._spawn()
        try:
            cluster.wait_ready()
        except Exception:
            self.release(cluster)
            cluster = self.spare
            self.spare = self._spawn()
            cluster.wait_ready()  # a port taken meanwhile fails one cluster, not two
        return cluster

    def release(self, cluster: EtcdCluster) -> None:
        cluster.stop()
        for member in cluster.members:
            shutil.rmtree(member.data_dir.parent, ignore_errors=True)

    def close(self) -> None:
        if self.spare is not None:
            self.release(self.spare)


def _etcd_root() -> str | None:
    """Where the test clusters keep their data: memory (/dev/shm) when there is room, since
    etcd syncs every commit to disk and each member preallocates a 64 MiB log."""
    with_room = os.path.isdir("/dev/shm") and shutil.disk_usage("/dev/shm").free > 2 << 30
    return "/dev/shm" if with_room else None


@pytest.fixture(scope="session")
def etcd_pool() -> Iterator[EtcdPool]:
    if why := etcd_available():
        if os.environ.get("CI"):
            pytest.fail(f"the etcd conformance tests need an etcd server in CI: {why}")
        pytest.skip(why)
    root = Path(tempfile.mkdtemp(prefix="pallet-etcd-", dir=_etcd_root()))
    pool = EtcdPool(root)
    try:
        yield pool
    finally:
        pool.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["memory", "sqlite", "etcd"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "memory":
        yield Backend("memory", "memory://", persistent=False)
    elif request.param == "sqlite":
        yield Backend("sqlite", f"sqlite://{tmp_path / 'pallet.db'}", persistent=True)
    else:
        pool: EtcdPool = request.getfixturevalue("etcd_pool")
        cluster = pool.take()
        try:
            yield Backend("etcd", cluster.url, persistent=True)
        finally:
            pool.release(cluster)


async def next_event(watch: WatchStream) -> WatchEvent:
    """The watch's next event; fails the test instead of hanging when none comes."""
    return await asyncio.wait_for(anext(watch), WAIT)


async def take(watch: WatchStream, count: int) -> list[WatchEvent]:
    return [await next_event(watch) for _ in range(count)]


async def nothing_more(store: Store, watch: WatchStream, prefix: str) -> None:
    """Assert ``watch`` has no pending event: write a marker under ``prefix`` and check it
    is the very next event (no sleeping, no guessing a timeout)."""
    marker = f"{prefix}~marker"
    revision = await store.put(marker, b"")
    event = await next_event(watch)
    assert (event.kv.key, event.revision) == (marker, revision), f"unexpected {event}"
