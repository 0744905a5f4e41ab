"""Leader election among masters sharing one store, and the fence every leader write
carries; asyncio over the ``Store`` protocol (works on etcd, and trivially on SQLite).

    campaign ─▶ grant a lease ─▶ txn(leader key absent ? put {id, address} on the lease)
        won  ─▶ fence = Compare(create_revision(leader key) == the revision it was created at)
                keepalive every ttl/3; a keepalive refused (lease gone) ─▶ deposed
        lost ─▶ note who leads; wait until the key is gone; campaign again

The fence is what makes leadership safe (Jepsen's etcd 3.4 analysis: a lock alone is
not): every transaction the leader commits compares the leader key's create revision
with the one it won, so a leader that was paused past its lease, and replaced, can
never write again; its first attempt fails and it steps down. Holding the key is
not enough (a new leader's key has a new create revision).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pallet.store import Compare, LeaseNotFound, Put, Store, StoreError

__all__ = ["LEADER_KEY", "Election", "Leader"]

log = logging.getLogger(__name__)

LEADER_KEY = "/pallet/leader"


@dataclass(frozen=True, slots=True)
class Leader:
    """Who leads: the member's id and the address its API answers on."""

    id: str
    address: str

    def to_bytes(self) -> bytes:
        return json.dumps({"id": self.id, "address": self.address}).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Leader | None:
        try:
            doc = json.loads(raw)
            return cls(str(doc["id"]), str(doc["address"]))
        except (ValueError, KeyError, TypeError):
            return None


class Election:
    """One master's part in the election. ``await campaign()`` returns once this member
    leads (its ``fence`` set); ``lost`` is set when it no longer does."""

    def __init__(
        self,
        store: Store,
        me: Leader,
        ttl: int = 5,
        poll: float = 0.5,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.store = store
        self.me = me
        self.ttl = ttl
        self.poll = poll
        self._sleep = sleep
        self.fence: Compare | None = None
        self.leader: Leader | None = None
        """The leader last seen (this member when it leads)."""
        self.lost = asyncio.Event()
        self._lease = 0
        self._keeper: asyncio.Task[None] | None = None

    @property
    def leading(self) -> bool:
        return self.fence is not None and not self.lost.is_set()

    async def observe(self) -> Leader | None:
        """Read who leads now (None: nobody)."""
        kv = await self.store.get(LEADER_KEY)
        self.leader = None if kv is None else Leader.from_bytes(kv.value)
        return self.leader

    async def campaign(self) -> Compare:
        """Try until this member leads; the fence to put on every write."""
        while True:
            try:
                won = await self._try()
            except StoreError as e:
                log.warning("leader election: the store is unavailable (%s); retrying", e)
                won = None
            if won is not None:
                return won
            await self._sleep(self.poll)

    async def _try(self) -> Compare | None:
        lease = await self.store.grant(self.ttl)
        result = await self.store.txn(
            [Compare.absent(LEADER_KEY)], [Put(LEADER_KEY, self.me.to_bytes(), lease)]
        )
        if not result.succeeded:
            with contextlib.suppress(StoreError):
                await self.store.revoke(lease)
            await self.observe()
            return None
        self._lease = lease
        self.fence = Compare.create_revision(LEADER_KEY, "==", result.revision)
        self.leader = self.me
        self.lost = asyncio.Event()
        self._keeper = asyncio.create_task(self._keep_alive(lease))
        log.info("elected leader (fence: leader key created at revision %d)", result.revision)
        return self.fence

    async def _keep_alive(self, lease: int) -> None:
        """Renew the lease every ttl/3; give leadership up when the lease is gone, or when
        it could not be renewed for a whole ttl (another member may lead by then)."""
        loop = asyncio.get_running_loop()
        renewed = loop.time()
        while not self.lost.is_set():
            await asyncio.sleep(self.ttl / 3)
            try:
                await self.store.keepalive(lease)
                renewed = loop.time()
            except LeaseNotFound:
                self.step_down("the leader lease expired")
                return
            except StoreError as e:
                if loop.time() - renewed >= self.ttl:
                    self.step_down(f"the leader lease could not be renewed for {self.ttl} s: {e}")
                    return

    def step_down(self, why: str) -> None:
        """Stop leading (the fence failed, the lease is gone, or the member abdicates)."""
        if self.fence is not None and not self.lost.is_set():
            log.warning("no longer the leader: %s", why)
        self.fence = None
        self.lost.set()

    async def resign(self) -> None:
        """Give leadership up now (``DELETE /v2/leader``, or stopping): the key goes with
        the lease, so another member is elected at once rather than after the ttl."""
        self.step_down("resigned")
        if self._keeper is not None:
            self._keeper.cancel()
        if self._lease:
            with contextlib.suppress(StoreError):
                await self.store.revoke(self._lease)
            self._lease = 0

    async def wait_vacant(self) -> None:
        """Return once nobody leads (the leader key is gone)."""
        while True:
            try:
                if await self.observe() is None:
                    return
            except StoreError as e:
                log.warning("leader election: cannot read the leader (%s)", e)
            await self._sleep(self.poll)
