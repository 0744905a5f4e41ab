"""Lease deadlines kept beside a store, and the loop that expires leases; the table is pure
(times are arguments), the loop sleeps.

Deadlines are not stored: like etcd after a leader change, a store that opens again gives
every lease its full TTL from the moment it opens.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pallet.store.errors import LeaseNotFound, StoreClosed

__all__ = ["LeaseDeadlines", "expire_forever"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Lease:
    ttl: int
    deadline: float


class LeaseDeadlines:
    """Each lease's TTL and the time it expires unless kept alive."""

    def __init__(self) -> None:
        self._leases: dict[int, _Lease] = {}

    def __contains__(self, lease: object) -> bool:
        return lease in self._leases

    def add(self, lease: int, ttl: int, now: float) -> None:
        self._leases[lease] = _Lease(ttl, now + ttl)

    def discard(self, lease: int) -> None:
        self._leases.pop(lease, None)

    def is_expired(self, lease: int, now: float) -> bool:
        """Whether ``lease`` is known and past its deadline."""
        entry = self._leases.get(lease)
        return entry is not None and entry.deadline <= now

    def renew(self, lease: int, now: float) -> int:
        """Push ``lease``'s deadline to ``now`` + its TTL and return the TTL."""
        entry = self._leases.get(lease)
        if entry is None:
            raise LeaseNotFound(lease)
        entry.deadline = now + entry.ttl
        return entry.ttl

    def expired(self, now: float) -> list[int]:
        """The leases past their deadline at ``now``, the earliest deadline first."""
        due = [(e.deadline, lease) for lease, e in self._leases.items() if e.deadline <= now]
        return [lease for _, lease in sorted(due)]


async def expire_forever(expire: Callable[[], Awaitable[object]], interval: float) -> None:
    """Call ``expire`` every ``interval`` seconds until the store closes or the task is
    cancelled; a failure is logged and retried on the next tick."""
    while True:
        await asyncio.sleep(interval)
        try:
            await expire()
        except StoreClosed:
            return
        except Exception:
            log.exception("expiring leases failed; trying again in %.1f s", interval)
