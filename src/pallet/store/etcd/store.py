"""``EtcdStore``: the ``Store`` protocol on an etcd 3 cluster, through its v3 JSON gateway;
does I/O (HTTP to etcd's members).

etcd already numbers revisions as the protocol does (a new cluster is at revision 1; each
transaction that writes adds one), so revisions pass through unchanged. What the store adds
on top of etcd:

- **History** is bounded as on the embedded stores (``?history=N``): revisions more than N
  behind the newest one seen are treated as compacted, and etcd is compacted behind that
  bound as the store writes. etcd's compaction at revision R drops the deletions made *at*
  R, so the store compacts etcd at R - 1 and reports R as the oldest revision kept: a watch
  from the oldest revision sees every event of it, as on the embedded stores.
- **Leases** live in etcd (their keys go when etcd expires them), and this store also keeps
  the deadline of each lease it granted on its own clock, revoking it once that passes, so
  tests and the simulator drive lease time exactly as with the embedded stores.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import weakref
from collections.abc import Sequence

from pallet.store.embedded import Clock
from pallet.store.errors import (
    Compacted,
    InvalidArgument,
    LeaseNotFound,
    StoreClosed,
    StoreError,
)
from pallet.store.etcd.client import Call, EtcdClient, Refused
from pallet.store.etcd.url import EtcdUrl
from pallet.store.etcd.watch import EtcdWatch
from pallet.store.etcd.wire import (
    Json,
    b64,
    decode_kv,
    decode_response,
    encode_compare,
    encode_op,
    key_range,
    revision_of,
)
from pallet.store.kv import KeyValue
from pallet.store.leases import LeaseDeadlines, expire_forever
from pallet.store.protocol import Store
from pallet.store.txn import (
    ETCD_MAX_REQUEST_BYTES,
    MAX_TXN_OPS,
    Compare,
    Get,
    GetPrefix,
    Op,
    Put,
    TxnResult,
    make_txn,
)
from pallet.store.validate import check_key, check_lease, check_prefix, check_revision, check_ttl

__all__ = ["EtcdStore"]

log = logging.getLogger(__name__)

_PAGE = 1000
"""Keys per range request when listing (a big listing is read in pages at one revision)."""

_COMPACTED = "mvcc: required revision has been compacted"
_FUTURE = "mvcc: required revision is a future revision"
_LEASE_NOT_FOUND = "requested lease not found"
_TOO_MANY_OPS = "too many operations in txn request"
_TOO_LARGE = "request is too large"
_FIRST_KEY = b64(b"\x00")


class EtcdStore(Store):
    """A ``Store`` on the etcd cluster ``url`` names."""

    def __init__(self, url: EtcdUrl, name: str, *, clock: Clock, history: int) -> None:
        if history < 1:
            raise InvalidArgument("history", f"keep at least 1 revision of history, not {history}")
        self._name = name
        self._client = EtcdClient(url, name)
        self._clock = clock
        self._history = history
        self._compact_step = max(1, min(1000, history // 10))
        self._etcd_compacted = -1
        """The highest revision etcd is known to be compacted at (-1: none known)."""
        self._compacting: asyncio.Task[None] | None = None
        self._deadlines = LeaseDeadlines()
        self._watches: weakref.WeakSet[EtcdWatch] = weakref.WeakSet()
        self._reaper: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self, expiry_interval: float | None) -> None:
        """With an interval, start expiring the leases this store granted."""
        if expiry_interval is not None and not (
            isinstance(expiry_interval, int | float) and expiry_interval > 0
        ):
            raise InvalidArgument(
                "expiry_interval", f"must be > 0 seconds or None, not {expiry_interval!r}"
            )
        if expiry_interval is not None:
            self._reaper = asyncio.create_task(
                expire_forever(self.expire_leases, expiry_interval), name=f"{self._name} leases"
            )

    def __repr__(self) -> str:
        return f"<Store {self._name}{' closed' if self._closed else ''}>"

    @property
    def cluster_id(self) -> int | None:
        """The etcd cluster's id, once an answer has carried it."""
        return self._client.cluster_id

    # Reads

    async def get(self, key: str) -> KeyValue | None:
        key = check_key(key)
        answer = await self._call("/v3/kv/range", {"key": b64(key.encode())}, Call.READ)
        kvs = answer.get("kvs") or ()
        return decode_kv(kvs[0]) if kvs else None

    async def list(self, prefix: str = "") -> tuple[builtins.list[KeyValue], int]:
        prefix = check_prefix(prefix)
        request: Json = {**key_range(prefix), "limit": str(_PAGE)}
        answer = await self._call("/v3/kv/range", request, Call.READ)
        revision = revision_of(answer)
        kvs = [decode_kv(m) for m in answer.get("kvs") or ()]
        while answer.get("more"):  # the rest at the same revision, after the last key read
            after = kvs[-1].key.encode() + b"\x00"
            request = {**request, "key": b64(after), "revision": str(revision)}
            try:
                answer = await self._call("/v3/kv/range", request, Call.READ)
            except Compacted:  # compacted under a very long listing: read it all again
                return await self.list(prefix)
            kvs.extend(decode_kv(m) for m in answer.get("kvs") or ())
        return kvs, revision

    async def revision(self) -> int:
        answer = await self._call(
            "/v3/kv/range", {"key": _FIRST_KEY, "count_only": True}, Call.READ
        )
        return revision_of(answer)

    # Writes

    async def txn(
        self,
        compares: Sequence[Compare] = (),
        on_success: Sequence[Op] = (),
        on_failure: Sequence[Op] = (),
    ) -> TxnResult:
        txn = make_txn(compares, on_success, on_failure)
        self._check_open()
        request = {
            "compare": [encode_compare(c) for c in txn.compares],
            "success": [encode_op(op) for op in txn.on_success],
            "failure": [encode_op(op) for op in txn.on_failure],
        }
        reads_only = all(isinstance(op, Get | GetPrefix) for op in txn.on_success + txn.on_failure)
        try:
            answer = await self._call(
                "/v3/kv/txn", request, Call.READ if reads_only else Call.WRITE
            )
        except LeaseNotFound:
            leases = sorted(
                {
                    op.lease
                    for op in txn.on_success + txn.on_failure
                    if isinstance(op, Put) and op.lease
                }
            )
            raise LeaseNotFound(await self._first_missing(leases)) from None
        succeeded = bool(answer.get("succeeded"))
        ops = txn.on_success if succeeded else txn.on_failure
        messages = answer.get("responses") or ()
        responses = tuple(decode_response(op, m) for op, m in zip(ops, messages, strict=True))
        revision = revision_of(answer)
        if not reads_only:
            self._compact_behind(revision)
        return TxnResult(succeeded, revision, responses)

    async def compact(self, revision: int) -> None:
        revision = check_revision(revision)
        self._check_open()
        current = await self.revision()
        if revision > current:
            raise InvalidArgument(
                "revision", f"{revision} is in the future; the store is at {current}"
            )
        oldest = self._oldest()
        if revision <= oldest:
            raise Compacted(revision, oldest)
        await self._compact_etcd(revision - 1, requested=revision, kind=Call.WRITE)

    # Watches

    async def watch(self, prefix: str = "", start_revision: int | None = None) -> EtcdWatch:
        prefix = check_prefix(prefix)
        if start_revision is not None:
            start_revision = check_revision(start_revision, "start_revision")
        self._check_open()
        if start_revision is not None:
            await self._check_kept(start_revision)
        watch = EtcdWatch(self._client, prefix, start_revision, self._oldest)
        await watch.open()
        self._watches.add(watch)
        return watch

    async def _check_kept(self, start: int) -> None:
        """Raise ``Compacted`` unless the events of revision ``start`` on are all kept."""
        oldest = self._oldest()
        if start >= 2:  # etcd has compacted at start - 1 or later iff a read there fails
            request = {"key": _FIRST_KEY, "count_only": True, "revision": str(start - 1)}
            with contextlib.suppress(_Future):
                await self._call("/v3/kv/range", request, Call.READ)
            oldest = self._oldest()
        if start < oldest:
            raise Compacted(start, oldest)

    def _oldest(self) -> int:
        """The oldest revision whose events the store still serves."""
        return max(self._etcd_compacted + 1, self._client.revision - self._history + 1, 0)

    # Leases

    async def grant(self, ttl: int) -> int:
        ttl = check_ttl(ttl)
        answer = await self._call("/v3/lease/grant", {"TTL": str(ttl)}, Call.READ)
        lease = int(answer["ID"])
        self._deadlines.add(lease, ttl, self._clock())
        return lease

    async def keepalive(self, lease: int) -> int:
        lease = check_lease(lease)
        self._check_open()
        if self._deadlines.is_expired(lease, self._clock()):
            with contextlib.suppress(LeaseNotFound):  # as etcd: expired is gone, reaped or not
                await self.revoke(lease)
            raise LeaseNotFound(lease)
        answer = await self._call("/v3/lease/keepalive", {"ID": str(lease)}, Call.READ)
        ttl = int(answer.get("result", {}).get("TTL", 0))
        if ttl <= 0:
            self._deadlines.discard(lease)
            raise LeaseNotFound(lease)
        if lease in self._deadlines:
            return self._deadlines.renew(lease, self._clock())
        return ttl

    async def revoke(self, lease: int) -> None:
        lease = check_lease(lease)
        try:
            await self._call("/v3/lease/revoke", {"ID": str(lease)}, Call.WRITE)
        finally:
            self._deadlines.discard(lease)

    async def expire_leases(self) -> builtins.list[int]:
        self._check_open()
        expired = []
        for lease in self._deadlines.expired(self._clock()):
            with contextlib.suppress(LeaseNotFound):  # revoked meanwhile, or etcd expired it
                await self.revoke(lease)
                expired.append(lease)
        return expired

    async def _first_missing(self, leases: builtins.list[int]) -> int:
        """The first of ``leases`` etcd does not know (a put to it failed)."""
        for lease in leases:
            answer = await self._call("/v3/lease/timetolive", {"ID": str(lease)}, Call.READ)
            if int(answer.get("TTL", -1)) < 0:
                return lease
        return leases[0] if leases else 0

    # Closing

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        tasks = {t for t in (self._reaper, self._compacting) if t is not None}
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        for watch in builtins.list(self._watches):
            await watch.end(StoreClosed(self._name))
        await self._client.aclose()

    # Plumbing

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed(self._name)

    async def _call(self, path: str, body: Json, kind: Call) -> Json:
        self._check_open()
        try:
            return await self._client.call(path, body, kind)
        except Refused as refused:
            raise await self._error(refused, body) from None

    async def _error(self, refused: Refused, body: Json) -> Exception:
        """The Pallet error for an answer etcd refused."""
        message = refused.message
        if _COMPACTED in message:
            requested = int(body.get("revision", 0)) + 1
            oldest = await self._learn_compacted(requested)
            return Compacted(requested, oldest)
        if _FUTURE in message:
            return _Future(message)
        if _LEASE_NOT_FOUND in message:
            return LeaseNotFound(int(body.get("ID", 0)))
        if _TOO_MANY_OPS in message:
            return InvalidArgument(
                "on_success",
                f"etcd {refused.endpoint} allows fewer operations per transaction than "
                f"Pallet's {MAX_TXN_OPS}: start it with --max-txn-ops={MAX_TXN_OPS} or more",
            )
        if _TOO_LARGE in message:
            return InvalidArgument(
                "on_success",
                f"the transaction is larger than etcd {refused.endpoint} accepts: start it "
                f"with --max-request-bytes={ETCD_MAX_REQUEST_BYTES} or more",
            )
        return StoreError(f"etcd {refused.endpoint} refused the request: {message}")

    async def _learn_compacted(self, requested: int) -> int:
        """The oldest revision kept once etcd said ``requested`` - 1 is compacted: etcd
        names its compaction revision only when it cancels a watch from before it."""
        watch = EtcdWatch(self._client, "\x00", 1, lambda: 0)
        compacted = requested - 1
        try:
            await watch.open()
            async with asyncio.timeout(2.0):
                await anext(watch)
        except Compacted as e:
            compacted = e.oldest - 1
        except (StoreError, TimeoutError):
            pass
        finally:
            await watch.aclose()
        self._etcd_compacted = max(self._etcd_compacted, compacted)
        return self._oldest()

    def _compact_behind(self, revision: int) -> None:
        """Compact etcd behind the history bound, now and then, without waiting for it."""
        target = revision - self._history  # keeps every event of the oldest revision kept
        busy = self._compacting is not None and not self._compacting.done()
        if target - self._etcd_compacted >= self._compact_step and not busy:
            self._compacting = asyncio.create_task(self._compact_quietly(target))

    async def _compact_quietly(self, target: int) -> None:
        try:
            await self._compact_etcd(target, requested=target + 1, kind=Call.READ)
        except Compacted:
            pass
        except StoreError as e:
            log.warning("compacting etcd at revision %d failed: %s", target, e)

    async def _compact_etcd(self, target: int, *, requested: int, kind: Call) -> None:
        """Compact etcd at ``target`` (every event of ``target`` + 1 on stays). ``kind``
        READ sends it again after a lost answer (then "already compacted" may follow)."""
        try:
            await self._client.call("/v3/kv/compaction", {"revision": str(target)}, kind)
        except Refused as refused:
            if _COMPACTED in refused.message:
                await self._learn_compacted(target + 1)
                raise Compacted(requested, self._oldest()) from None
            raise await self._error(refused, {}) from None
        self._etcd_compacted = max(self._etcd_compacted, target)


class _Future(StoreError):
    """A read asked for a revision etcd has not reached (not an error for a watch start)."""
