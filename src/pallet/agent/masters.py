"""The agent's connection to its masters: one or several, the leader found by itself;
asyncio I/O over httpx.

A request goes to the master that answered last. A follower answers ``307`` to the
leader, which the client follows (method, body and credentials kept) and then talks to
directly; a master that cannot be reached (down, or across a partition) makes the request
go to the next one in the list, once round the list per request.

``Granted`` keeps what the master's answers to a registration and a heartbeat ask of the
agent: the interval to beat at and how long a long-poll may wait (both longer in a large
cluster, so that the master's work per second stays bounded).
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["Granted", "Masters", "granted_interval", "parse_masters"]

log = logging.getLogger(__name__)

_UNREACHABLE = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError)


def parse_masters(text: str) -> list[str]:
    """``http://a:8080,http://b:8080`` -> the URLs, in order, without trailing slashes."""
    urls = [u.strip().rstrip("/") for u in text.split(",") if u.strip()]
    if not urls:
        raise ValueError("give at least one master URL")
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{url!r} is not an http(s) URL")
    if len(set(urls)) != len(urls):
        raise ValueError("a master is listed twice")
    return urls


def _origin(url: httpx.URL) -> str:
    return f"{url.scheme}://{url.netloc.decode()}"


class Masters:
    """What the agent daemon uses in place of one ``httpx.AsyncClient``."""

    def __init__(
        self,
        urls: list[str],
        timeout: float = 10.0,
        *,
        auth: httpx.Auth | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        """``auth``, ``transport`` and ``verify`` as httpx takes them (a secured cluster:
        the agent's credentials, its source address, the cluster's CA)."""
        self.urls = list(urls)
        self.current = self.urls[0]
        self._http = httpx.AsyncClient(
            timeout=timeout,
            follow_redirects=False,  # request() follows, keeping the token
            trust_env=False,
            auth=auth,
            transport=transport,
            verify=verify,
        )

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        tried: list[str] = []
        hops = 0
        while True:
            base = self.current
            try:
                r = await self._http.request(method, base + path, **kwargs)
            except _UNREACHABLE as e:
                tried.append(base)
                nxt = self._next(tried)
                if nxt is None:
                    raise
                log.info("master %s unreachable (%s); trying %s", base, e, nxt)
                self.current = nxt
                continue
            location = r.headers.get("location")
            if r.status_code in (307, 308) and location and hops < 3:
                # A follower points at the leader: talk to it directly from now on. The
                # redirect is followed here, not by httpx, which would drop the agent's
                # token on the way to another origin.
                hops += 1
                leader = _origin(httpx.URL(base + path).join(location))
                if leader != self.current:
                    log.info("the leader is %s", leader)
                    self.current = leader
                continue
            return r

    def _next(self, tried: list[str]) -> str | None:
        for url in self.urls:
            if url not in tried:
                return url
        return None

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", path, **kwargs)

    async def aclose(self) -> None:
        await self._http.aclose()


def _seconds(doc: object, key: str, before: float, bound: float) -> float:
    value = doc.get(key) if isinstance(doc, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < bound:
        return float(value)
    return before


def _json(answer: httpx.Response) -> object:
    try:
        return answer.json()
    except ValueError:
        return None


def granted_interval(answer: httpx.Response, before: float) -> float:
    """The ``heartbeat_interval`` a registration's or heartbeat's answer asks for; the one
    asked ``before`` when the answer has none (an older master) or is not JSON."""
    return _seconds(_json(answer), "heartbeat_interval", before, 86400)


@dataclass(slots=True)
class Granted:
    """What the master last asked of this agent; the agent keeps the longer of each and
    its own setting. An answer without a field (an older master), or with one that is not
    a sane number of seconds, leaves it as it was."""

    heartbeat_interval: float = 0.0
    """Seconds between heartbeats (the master bounds the cluster's heartbeats a second)."""
    poll_wait: float = 0.0
    """Seconds a long-poll may wait for a change (the master bounds the polls that end
    with nothing to say)."""

    def take(self, answer: httpx.Response) -> None:
        """Read a registration's or a heartbeat's answer."""
        doc = _json(answer)
        self.heartbeat_interval = _seconds(
            doc, "heartbeat_interval", self.heartbeat_interval, 86400
        )
        self.poll_wait = _seconds(doc, "poll_wait", self.poll_wait, 3600)

    def beat_every(self, own: float) -> float:
        return max(own, self.heartbeat_interval)

    def wait_for(self, own: float) -> float:
        """The ``wait`` of the next long-poll (its HTTP timeout must be longer)."""
        return max(own, self.poll_wait)
