"""Steady HTTP load for the discovery benchmark: a fixed rate of GETs, each on a new
connection, counting every request that did not get a 200; spawns a process.

A request that fails is one a client saw fail: refused, reset, timed out, or any
status but 200. Each request opens its own connection (as ``ab`` without ``-k``), so a
reload or a killed task is met by fresh connections all along.
"""

from __future__ import annotations

import http.client
import multiprocessing
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

__all__ = ["HttpLoad", "LoadCount"]


@dataclass
class LoadCount:
    requests: int = 0
    failed: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    failed_at: list[float] = field(default_factory=list)
    """When (time.time()) the first 1,000 failures happened."""

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def _worker(
    host: str, port: int, vhost: str, rate: float, threads: int, stop: Connection, out: Connection
) -> None:
    count = LoadCount()
    lock = threading.Lock()
    done = threading.Event()
    start = time.monotonic()

    def one(offset: float) -> None:
        period = threads / rate
        nxt = start + offset
        while not done.is_set():
            now = time.monotonic()
            if now < nxt:
                time.sleep(nxt - now)
            nxt += period
            error = ""
            try:
                conn = http.client.HTTPConnection(host, port, timeout=10)
                conn.request("GET", "/", headers={"Host": vhost} if vhost else {})
                r = conn.getresponse()
                r.read()
                conn.close()
                if r.status != 200:
                    error = f"HTTP {r.status}"
            except (OSError, http.client.HTTPException) as e:
                error = type(e).__name__
            with lock:
                count.requests += 1
                if error:
                    count.failed += 1
                    count.errors[error] += 1
                    if len(count.failed_at) < 1000:
                        count.failed_at.append(time.time())

    workers = [threading.Thread(target=one, args=(i / rate,)) for i in range(threads)]
    for w in workers:
        w.start()
    stop.recv()
    done.set()
    for w in workers:
        w.join()
    count.seconds = time.monotonic() - start
    out.send((count.requests, count.failed, dict(count.errors), count.seconds, count.failed_at))


class HttpLoad:
    """``rate`` GETs per second to ``host:port`` (with ``Host: vhost``) from another process."""

    def __init__(
        self, host: str, port: int, rate: float, vhost: str = "", threads: int = 16
    ) -> None:
        ctx = multiprocessing.get_context("fork")
        self._stop_send, stop_recv = ctx.Pipe()
        self._out_recv, out_send = ctx.Pipe()
        self._process = ctx.Process(
            target=_worker,
            args=(host, port, vhost, rate, threads, stop_recv, out_send),
            daemon=True,
        )

    def start(self) -> None:
        self._process.start()

    def stop(self) -> LoadCount:
        self._stop_send.send(True)
        requests, failed, errors, seconds, failed_at = self._out_recv.recv()
        self._process.join(10)
        return LoadCount(requests, failed, Counter(errors), seconds, failed_at)
