"""The applier's commit pipeline: decisions' transactions sent to the store in decision order
while the next decisions are made, and their outcomes taken in that same order; asyncio,
does I/O through the store.

``Applier.apply(decision, pipelined=True)`` enqueues a decision here and lets go of the
applier's lock until it is durable, so the next writer decides meanwhile against memory
that already holds it (only decisions whose memory changes are apps, deployments and
launch delays are applied to memory early: ``Decision.optimistic``). Guarantees:

- **Store order.** Transactions reach the store in the order they were enqueued: an
  embedded store queues each ``txn`` call when it is made, and the next batch job commits
  every one waiting with one sync (group commit, ``store.embedded``); a remote store
  (etcd, whose concurrent requests may be reordered) gets them one at a time, each sent
  when the one before returned.
- **A chain.** Each pipelined transaction also writes ``CHAIN`` (a token of this pipeline
  and a counter) and, when a transaction before it is still in flight, holds only if
  ``CHAIN`` is what that one wrote. A decision made on top of one that did not commit (a
  compare false, a store error, the leader fence) is therefore refused by the store
  itself, on every backend, even if the store took requests in another order.
- **Outcomes in order.** One completer takes the outcomes in enqueue order: a committed
  decision's remaining memory changes, then its events (so events are published in commit
  order, after the commit); its writer is answered after that, i.e. once durable.
- **Failure.** The first entry that fails marks the pipeline broken: its writer gets its
  own outcome (compare false as a not-succeeded result, the store's error, ``NotLeader``);
  every later entry still in flight fails with ``TxnAborted`` (``NotLeader`` after the
  fence refused one; ``TxnAborted`` is retryable: nothing of it
  was applied, or, after an unknown outcome, the reload below shows what was). Before
  the next decision is made, with the lock held and nothing in flight, the memory a
  pipelined decision may have changed early (apps, deployments, launch delays) is read
  again from the store, as a master start does, so memory never shows a write the store
  does not have.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from pallet.control.decision import Decision
from pallet.control.errors import NotLeader
from pallet.control.layout import ROOT
from pallet.store import Compare, Op, Put, Store, TxnAborted, TxnResult

__all__ = ["CHAIN", "CommitPipeline", "Entry"]

log = logging.getLogger(__name__)

CHAIN = ROOT + "applied"
"""The key every pipelined transaction writes (the token of the pipeline that wrote it)."""


@dataclass(eq=False)
class Entry:
    """A decision enqueued: its transaction (None: nothing to store) and its outcome."""

    decision: Decision
    early: bool
    """Its memory changes were made at enqueue (``Decision.optimistic``)."""
    fence: Compare | None
    txn: asyncio.Future[TxnResult] | None
    done: asyncio.Future[TxnResult] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class CommitPipeline:
    """Enqueued decisions, in order; ``finish`` carries out each committed one."""

    def __init__(
        self,
        store: Store,
        finish: Callable[[Entry, TxnResult | None], TxnResult],
        fence_holds: Callable[[Compare], Awaitable[bool]],
        on_deposed: Callable[[], BaseException],
    ) -> None:
        self.store = store
        self._finish = finish
        self._fence_holds = fence_holds
        self._on_deposed = on_deposed
        self._ordered = store.ordered_txns
        self._token = uuid.uuid4().hex[:12]
        self._counter = 0
        self._chain: bytes | None = None
        """What the last entry with a transaction writes to ``CHAIN``."""
        self._entries: collections.deque[Entry] = collections.deque()
        self._last_txn: asyncio.Future[TxnResult] | None = None
        self._completer: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._deposed = False
        """The failure was the leader fence: later entries fail with ``NotLeader`` too."""
        self.broken: BaseException | TxnResult | None = None
        """The first failure since the memory was last read again (None: none)."""

    @property
    def busy(self) -> bool:
        """Some entry is still in flight."""
        return bool(self._entries)

    def enqueue(self, decision: Decision, fence: Compare | None, early: bool) -> Entry:
        """Send ``decision``'s transaction (its compares, the chain, ``fence``) after every
        one enqueued before, and return its entry; ``entry.done`` is its outcome."""
        assert self.broken is None, "recover() before enqueueing after a failure"
        txn: asyncio.Future[TxnResult] | None = None
        d = decision
        if d.ops or d.compares:
            compares: list[Compare] = list(d.compares)
            if self._chain is not None and any(e.txn for e in self._entries):
                compares.append(Compare.value(CHAIN, "==", self._chain))
            if fence is not None:
                compares.append(fence)
            self._counter += 1
            self._chain = f"{self._token}/{self._counter}".encode()
            ops: list[Op] = [*d.ops, Put(CHAIN, self._chain)]
            txn = self._send(compares, ops)
        entry = Entry(d, early, fence, txn)
        self._entries.append(entry)
        self._idle.clear()
        if self._completer is None or self._completer.done():
            self._completer = asyncio.create_task(self._complete(), name="commit pipeline")
        return entry

    def _send(self, compares: Sequence[Compare], ops: Sequence[Op]) -> asyncio.Future[TxnResult]:
        if self._ordered:  # the store queues it when the call starts: tasks start in order
            txn = asyncio.ensure_future(self.store.txn(compares, ops))
        else:
            txn = asyncio.ensure_future(self._after(self._last_txn, compares, ops))
        self._last_txn = txn
        return txn

    async def _after(
        self,
        before: asyncio.Future[TxnResult] | None,
        compares: Sequence[Compare],
        ops: Sequence[Op],
    ) -> TxnResult:
        if before is not None:
            with contextlib.suppress(BaseException):
                await asyncio.shield(before)
        return await self.store.txn(compares, ops)

    async def _complete(self) -> None:
        """Take each entry's outcome in order."""
        while self._entries:
            entry = self._entries[0]
            result: TxnResult | None = None
            error: BaseException | None = None
            if entry.txn is not None:
                try:
                    result = await entry.txn  # not shielded: a shield costs a loop turn
                except asyncio.CancelledError:
                    if not entry.txn.cancelled():
                        raise  # the completer itself is cancelled (the master stops)
                    error = TxnAborted("the store's transaction was cancelled")
                except Exception as e:
                    error = e
            try:
                await self._outcome(entry, result, error)
            finally:
                self._entries.popleft()
        self._idle.set()

    async def _outcome(
        self, entry: Entry, result: TxnResult | None, error: BaseException | None
    ) -> None:
        done = entry.done
        if self.broken is not None:
            # Decided on top of a decision that did not commit: refused by the chain (or,
            # after an unknown outcome, perhaps stored: the reload shows it either way).
            if self._deposed:
                _fail(done, NotLeader())
            else:
                _fail(done, TxnAborted("a write decided before it failed; retry"))
            return
        if error is not None:
            self.broken = error
            log.warning("a commit failed (%s); later ones in flight are refused", error)
            _fail(done, error)
            return
        if result is not None and not result.succeeded:
            self.broken = result
            if entry.fence is not None and not await self._fence_holds(entry.fence):
                self._deposed = True
                _fail(done, self._on_deposed())
            elif not done.done():
                done.set_result(result)  # its own compare: the writer says what it means
            return
        try:
            result = self._finish(entry, result)
        except Exception as e:  # stored: the writer hears of the bug
            log.exception("carrying out a committed decision failed")
            _fail(done, e)
            return
        if not done.done():
            done.set_result(result)

    async def drained(self) -> None:
        """Return once no entry is in flight."""
        await self._idle.wait()

    def recovered(self) -> None:
        """The memory was read again: enqueue again (a new chain, nothing in flight)."""
        assert not self._entries
        self.broken = None
        self._deposed = False
        self._last_txn = None

    async def close(self) -> None:
        """Stop taking outcomes (the master stops): writers still waiting are told so."""
        if self._completer is not None:
            self._completer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._completer
        for entry in self._entries:
            _fail(entry.done, TxnAborted("the master is stopping"))
        self._entries.clear()
        self._idle.set()


def _fail(done: asyncio.Future[TxnResult], error: BaseException) -> None:
    if not done.done():
        done.set_exception(error)
        done.exception()  # retrieved: a writer that went away leaves no warning behind
