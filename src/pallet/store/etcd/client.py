"""Calls to etcd's v3 JSON gateway over HTTP, across several members: rotate to the next
member when one fails, retry within a deadline, check every answer's cluster id; does I/O.

What may be retried follows etcd's own client: a read may always be sent again; a write only
when it surely was not applied (the connection was refused, or etcd said it has no leader);
a write whose answer was lost raises ``StoreUnavailable(outcome_unknown=True)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from pallet.store.errors import StoreClosed, StoreUnavailable, WrongCluster
from pallet.store.etcd.http import ConnectFailed, HttpPool, HttpStream, ResponseLost
from pallet.store.etcd.url import EtcdUrl
from pallet.store.etcd.wire import Json

__all__ = ["Call", "EtcdClient", "Refused"]

log = logging.getLogger(__name__)

_NOT_APPLIED = (
    "etcdserver: no leader",
    "etcdserver: not capable",
    "etcdserver: too many requests",
    "etcdserver: unhealthy cluster",
)
"""Unavailable answers given before a request was proposed: safe to send again anywhere."""

_TRANSIENT_CODES = {4, 8, 14}  # DeadlineExceeded, ResourceExhausted, Unavailable
_FIRST_BACKOFF = 0.05
_MAX_BACKOFF = 1.0


class Call(enum.Enum):
    READ = "read"
    WRITE = "write"


class Refused(Exception):
    """etcd answered with an error that sending again will not change (``code`` is gRPC's);
    the store turns it into a Pallet error."""

    def __init__(self, endpoint: str, code: int, message: str) -> None:
        super().__init__(f"{endpoint}: {message}")
        self.endpoint = endpoint
        self.code = code
        self.message = message


class _Retry(Exception):
    """This member failed in a way another member (or a later try) may not."""

    def __init__(self, reason: str, *, applied_maybe: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.applied_maybe = applied_maybe


class EtcdClient:
    """One HTTP connection pool to a list of etcd members; ``call`` sends one request."""

    def __init__(self, url: EtcdUrl, name: str) -> None:
        self.name = name
        self.members = url.members
        self.cluster_id = url.cluster_id
        self.timeout = url.timeout
        self.revision = 0
        """The highest store revision any answer carried."""
        self._current = 0
        self._down: set[str] = set()
        self._member_ids: dict[str, int] = {}
        """Each member's etcd id, from the headers of its answers."""
        self._dead: set[int] = set()
        """Ids of members that stopped answering (until they answer again)."""
        self._leader_checked_until = 0.0
        self._closed = False
        self._per_try = min(5.0, url.timeout)
        self._http = HttpPool(connect_timeout=min(1.0, self._per_try))

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def current(self) -> str:
        """The member requests go to first."""
        return self.members[self._current]

    async def aclose(self) -> None:
        self._closed = True
        await self._http.aclose()

    async def call(self, path: str, body: Json, kind: Call) -> Json:
        """POST ``body`` to ``path`` (e.g. ``/v3/kv/range``) and return the answer, trying
        the members in turn until one answers or ``timeout`` seconds have passed."""
        failures: dict[str, str] = {}
        deadline = time.monotonic() + self.timeout
        backoff = _FIRST_BACKOFF
        while True:
            for _ in range(len(self.members)):
                member = self.current
                try:
                    if kind is Call.WRITE and self._dead:
                        await self._wait_for_live_leader(member, deadline)
                    return await self._post(member, path, body)
                except _Retry as retry:
                    if retry.applied_maybe and kind is Call.WRITE:
                        self.mark_failed(member, retry.reason)
                        raise StoreUnavailable(
                            self.name, f"{member}: {retry.reason}", outcome_unknown=True
                        ) from None
                    self.mark_failed(member, retry.reason)
                    failures[member] = retry.reason
                except WrongCluster as wrong:
                    self.mark_failed(member, str(wrong))
                    failures[member] = str(wrong)
                    if all("belongs to cluster" in f for f in failures.values()) and len(
                        failures
                    ) == len(self.members):
                        raise
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                detail = "; ".join(f"{m}: {r}" for m, r in failures.items())
                raise StoreUnavailable(self.name, detail)
            await asyncio.sleep(min(backoff, remaining))
            backoff = min(backoff * 2, _MAX_BACKOFF)

    async def _wait_for_live_leader(self, member: str, deadline: float) -> None:
        """Hold a write while ``member`` follows a leader that stopped answering us.

        A follower forwards a write to its leader; if that leader is dead the write is lost
        and etcd answers only when its own timeout ends, so its outcome is unknown. When a
        member has failed, ask before each write (at most once a second) whom ``member``
        follows, and wait out the election instead."""
        if time.monotonic() < self._leader_checked_until:
            return
        while time.monotonic() < deadline:
            status = await self._post(member, "/v3/maintenance/status", {})
            leader = int(status.get("leader", 0))
            if leader and leader not in self._dead:
                self._leader_checked_until = time.monotonic() + 1.0
                return
            await asyncio.sleep(_FIRST_BACKOFF)

    async def _post(self, member: str, path: str, body: Json) -> Json:
        if self._closed:
            raise StoreClosed(self.name)
        try:
            status, content = await self._http.post(
                member, path, json.dumps(body).encode(), self._per_try
            )
        except ConnectFailed as e:
            raise _Retry(str(e), applied_maybe=False) from None
        except ResponseLost as e:
            if self._closed:
                raise StoreClosed(self.name) from None
            raise _Retry(str(e), applied_maybe=True) from None
        return self.answer(member, status, content)

    def answer(self, member: str, status: int, content: bytes) -> Json:
        """The JSON of one answer, its cluster checked and its revision noted; or the
        error it carries, raised."""
        try:
            message = json.loads(content)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            text = content[:200].decode("utf-8", "replace")
            raise _Retry(f"HTTP {status}, not etcd's JSON: {text!r}", applied_maybe=True)
        if status != 200 or ("error" in message and "code" in message):
            error = message.get("message") or message.get("error") or f"HTTP {status}"
            code = int(message.get("code", 0))
            if code in _TRANSIENT_CODES:
                raise _Retry(str(error), applied_maybe=str(error) not in _NOT_APPLIED)
            raise Refused(member, code, str(error))
        self.check_header(member, message.get("header") or message.get("result", {}).get("header"))
        self._answered(member)
        return message

    def check_header(self, member: str, header: Any) -> None:
        if not isinstance(header, dict):
            return
        member_id = int(header.get("member_id", 0))
        if member_id:
            self._member_ids[member] = member_id
        cluster = int(header.get("cluster_id", 0))
        if cluster:
            if self.cluster_id is None:
                self.cluster_id = cluster
            elif cluster != self.cluster_id:
                raise WrongCluster(member, str(self.cluster_id), str(cluster))
        revision = int(header.get("revision", 0))
        if revision > self.revision:
            self.revision = revision

    def mark_failed(self, member: str, reason: str) -> None:
        """Move on to the next member when ``member`` is still the current one; say so
        once per member until it answers again."""
        if member in self._member_ids:
            self._dead.add(self._member_ids[member])
        if member not in self._down:
            self._down.add(member)
            log.warning("etcd member %s failed: %s", member, reason)
        if self.current == member:
            self._current = (self._current + 1) % len(self.members)

    def _answered(self, member: str) -> None:
        if self._dead and member in self._member_ids:
            self._dead.discard(self._member_ids[member])
        if self._down and member in self._down:
            self._down.discard(member)
            log.warning("etcd member %s answers again", member)

    @contextlib.asynccontextmanager
    async def stream(self, path: str, body: Json) -> AsyncIterator[tuple[str, HttpStream]]:
        """A streaming POST (a watch) to the first member that takes it, as ``(member,
        stream)``; connecting retries across members within the timeout. The stream has no
        read timeout of its own."""
        failures: dict[str, str] = {}
        deadline = time.monotonic() + self.timeout
        backoff = _FIRST_BACKOFF
        data = json.dumps(body).encode()
        while True:
            for _ in range(len(self.members)):
                member = self.current
                if self._closed:
                    raise StoreClosed(self.name)
                try:
                    stream = await self._http.stream(member, path, data)
                except (ConnectFailed, ResponseLost) as e:
                    self.mark_failed(member, str(e))
                    failures[member] = str(e)
                    continue
                try:
                    if stream.status != 200:
                        self.answer(member, stream.status, await stream.read_all())
                    yield member, stream
                    return
                except _Retry as retry:
                    self.mark_failed(member, retry.reason)
                    failures[member] = retry.reason
                finally:
                    stream.close()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                detail = "; ".join(f"{m}: {r}" for m, r in failures.items())
                raise StoreUnavailable(self.name, detail)
            await asyncio.sleep(min(backoff, remaining))
            backoff = min(backoff * 2, _MAX_BACKOFF)
