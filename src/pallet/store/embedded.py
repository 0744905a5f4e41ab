"""The ``Store`` of the embedded backends (memory, sqlite): argument checks, transactions via
``engine``, watches, lease deadlines and expiry, over a synchronous ``Backend`` that holds
keys, history and leases. Does I/O only through the backend, on the backend's runner.

Every backend call is a job run one at a time in submission order (inline for memory, on one
dedicated thread for sqlite), so the store has exactly one writer and reads never see half a
transaction.
"""

from __future__ import annotations

import asyncio
import builtins
import collections
import contextlib
import functools
import threading
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, TypeVar, runtime_checkable

from pallet.store.budget import HistoryBudget
from pallet.store.engine import KeyView, Outcome, run_txn
from pallet.store.errors import Compacted, InvalidArgument, LeaseNotFound, StoreClosed
from pallet.store.kv import KeyValue, WatchEvent
from pallet.store.leases import LeaseDeadlines, expire_forever
from pallet.store.protocol import Store
from pallet.store.txn import Compare, Delete, Op, Txn, TxnResult, make_txn
from pallet.store.validate import (
    check_key,
    check_lease,
    check_prefix,
    check_revision,
    check_ttl,
)
from pallet.store.watch import Signal, Watcher

__all__ = [
    "DEFAULT_HISTORY",
    "Backend",
    "Clock",
    "EmbeddedStore",
    "InlineRunner",
    "Runner",
    "ThreadRunner",
]

DEFAULT_HISTORY = 10_000
"""Revisions of history kept for watches unless the URL says ``?history=N``."""

Clock = Callable[[], float]
_T = TypeVar("_T")


class Backend(KeyView, Protocol):
    """Synchronous storage of keys, history and leases. ``revision`` is the current
    revision and ``compacted`` the oldest one whose events are kept (0: none dropped)."""

    @property
    def revision(self) -> int: ...

    @property
    def compacted(self) -> int: ...

    def lease_keys(self, lease: int) -> list[str]:
        """The keys attached to ``lease``, in key order."""
        ...

    def leases(self) -> list[tuple[int, int]]:
        """Every lease as ``(id, ttl)``."""
        ...

    def commit(
        self, revision: int, events: Sequence[WatchEvent], compacted: int, revoked: int = 0
    ) -> None:
        """Atomically apply ``events`` at ``revision`` (the current one + 1; unchanged when
        there are none), record them in the history, drop history before ``compacted``, and
        drop lease ``revoked`` if not 0."""
        ...

    def events(self, prefix: str, first: int, last: int) -> list[WatchEvent]:
        """The kept events of keys starting with ``prefix`` at revisions ``first``..``last``."""
        ...

    def history_sizes(self) -> list[tuple[int, int]]:
        """``(revision, bytes)`` of each kept revision, oldest first: the keys' and values'
        bytes of its events (``budget.record_bytes``)."""
        ...

    def live_bytes(self) -> int:
        """The keys' and values' bytes of the live records."""
        ...

    def compact(self, revision: int) -> None:
        """Drop the history before ``revision``."""
        ...

    def grant(self, ttl: int) -> int:
        """Store a new lease; its id (ids are never reused)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class GroupCommit(Protocol):
    """A backend whose commits can share one durable transaction."""

    def batch(self) -> contextlib.AbstractContextManager[None]:
        """Commits inside become durable together at the end, or none of them does."""
        ...


class _Queued:
    """A transaction waiting for the next batch, and what became of it."""

    __slots__ = ("error", "result", "txn")

    def __init__(self, txn: Txn) -> None:
        self.txn = txn
        self.result: TxnResult | None = None
        self.error: BaseException | None = None


class Runner(Protocol):
    """Runs a backend's jobs one at a time, in the order they are submitted."""

    async def __call__(self, job: Callable[[], _T]) -> _T: ...

    async def shutdown(self) -> None: ...


class InlineRunner:
    """Runs each job at once on the event loop: for backends that never block."""

    async def __call__(self, job: Callable[[], _T]) -> _T:
        return job()

    async def shutdown(self) -> None:
        return None


class ThreadRunner:
    """Runs each job on one dedicated thread, in submission order."""

    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    async def __call__(self, job: Callable[[], _T]) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, job)

    async def shutdown(self) -> None:
        self._executor.shutdown(wait=False)


class EmbeddedStore(Store):
    """A ``Store`` over a ``Backend`` whose calls go through ``runner``."""

    ordered_txns = True
    """Transactions are run in the order the ``txn`` calls were made (each is queued for
    the runner when the call starts)."""

    def __init__(
        self,
        name: str,
        backend: Backend,
        runner: Runner,
        *,
        clock: Clock,
        history: int,
        budget: HistoryBudget | None = None,
    ) -> None:
        if history < 1:
            raise InvalidArgument("history", f"keep at least 1 revision of history, not {history}")
        self._name = name
        self._backend = backend
        self._runner = runner
        self._clock = clock
        self._history = history
        self._budget = HistoryBudget() if budget is None else budget
        self._signal = Signal()
        self._deadlines = LeaseDeadlines()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._reaper: asyncio.Task[None] | None = None
        self._closed = False
        # Group commit: transactions queue here and the next job on the runner commits all
        # that wait, with one sync (a thread runner runs one job while others queue).
        self._group_commit = (
            backend
            if isinstance(backend, GroupCommit) and isinstance(runner, ThreadRunner)
            else None
        )
        self._queued: collections.deque[_Queued] = collections.deque()

    async def start(self, expiry_interval: float | None) -> None:
        """Load the leases (full TTL from now) and, with an interval, start expiring them."""
        if expiry_interval is not None and not (
            isinstance(expiry_interval, int | float) and expiry_interval > 0
        ):
            raise InvalidArgument(
                "expiry_interval", f"must be > 0 seconds or None, not {expiry_interval!r}"
            )
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        await self._call(self._load_budget_job)
        await self._call(self._fit_history_job)
        now = self._clock()
        for lease, ttl in await self._call(self._backend.leases):
            self._deadlines.add(lease, ttl, now)
        if expiry_interval is not None:
            self._reaper = asyncio.create_task(
                expire_forever(self.expire_leases, expiry_interval), name=f"{self._name} leases"
            )

    def __repr__(self) -> str:
        return f"<Store {self._name}{' closed' if self._closed else ''}>"

    async def get(self, key: str) -> KeyValue | None:
        key = check_key(key)
        return await self._call(self._backend.get, key)

    async def list(self, prefix: str = "") -> tuple[builtins.list[KeyValue], int]:
        prefix = check_prefix(prefix)
        return await self._call(self._list_job, prefix)

    async def revision(self) -> int:
        return await self._call(lambda: self._backend.revision)

    async def txn(
        self,
        compares: Sequence[Compare] = (),
        on_success: Sequence[Op] = (),
        on_failure: Sequence[Op] = (),
    ) -> TxnResult:
        txn = make_txn(compares, on_success, on_failure)
        if self._group_commit is None:
            return await self._call(self._txn_job, txn)
        if self._closed:
            raise StoreClosed(self._name)
        queued = _Queued(txn)
        self._queued.append(queued)
        # This job commits every transaction queued by then, this one among them unless a
        # job before it already did; either way it is done when the job returns.
        await self._call(self._batch_job)
        if queued.error is not None:
            raise queued.error
        assert queued.result is not None, "a queued transaction runs by its own job"
        return queued.result

    async def watch(self, prefix: str = "", start_revision: int | None = None) -> Watcher:
        prefix = check_prefix(prefix)
        if start_revision is not None:
            start_revision = check_revision(start_revision, "start_revision")
        start = await self._call(self._watch_start_job, start_revision)
        return Watcher(self._fetch, self._signal, prefix, start)

    async def compact(self, revision: int) -> None:
        revision = check_revision(revision)
        await self._call(self._compact_job, revision)

    async def grant(self, ttl: int) -> int:
        return await self._call(self._grant_job, check_ttl(ttl))

    async def keepalive(self, lease: int) -> int:
        lease = check_lease(lease)
        if self._deadlines.is_expired(lease, self._clock()):
            await self._call(self._revoke_job, lease)  # as etcd: expired is gone, reaped or not
            raise LeaseNotFound(lease)
        return self._deadlines.renew(lease, self._clock())

    async def revoke(self, lease: int) -> None:
        await self._call(self._revoke_job, check_lease(lease))

    async def expire_leases(self) -> builtins.list[int]:
        expired = []
        for lease in self._deadlines.expired(self._clock()):
            with contextlib.suppress(LeaseNotFound):  # revoked meanwhile by another caller
                await self._call(self._revoke_job, lease)
                expired.append(lease)
        return expired

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._signal.notify()
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        await self._runner(self._backend.close)
        await self._runner.shutdown()

    async def _call(self, job: Callable[..., _T], *args: object) -> _T:
        if self._closed:
            raise StoreClosed(self._name)
        return await self._runner(functools.partial(job, *args))

    def _fetch(
        self, prefix: str, first: int, limit: int
    ) -> Awaitable[tuple[builtins.list[WatchEvent], int]]:
        return self._call(self._events_job, prefix, first, limit)

    # Jobs: run by the runner, one at a time; only they touch the backend.

    def _list_job(self, prefix: str) -> tuple[builtins.list[KeyValue], int]:
        return self._backend.scan(prefix), self._backend.revision

    def _txn_job(self, txn: Txn, revoked: int = 0) -> TxnResult:
        """Run ``txn`` and commit what it wrote, dropping lease ``revoked`` in the same commit."""
        backend = self._backend
        outcome = run_txn(backend, txn, backend.revision + 1)
        if outcome.events or revoked:
            revision = backend.revision + (1 if outcome.events else 0)
            try:
                backend.commit(revision, outcome.events, self._floor(revision, outcome), revoked)
            except BaseException:
                self._load_budget_job()  # it counted what was not committed
                raise
            if outcome.events:
                self._on_loop(self._signal.notify)
        return TxnResult(outcome.succeeded, backend.revision, outcome.responses)

    def _floor(self, revision: int, outcome: Outcome) -> int:
        """The oldest revision kept once ``outcome``'s events commit at ``revision``: the
        last ``history`` revisions at most, and no more than their bytes' budget."""
        self._budget.add(revision, outcome.events)
        compacted = max(self._backend.compacted, revision - self._history + 1)
        return self._budget.oldest_kept(compacted)

    def _load_budget_job(self) -> None:
        self._budget.load(self._backend.history_sizes(), self._backend.live_bytes())

    def _fit_history_job(self) -> None:
        """Drop the history an opened store keeps beyond its bounds (a file written with
        other bounds, or before history was bounded by bytes)."""
        backend = self._backend
        floor = self._budget.oldest_kept(
            max(backend.compacted, backend.revision - self._history + 1)
        )
        if backend.compacted < floor <= backend.revision:
            backend.compact(floor)

    def _batch_job(self) -> None:
        """Run every queued transaction in order, each at its own revision as ``_txn_job``
        would, and make them durable together: one sync for the batch. A transaction that
        fails before writing fails alone; a failed write fails the whole batch, none of
        which is kept."""
        batch: list[_Queued] = []
        while self._queued:
            batch.append(self._queued.popleft())
        if not batch:
            return
        backend = self._backend
        assert self._group_commit is not None
        changed = False
        try:
            with self._group_commit.batch():
                for queued in batch:
                    try:
                        outcome = run_txn(backend, queued.txn, backend.revision + 1)
                    except Exception as e:  # nothing written: this one fails, the rest go on
                        queued.error = e
                        continue
                    if outcome.events:
                        revision = backend.revision + 1
                        backend.commit(revision, outcome.events, self._floor(revision, outcome))
                        changed = True
                    queued.result = TxnResult(
                        outcome.succeeded, backend.revision, outcome.responses
                    )
        except Exception as e:
            for queued in batch:
                queued.result, queued.error = None, queued.error or e
            with contextlib.suppress(Exception):  # it counted what was not committed
                self._load_budget_job()
            return
        if changed:
            self._on_loop(self._signal.notify)

    def _revoke_job(self, lease: int) -> None:
        """Delete ``lease``'s keys (in key order, as etcd does) and the lease, in one commit."""
        if not self._backend.lease_exists(lease):
            self._on_loop(self._deadlines.discard, lease)
            raise LeaseNotFound(lease)
        deletes = tuple(Delete(key) for key in self._backend.lease_keys(lease))
        self._txn_job(Txn((), deletes, ()), revoked=lease)
        self._on_loop(self._deadlines.discard, lease)

    def _watch_start_job(self, start: int | None) -> int:
        if start is None:
            return self._backend.revision + 1
        if start < self._backend.compacted:
            raise Compacted(start, self._backend.compacted)
        return start

    def _events_job(
        self, prefix: str, first: int, limit: int
    ) -> tuple[builtins.list[WatchEvent], int]:
        backend = self._backend
        if first < backend.compacted:
            raise Compacted(first, backend.compacted)
        last = min(backend.revision, first + limit - 1)
        return (backend.events(prefix, first, last) if last >= first else []), last

    def _compact_job(self, revision: int) -> None:
        backend = self._backend
        if revision > backend.revision:
            raise InvalidArgument(
                "revision", f"{revision} is in the future; the store is at {backend.revision}"
            )
        if revision <= backend.compacted:
            raise Compacted(revision, backend.compacted)
        backend.compact(revision)

    def _grant_job(self, ttl: int) -> int:
        lease = self._backend.grant(ttl)
        self._on_loop(self._add_deadline, lease, ttl)
        return lease

    def _add_deadline(self, lease: int, ttl: int) -> None:
        self._deadlines.add(lease, ttl, self._clock())

    def _on_loop(self, callback: Callable[..., object], *args: object) -> None:
        """Run ``callback`` on the event loop: now when called there, else as soon as the
        loop gets to it (before it resumes the job's caller). Lease deadlines and watchers
        are touched only on the loop, and even when the job's caller was cancelled."""
        if threading.get_ident() == self._loop_thread:
            callback(*args)
        else:
            assert self._loop is not None
            self._loop.call_soon_threadsafe(callback, *args)
