"""``pallet bench api --mixed``: many clients reading and writing apps at once against a real
master (``pallet master`` in a subprocess, SQLite store); spawns it, does network I/O.

The master holds ``apps`` apps (0 instances: the API and the store are measured, not
placement). Then, for ``seconds``, ``clients`` keep-alive clients each loop: 70 % of
their requests are ``GET /v2/apps`` (gzip), the rest in equal parts create an app,
update one (a new ``cmd``: a new version, a deployment) and delete one, each client on
apps of its own (so no two clients race on one app; ``force=true`` as the Marathon
tools send it when a deployment of the app may still be in flight). Reported: errors
(any answer but 2xx, or a broken connection), read p50/p99, writes per second, and —
the baseline, same master, same size — the read p99 of the same clients reading only.
The store's file size is compared with the bytes of its live records before and after.
A bound on the writes per second this machine allows comes from the same clients asking
the same master ``GET /ping`` (no work) first: no request can be cheaper than that.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import sqlite3
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pallet.bench.cluster import free_port, running_master

__all__ = ["MixedResult", "StoreSize", "run_mixed_bench"]

READ_SHARE = 0.7


class _Client:
    """One keep-alive HTTP/1.1 connection, requests one after another; lean so that what
    is measured is the master."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        """(status, body); 0 and the error's name when the connection broke."""
        try:
            return await self._request(method, path, body)
        except (OSError, asyncio.IncompleteReadError, ValueError) as e:
            self.close()
            return 0, type(e).__name__.encode()

    async def _request(self, method: str, path: str, body: Any) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        data = b"" if body is None else json.dumps(body).encode()
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nAccept-Encoding: gzip\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
        )
        self.writer.write(head.encode() + data)
        answer = await self.reader.readuntil(b"\r\n\r\n")
        status = int(answer.split(b" ", 2)[1])
        length = 0
        for line in answer.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def _app(app_id: str, version: int = 0) -> dict[str, Any]:
    return {
        "id": app_id,
        "cmd": f"sleep {600 + version}",
        "cpus": 0.01,
        "mem": 8,
        "instances": 0,
        "labels": {"bench": "mixed"},
    }


@dataclass(frozen=True, slots=True)
class StoreSize:
    """The SQLite store on disk against what it holds live."""

    file_bytes: int
    live_bytes: int
    """Keys and values of the live records."""
    live_keys: int
    history_events: int

    @property
    def ratio(self) -> float:
        return self.file_bytes / self.live_bytes if self.live_bytes else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "file_bytes": self.file_bytes,
            "live_bytes": self.live_bytes,
            "live_keys": self.live_keys,
            "history_events": self.history_events,
            "ratio": round(self.ratio, 2),
        }


def store_size(db: Path, keep: Path | None = None) -> StoreSize:
    """The master's SQLite file (and its WAL) against its live records. The master holds
    the file exclusively, so the records are counted in a copy of both files (SQLite
    reads a copy taken mid-write as of its last whole commit); the copy is also left in
    directory ``keep`` if given."""
    files = [db, db.with_name(db.name + "-wal")]
    size = sum(p.stat().st_size for p in files if p.exists())
    with tempfile.TemporaryDirectory(prefix="pallet-bench-store-") as tmp:
        copy = Path(tmp) / db.name
        for p in files:
            if p.exists():
                shutil.copyfile(p, copy.with_name(p.name))
                if keep is not None:
                    keep.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(p, keep / p.name)
        con = sqlite3.connect(copy)
        try:
            live, keys = con.execute(
                "SELECT COALESCE(SUM(LENGTH(key) + LENGTH(value)), 0), COUNT(*) FROM kv"
            ).fetchone()
            (events,) = con.execute("SELECT COUNT(*) FROM history").fetchone()
        finally:
            con.close()
    return StoreSize(size, int(live), int(keys), int(events))


@dataclass(slots=True)
class _Tally:
    reads_ms: list[float] = field(default_factory=list)
    writes_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class MixedResult:
    apps: int
    clients: int
    seconds: float
    requests: int
    reads: int
    writes: int
    errors: dict[str, int]
    read_p50_ms: float
    read_p99_ms: float
    write_p99_ms: float
    writes_per_s: float
    readonly_p50_ms: float
    readonly_p99_ms: float
    readonly_requests: int
    noop_per_s: float
    """``GET /ping`` answered per second by the same master to the same clients."""
    writes_per_s_bound: float
    """The most writes per second the mixed load could reach on this machine: every request
    costs at least a no-op's round trip, and writes are ``1 - read_share`` of them."""
    store_before: StoreSize
    store_after: StoreSize
    master_cpu_s: float = 0.0
    """CPU seconds the master used during the mixed load (every thread; 0: unknown)."""
    readonly_cpu_ms: float = 0.0
    """The master's CPU per request while the clients only read (cached lists)."""

    @property
    def cpu_per_write_ms(self) -> float:
        """The master's CPU per write under the mixed load, its reads priced at what a
        read cost in the read-only phase: what a write costs including the listing it
        makes stale (reads after a write rebuild it)."""
        if not self.writes:
            return 0.0
        reads = self.reads * self.readonly_cpu_ms / 1000
        return max(0.0, self.master_cpu_s - reads) * 1000 / self.writes

    def to_json(self) -> dict[str, Any]:
        return {
            "apps": self.apps,
            "clients": self.clients,
            "seconds": round(self.seconds, 1),
            "requests": self.requests,
            "reads": self.reads,
            "writes": self.writes,
            "errors": sum(self.errors.values()),
            "error_kinds": self.errors,
            "read_p50_ms": round(self.read_p50_ms, 1),
            "read_p99_ms": round(self.read_p99_ms, 1),
            "write_p99_ms": round(self.write_p99_ms, 1),
            "writes_per_s": round(self.writes_per_s, 1),
            "readonly_p50_ms": round(self.readonly_p50_ms, 1),
            "readonly_p99_ms": round(self.readonly_p99_ms, 1),
            "readonly_requests": self.readonly_requests,
            "noop_per_s": round(self.noop_per_s, 1),
            "writes_per_s_bound": round(self.writes_per_s_bound, 1),
            "master_cpu_s": round(self.master_cpu_s, 2),
            "master_busy": round(self.master_cpu_s / self.seconds, 2) if self.seconds else 0.0,
            "readonly_cpu_ms": round(self.readonly_cpu_ms, 2),
            "cpu_per_write_ms": round(self.cpu_per_write_ms, 2),
            "store_before": self.store_before.to_json(),
            "store_after": self.store_after.to_json(),
        }


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of process ``pid`` so far, all its threads (0.0 where
    ``/proc`` does not say)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def _create_all(url: str, ids: list[str], parallel: int = 16) -> None:
    clients = [_Client(url) for _ in range(parallel)]
    queue = list(reversed(ids))

    async def worker(client: _Client) -> None:
        while queue:
            app_id = queue.pop()
            status, body = await client.request("POST", "/v2/apps", _app(app_id))
            if status != 201:
                raise RuntimeError(f"POST /v2/apps {app_id}: HTTP {status}: {body[:300]!r}")

    try:
        await asyncio.gather(*(worker(c) for c in clients))
    finally:
        for c in clients:
            c.close()


async def _load(
    url: str, owned: list[list[str]], seconds: float, read_share: float, seed: int
) -> _Tally:
    """Each client loops over its own apps for ``seconds``; ``read_share`` of its requests
    are GET /v2/apps."""
    tally = _Tally()
    end = time.monotonic() + seconds
    fresh = iter(range(10**9))

    async def worker(index: int, mine: list[str]) -> None:
        rng = random.Random(seed * 1000 + index)
        client = _Client(url)
        versions: dict[str, int] = {}
        try:
            while time.monotonic() < end:
                pick = rng.random()
                if pick < read_share:
                    method, path, body, want = "GET", "/v2/apps", None, 200
                elif pick < read_share + (1 - read_share) / 3 or len(mine) < 2:
                    app_id = f"/mixed/c{index:03d}/new-{next(fresh)}"
                    method, path, body, want = "POST", "/v2/apps", _app(app_id), 201
                    mine.append(app_id)
                elif pick < read_share + 2 * (1 - read_share) / 3:
                    app_id = rng.choice(mine)
                    versions[app_id] = versions.get(app_id, 0) + 1
                    body = _app(app_id, versions[app_id])
                    method, path, want = "PUT", f"/v2/apps{app_id}?force=true", 200
                else:
                    app_id = mine.pop(rng.randrange(len(mine)))
                    method, path, body, want = "DELETE", f"/v2/apps{app_id}?force=true", None, 200
                start = time.perf_counter()
                status, answer = await client.request(method, path, body)
                ms = (time.perf_counter() - start) * 1000
                (tally.reads_ms if method == "GET" else tally.writes_ms).append(ms)
                if status != want:
                    tally.errors[f"{method} {status or answer.decode()}"] += 1
        finally:
            client.close()

    await asyncio.gather(*(worker(i, mine) for i, mine in enumerate(owned)))
    return tally


async def _noop_load(url: str, clients: int, seconds: float) -> _Tally:
    """``clients`` keep-alive clients asking ``GET /ping`` (no work behind it) for
    ``seconds``: how many requests of any kind this master and these clients can exchange
    per second on this machine."""
    tally = _Tally()
    end = time.monotonic() + seconds

    async def worker() -> None:
        client = _Client(url)
        try:
            while time.monotonic() < end:
                start = time.perf_counter()
                status, answer = await client.request("GET", "/ping")
                tally.reads_ms.append((time.perf_counter() - start) * 1000)
                if status != 200:
                    tally.errors[f"GET /ping {status or answer.decode()}"] += 1
        finally:
            client.close()

    await asyncio.gather(*(worker() for _ in range(clients)))
    return tally


def run_mixed_bench(
    apps: int = 3_000,
    clients: int = 200,
    seconds: float = 60.0,
    readonly_seconds: float = 15.0,
    read_share: float = READ_SHARE,
    noop_seconds: float = 5.0,
    seed: int = 16,
    keep_store: Path | None = None,
) -> MixedResult:
    """Create ``apps`` apps, measure ``clients`` reading only (the baseline), then the mixed
    load for ``seconds``; the store's size before and after the mixed load (the store's
    file as it was after, and its WAL, are copied to directory ``keep_store`` if given)."""
    owned = [
        [f"/mixed/c{c:03d}/app-{i:05d}" for i in range(c, apps, clients)] for c in range(clients)
    ]
    with tempfile.TemporaryDirectory(prefix="pallet-bench-mixed-") as tmp:
        state = Path(tmp)
        info: dict[str, int] = {}
        with running_master(state, free_port(), info) as url:
            asyncio.run(_create_all(url, [a for mine in owned for a in mine]))
            noop = asyncio.run(_noop_load(url, clients, noop_seconds))
            cpu0 = cpu_seconds(info["pid"])
            readonly = asyncio.run(_load(url, [[] for _ in owned], readonly_seconds, 1.0, seed))
            cpu1 = cpu_seconds(info["pid"])
            before = store_size(state / "state.db")
            start = time.monotonic()
            cpu2 = cpu_seconds(info["pid"])
            mixed = asyncio.run(_load(url, owned, seconds, read_share, seed))
            cpu3 = cpu_seconds(info["pid"])
            elapsed = time.monotonic() - start
            after = store_size(state / "state.db", keep_store)
    errors = dict(noop.errors + readonly.errors + mixed.errors)
    noop_per_s = len(noop.reads_ms) / noop_seconds
    return MixedResult(
        apps=apps,
        clients=clients,
        seconds=elapsed,
        requests=len(mixed.reads_ms) + len(mixed.writes_ms),
        reads=len(mixed.reads_ms),
        writes=len(mixed.writes_ms),
        errors=errors,
        read_p50_ms=_pct(mixed.reads_ms, 0.5),
        read_p99_ms=_pct(mixed.reads_ms, 0.99),
        write_p99_ms=_pct(mixed.writes_ms, 0.99),
        writes_per_s=len(mixed.writes_ms) / elapsed if elapsed else 0.0,
        readonly_p50_ms=_pct(readonly.reads_ms, 0.5),
        readonly_p99_ms=_pct(readonly.reads_ms, 0.99),
        readonly_requests=len(readonly.reads_ms),
        noop_per_s=noop_per_s,
        writes_per_s_bound=noop_per_s * (1 - read_share),
        store_before=before,
        store_after=after,
        master_cpu_s=cpu3 - cpu2,
        readonly_cpu_ms=(cpu1 - cpu0) * 1000 / max(1, len(readonly.reads_ms)),
    )
