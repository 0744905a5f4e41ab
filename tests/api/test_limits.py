"""Requests per client and per token, and event streams, are capped with a 429 that says
why and when to retry (``api.limits``); a fake clock, no sleeping."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from pallet.api.limits import LimitSettings, RateLimits, TokenBucket

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def ok_app(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def client(app: Any, host: str = "10.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(host, 1234))
    return httpx.AsyncClient(transport=transport, base_url="http://master")


def test_a_bucket_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=2, now=0.0)
    assert [bucket.take(0.0), bucket.take(0.0)] == [0.0, 0.0]
    assert bucket.take(0.0) == 0.5  # one more needs half a second at 2 a second
    assert bucket.take(0.5) == 0.0


async def test_a_client_over_its_rate_gets_429_with_retry_after() -> None:
    clock = Clock()
    limited = RateLimits(ok_app, LimitSettings(requests_per_second=1, burst=2), clock)
    async with client(limited) as http, client(limited, "10.0.0.2") as other:
        assert [(await http.get("/v2/apps")).status_code for _ in range(2)] == [200, 200]
        r = await http.get("/v2/apps")
        assert r.status_code == 429 and r.headers["retry-after"] == "1"
        assert "too many requests from this client" in r.json()["message"]
        assert (await other.get("/v2/apps")).status_code == 200  # another address
        clock.now += 1
        assert (await http.get("/v2/apps")).status_code == 200


async def test_a_token_is_limited_across_addresses() -> None:
    limited = RateLimits(ok_app, LimitSettings(requests_per_second=1, burst=1), Clock())
    token = {"Authorization": "token=abc"}
    async with client(limited, "10.0.0.1") as a, client(limited, "10.0.0.2") as b:
        assert (await a.get("/v2/apps", headers=token)).status_code == 200
        r = await b.get("/v2/apps", headers=token)
        assert r.status_code == 429 and "this token" in r.json()["message"]
    assert all(not k.startswith("t:abc") for k in limited._buckets.buckets)  # hashed


async def test_event_streams_are_capped_per_client() -> None:
    release = asyncio.Event()

    async def events(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b":\n\n", "more_body": True})
        await release.wait()
        await send({"type": "http.response.body", "body": b""})

    limited = RateLimits(events, LimitSettings(streams=1), Clock())
    async with client(limited) as http:
        first = asyncio.create_task(http.get("/v2/events"))
        for _ in range(100):
            if limited.streams:
                break
            await asyncio.sleep(0.01)
        r = await http.get("/v2/events")
        assert r.status_code == 429 and "too many event streams" in r.json()["message"]
        release.set()
        assert (await first).status_code == 200
        assert limited.streams == {}
        release.clear()
        release.set()
        assert (await http.get("/v2/events")).status_code == 200
