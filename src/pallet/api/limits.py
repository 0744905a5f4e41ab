"""``RateLimits``: the ASGI middleware outside everything else that caps requests per
client and per token (429 with ``Retry-After``) and the event streams each may hold open;
``LimitSettings``, every limit of the master's HTTP side in one place; does I/O.

    request ─▶ bucket of its client address ─▶ bucket of its token (if it sends one)
            ─▶ 429 {"message"} + Retry-After, or the app; an event stream beyond the
               caller's cap is answered 429 instead of being started

Limits on connections and on slow headers and bodies act below ASGI, in the server's
protocol (``master.protocol``). Defaults are generous on purpose: one ``pallet bench
scale`` process is 12,500 agents on one address, and ``pallet bench api`` pushes
thousands of requests a second from one client; an operator tightens them with flags.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["STREAM_PATHS", "LimitSettings", "RateLimits", "TokenBucket"]

STREAM_PATHS = frozenset({"/v2/events"})
"""The routes that answer with a stream held open (server-sent events)."""


@dataclass(frozen=True, slots=True)
class LimitSettings:
    """The master's HTTP limits (``pallet master --rate-limit`` etc.); 0 turns one off."""

    requests_per_second: float = 10_000.0
    """Sustained requests of one client address, and of one token."""
    burst: int = 20_000
    """Requests a client or token may send at once before the rate holds."""
    streams: int = 256
    """Event streams (``text/event-stream``) one client address, or token, holds open."""
    connections: int = 20_000
    """Open connections from one client address."""
    header_timeout: float = 10.0
    """Seconds a connection has to send a request's headers (from its first byte, or from
    being opened); then 408 and closed."""
    header_bytes: int = 65_536
    """Bytes of a request's line and headers (a token is under 1 KiB); then 431."""
    body_timeout: float = 30.0
    """Seconds a request has to send its whole body after its headers; then 408 (or, once
    the answer started, the connection is closed)."""


class TokenBucket:
    """``rate`` per second, ``burst`` at once; pure given the times it is handed."""

    __slots__ = ("burst", "last", "level", "rate")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate, self.burst = rate, burst
        self.level = float(burst)
        self.last = now

    def take(self, now: float) -> float:
        """0 when a request may pass (and it is counted), else the seconds to wait."""
        self.level = min(self.burst, self.level + (now - self.last) * self.rate)
        self.last = now
        if self.level >= 1:
            self.level -= 1
            return 0.0
        return (1 - self.level) / self.rate

    def full(self, now: float) -> bool:
        return self.level + (now - self.last) * self.rate >= self.burst


_PRUNE_AT = 4096  # buckets kept before the full (idle) ones are dropped


class _Buckets:
    def __init__(self, settings: LimitSettings, clock: Callable[[], float]) -> None:
        self.settings = settings
        self.clock = clock
        self.buckets: dict[str, TokenBucket] = {}

    def wait(self, key: str) -> float:
        now = self.clock()
        bucket = self.buckets.get(key)
        if bucket is None:
            if len(self.buckets) >= _PRUNE_AT:
                self.buckets = {k: b for k, b in self.buckets.items() if not b.full(now)}
            bucket = self.buckets[key] = TokenBucket(
                self.settings.requests_per_second, self.settings.burst, now
            )
        return bucket.take(now)


def _token_key(scope: Scope) -> str | None:
    """The caller's token as a key (hashed: the table never holds a usable token)."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization" and value:
            return "t:" + hashlib.blake2b(value, digest_size=16).hexdigest()
    return None


def _refusal(status: int, message: str, retry_after: float | None) -> list[Message]:
    body = json.dumps({"message": message}, separators=(",", ":")).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if retry_after is not None:
        headers.append((b"retry-after", str(max(1, math.ceil(retry_after))).encode()))
    return [
        {"type": "http.response.start", "status": status, "headers": headers},
        {"type": "http.response.body", "body": body},
    ]


class RateLimits:
    def __init__(
        self,
        app: ASGIApp,
        settings: LimitSettings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.settings = settings
        self._buckets = _Buckets(settings, clock)
        self.streams: dict[str, int] = {}
        """Open event streams per client address (``c:``) and token (``t:``)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        keys = ["c:" + (client[0] if client else "")]
        token = _token_key(scope)
        if token is not None:
            keys.append(token)
        if self.settings.requests_per_second > 0:
            for key in keys:
                wait = self._buckets.wait(key)
                if wait > 0:
                    who = "this token" if key.startswith("t:") else "this client"
                    message = (
                        f"too many requests from {who}: at most "
                        f"{self.settings.requests_per_second:g} a second; retry later"
                    )
                    for m in _refusal(429, message, wait):
                        await send(m)
                    return
        if self.settings.streams <= 0 or scope["path"] not in STREAM_PATHS:
            await self.app(scope, receive, send)
            return
        over = [k for k in keys if self.streams.get(k, 0) >= self.settings.streams]
        if over:
            who = "this token" if over[0].startswith("t:") else "this client"
            text = (
                f"too many event streams open for {who} (at most {self.settings.streams}); "
                "close one first"
            )
            for m in _refusal(429, text, 1.0):
                await send(m)
            return
        for k in keys:
            self.streams[k] = self.streams.get(k, 0) + 1
        try:
            await self.app(scope, receive, send)
        finally:
            for k in keys:
                left = self.streams[k] - 1
                if left:
                    self.streams[k] = left
                else:
                    del self.streams[k]
