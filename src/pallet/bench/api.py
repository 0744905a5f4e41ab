"""``pallet bench api``: latency of ``GET /v2/apps`` with 1,000 apps under 50 concurrent
clients, against a real master (``pallet master`` in a subprocess, SQLite store).

Dashboards and the Marathon tools poll this endpoint; the master serves it from a cache
of the serialized list that every change of the cluster's state invalidates.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from pallet.bench.cluster import free_port, running_master

__all__ = ["ApiResult", "KeepAliveGet", "run_api_bench"]


@dataclass(frozen=True, slots=True)
class ApiResult:
    apps: int
    clients: int
    requests: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    body_bytes: int

    def to_json(self) -> dict[str, Any]:
        return {
            "apps": self.apps,
            "clients": self.clients,
            "p50_ms": round(self.p50_ms, 2),
            "p99_ms": round(self.p99_ms, 2),
        }


async def _create_apps(url: str, count: int, headers: dict[str, str] | None = None) -> None:
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(
        base_url=url, timeout=60.0, limits=limits, headers=headers
    ) as client:
        sem = asyncio.Semaphore(16)

        async def one(i: int) -> None:
            body = {
                "id": f"/bench/app-{i:04d}",
                "cmd": "sleep 600",
                "cpus": 0.01,
                "mem": 8,
                "instances": 0,
                "labels": {"bench": "api"},
            }
            async with sem:
                r = await client.post("/v2/apps", json=body)
                r.raise_for_status()

        await asyncio.gather(*(one(i) for i in range(count)))


class KeepAliveGet:
    """One client: a keep-alive HTTP/1.1 connection to ``url`` sending GETs (gzip) one after
    another. Lean on purpose, so the latency measured is the master's, not a heavy
    client's."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> bytes:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\nAccept-Encoding: gzip\r\n"
            f"{self.extra}\r\n".encode()
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await self.reader.readexactly(length)
        if status != 200:
            raise RuntimeError(f"GET {path}: HTTP {status}")
        return body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def _measure(
    url: str, clients: int, per_client: int, headers: dict[str, str] | None = None
) -> tuple[list[float], int]:
    latencies: list[float] = []
    size = 0
    conns = [KeepAliveGet(url, headers) for _ in range(clients)]
    for conn in conns:  # open the connections and warm the master's cache
        await conn.get("/v2/apps")

    async def worker(conn: KeepAliveGet) -> None:
        nonlocal size
        for _ in range(per_client):
            start = time.perf_counter()
            body = await conn.get("/v2/apps")
            latencies.append((time.perf_counter() - start) * 1000)
            size = len(body)

    try:
        await asyncio.gather(*(worker(c) for c in conns))
    finally:
        for conn in conns:
            conn.close()
    return latencies, size


def _settle(url: str, timeout: float = 60.0, headers: dict[str, str] | None = None) -> None:
    """Wait until the creations' deployments are done: measure a cluster at rest."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=url, timeout=10.0, headers=headers) as client:
        while client.get("/v2/deployments").json() and time.monotonic() < deadline:
            time.sleep(0.1)


def run_api_bench(apps: int = 1000, clients: int = 50, per_client: int = 20) -> ApiResult:
    with (
        tempfile.TemporaryDirectory(prefix="pallet-bench-api-") as tmp,
        running_master(Path(tmp), free_port()) as url,
    ):
        asyncio.run(_create_apps(url, apps))
        _settle(url)
        latencies, size = asyncio.run(_measure(url, clients, per_client))
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return ApiResult(
        apps, clients, len(latencies), statistics.median(latencies), p99, latencies[-1], size
    )
