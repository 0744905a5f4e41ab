"""A watch on etcd: one streaming request to the gateway, read by a task into a short queue,
reopened on another member from the next revision when its member goes away; does I/O.

The queue holds a few of etcd's answers only: a consumer that does not read stops the
reading, and etcd keeps the rest (its "unsynced" watchers) instead of this process. The
consumer applies the store's history bound, so a watcher that falls behind it gets
``Compacted`` exactly as on the embedded stores.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Callable
from types import TracebackType

from pallet.store.errors import Compacted, StoreError, WrongCluster
from pallet.store.etcd.client import EtcdClient, Refused
from pallet.store.etcd.http import HttpStream, ResponseLost
from pallet.store.etcd.wire import Json, decode_event, key_range
from pallet.store.kv import WatchEvent

__all__ = ["EtcdWatch"]

log = logging.getLogger(__name__)

_FIRST_BACKOFF = 0.05
_MAX_BACKOFF = 1.0
IDLE = 30.0
"""Seconds without a word from etcd after which a watch reopens (a member cut off by the
network sends no reset; reopening from the next revision loses nothing)."""


class _Cancelled:
    """etcd ended the watch: its start is older than etcd's compaction at ``compacted``."""

    def __init__(self, compacted: int) -> None:
        self.compacted = compacted


_Item = list[WatchEvent] | _Cancelled | BaseException


class EtcdWatch:
    """The events of keys starting with ``prefix`` from revision ``start`` on (None: after
    the revision current when it opens). ``open()`` before iterating."""

    def __init__(
        self,
        client: EtcdClient,
        prefix: str,
        start: int | None,
        oldest: Callable[[], int],
    ) -> None:
        self.prefix = prefix
        self._client = client
        self._oldest = oldest
        self._next = start or 0
        """The first revision not yet handed to the consumer."""
        self._received = start or 0
        """The first revision not yet read from etcd (where a reopened stream starts)."""
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(maxsize=4)
        self._buffer: deque[WatchEvent] = deque()
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._reader: asyncio.Task[None] | None = None
        self._ended: BaseException | None = None

    @property
    def next_revision(self) -> int:
        return self._next

    async def open(self) -> None:
        """Start reading; return once etcd has created the watch."""
        self._reader = asyncio.create_task(self._read(), name=f"etcd watch {self.prefix!r}")
        try:
            await self._ready
        except BaseException:
            await self._stop()
            raise

    def __aiter__(self) -> EtcdWatch:
        return self

    async def __anext__(self) -> WatchEvent:
        while not self._buffer:
            if self._ended is not None:
                raise self._ended
            item = await self._queue.get()
            if isinstance(item, BaseException):
                self._ended = item
                continue
            if isinstance(item, _Cancelled):
                self._ended = Compacted(self._next, item.compacted + 1)
                continue
            oldest = self._oldest()
            if item[0].revision < oldest:  # fell behind the history the store keeps
                self._ended = Compacted(self._next, oldest)
                await self._stop()
                continue
            self._buffer.extend(item)
        event = self._buffer.popleft()
        self._next = event.revision + 1
        return event

    async def aclose(self) -> None:
        """Stop: a pending or later ``__anext__`` ends the iteration."""
        await self.end(StopAsyncIteration())

    async def end(self, reason: BaseException) -> None:
        """Stop reading; waiting and later ``__anext__`` calls raise ``reason``."""
        if self._ended is None:
            self._ended = reason
        await self._stop()
        self._buffer.clear()
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(self._ended)

    async def __aenter__(self) -> EtcdWatch:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _stop(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
            await asyncio.wait({reader})  # unlike awaiting it, lets our own cancel through

    def _request(self) -> Json:
        create: Json = {**key_range(self.prefix), "prev_kv": True}
        if self._received:
            create["start_revision"] = str(self._received)
        return {"create_request": create}

    async def _read(self) -> None:
        """Read etcd's answers into the queue until stopped; reopen after a member fails."""
        backoff = _FIRST_BACKOFF
        try:
            while True:
                member = self._client.current
                try:
                    async with self._client.stream("/v3/watch", self._request()) as (member, rsp):
                        if await self._follow(member, rsp):
                            return
                except (TimeoutError, ResponseLost, _Reopen) as e:
                    reason = str(e) or type(e).__name__
                    log.info("etcd watch on %s ended (%s); reopening", member, reason)
                    self._client.mark_failed(member, reason)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, _MAX_BACKOFF)
        except asyncio.CancelledError:
            raise
        except StoreError as e:
            await self._fail(e)
        except Refused as e:
            await self._fail(StoreError(f"etcd refused a watch: {e}"))
        except Exception as e:  # a bug here must not leave the consumer waiting forever
            log.exception("etcd watch failed")
            await self._fail(StoreError(f"etcd watch failed: {e}"))

    async def _fail(self, error: BaseException) -> None:
        if not self._ready.done():
            self._ready.set_exception(error)
        else:
            await self._queue.put(error)  # after what the consumer has not read yet

    async def _follow(self, member: str, stream: HttpStream) -> bool:
        """Read one stream; True when etcd ended the watch for good."""
        while True:
            async with asyncio.timeout(IDLE):  # not wait_for: in 3.11 it can swallow a cancel
                line = await stream.line()
            if line is None:
                raise _Reopen("the stream ended")
            if not line.strip():
                continue
            message = json.loads(line)
            if "error" in message:
                error = message["error"]
                raise _Reopen(
                    str(error.get("message", error) if isinstance(error, dict) else error)
                )
            result = message.get("result", {})
            try:
                self._client.check_header(member, result.get("header"))
            except WrongCluster as e:
                raise _Reopen(str(e)) from None
            if result.get("created"):
                if not self._received:
                    self._received = int(result["header"]["revision"]) + 1
                    self._next = self._received
                if not self._ready.done():
                    self._ready.set_result(None)
                continue
            if result.get("canceled"):
                compacted = int(result.get("compact_revision", 0))
                if compacted:
                    await self._queue.put(_Cancelled(compacted))
                    return True
                reason = result.get("cancel_reason", "canceled by etcd")
                raise _Reopen(str(reason))
            events = [decode_event(e) for e in result.get("events", ())]
            if events:
                self._received = events[-1].revision + 1
                await self._queue.put(events)


class _Reopen(Exception):
    """The stream ended in a way reopening it (on the next member) can cure."""
