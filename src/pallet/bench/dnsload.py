"""A DNS load generator for the benchmark: UDP queries with a fixed number in flight,
from one or more processes; throughput and latency percentiles; I/O.

Each process keeps ``window`` queries outstanding on one socket and records, per reply,
the time since its query left. A query unanswered for a second counts as lost.
"""

from __future__ import annotations

import multiprocessing
import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["LoadResult", "query_bytes", "run_load"]


def query_bytes(name: str, qtype: int = 1) -> bytes:
    """A plain recursive query for ``name`` (id 0: the generator stamps its own)."""
    wire = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"
    return struct.pack("!HHHHHH", 0, 0x0100, 1, 0, 0, 0) + wire + struct.pack("!HH", qtype, 1)


@dataclass(frozen=True, slots=True)
class LoadResult:
    queries: int
    answered: int
    lost: int
    seconds: float
    latencies_ms: tuple[float, ...]

    @property
    def qps(self) -> float:
        return self.answered / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def _one(args: tuple[str, int, list[bytes], float, int, int]) -> tuple[int, int, int, list[float]]:
    host, port, queries, seconds, window, seed = args
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect((host, port))
    sock.settimeout(1.0)
    sent_at = [0.0] * 65536
    outstanding: set[int] = set()
    latencies: list[float] = []
    sent = answered = lost = 0
    qid = seed * 4099 % 65536
    n = len(queries)
    clock = time.perf_counter
    end = clock() + seconds
    while True:
        now = clock()
        if now >= end and not outstanding:
            break
        while now < end and len(outstanding) < window:
            qid = (qid + 1) & 0xFFFF
            if qid in outstanding:
                continue
            q = queries[sent % n]
            try:
                sock.send(struct.pack("!H", qid) + q[2:])
            except ConnectionRefusedError:
                continue
            sent_at[qid] = clock()
            outstanding.add(qid)
            sent += 1
        try:
            data = sock.recv(4096)
        except ConnectionRefusedError:  # nothing listens (yet): the query is lost
            lost += 1
            outstanding.clear()
            continue
        except TimeoutError:
            lost += len(outstanding)
            outstanding.clear()
            continue
        rid = (data[0] << 8) | data[1]
        if rid in outstanding:
            outstanding.discard(rid)
            answered += 1
            latencies.append((clock() - sent_at[rid]) * 1000.0)
    sock.close()
    return sent, answered, lost, latencies


def run_load(
    host: str,
    port: int,
    queries: Sequence[bytes],
    seconds: float = 3.0,
    window: int = 16,
    processes: int = 1,
) -> LoadResult:
    """Send ``queries`` round-robin for ``seconds`` from ``processes`` processes."""
    jobs = [(host, port, list(queries), seconds, window, i) for i in range(processes)]
    start = time.perf_counter()
    if processes == 1:
        results = [_one(jobs[0])]
    else:
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            results = pool.map(_one, jobs)
    elapsed = time.perf_counter() - start
    latencies = tuple(x for r in results for x in r[3])
    return LoadResult(
        queries=sum(r[0] for r in results),
        answered=sum(r[1] for r in results),
        lost=sum(r[2] for r in results),
        seconds=min(elapsed, seconds + 1.0) if processes > 1 else seconds,
        latencies_ms=latencies,
    )
