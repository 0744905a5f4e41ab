"""Sending one call to the master over HTTP/1.1 with the standard library (``http.client``),
on one kept-alive connection, on to the next master or the leader when needed; does I/O.

The blocking ``Client`` sends through this unless it is given an httpx transport (tests'
fake master): a CLI command then imports neither httpx nor httpcore and builds no TLS
context for a plain-HTTP master, which is most of what ``pallet app list`` spent before
its one request (``pallet bench cli``). ``Route`` is the whole of how a call finds its
master (several masters, a follower's redirect, whom the token follows); the CLI's fast
path (``pallet.cli.fast``) sends through it too, so both answer alike. No dataclasses
here: creating them costs the fast path more than its request.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit

from pallet.client.transport import KeepToken, auth_headers, master_urls, tls_context

__all__ = ["Answer", "Route", "StdlibSender", "TransportFailure"]

_IDLE_REUSE = 2.0
"""Seconds a kept-alive connection is reused for (uvicorn closes idle ones after 5)."""


class TransportFailure(Exception):
    """No HTTP answer at all; ``reason`` says why in a user's words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Answer:
    """One HTTP answer (status, headers looked up in lower case, body, reason phrase)."""

    __slots__ = ("content", "headers", "reason", "status")

    def __init__(self, status: int, headers: Mapping[str, str], content: bytes, reason: str):
        self.status = status
        self.headers = headers
        self.content = content
        self.reason = reason


class _Headers(dict[str, str]):
    """Response headers, looked up whatever the case of the name."""

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


def _reason(exc: BaseException, timeout: float, connected: bool) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return (
            f"no answer within {timeout:g} s"
            if connected
            else f"no connection within {timeout:g} s"
        )
    if isinstance(exc, http.client.RemoteDisconnected):
        return "server disconnected without sending a response"
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return text[:1].lower() + text[1:]


class StdlibSender:
    """Requests to one master (``base_url``: scheme, host, port, optional path prefix)."""

    def __init__(
        self,
        base_url: str,
        timeout: float,
        headers: Mapping[str, str] | None = None,
        context: Any = None,
    ) -> None:
        parts = urlsplit(base_url)
        self.headers = dict(headers or {})
        self.context = context
        self.https = parts.scheme == "https"
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if self.https else 80)
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None
        self._last_used = 0.0

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is not None and time.monotonic() - self._last_used > _IDLE_REUSE:
            self.close()
        if self._conn is None:
            if self.https:
                import ssl  # only an https master pays for TLS

                context = self.context or ssl.create_default_context()
                self._conn = http.client.HTTPSConnection(
                    self.host, self.port, timeout=self.timeout, context=context
                )
            else:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self._conn

    def send(
        self,
        method: str,
        path: str,
        params: Mapping[str, str | Sequence[str]] | None = None,
        body: object = None,
    ) -> Answer:
        target = self.prefix + path
        if params:
            target += "?" + urlencode({k: v for k, v in params.items()}, doseq=True)
        headers = {"Accept": "application/json", **self.headers}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            conn = self._connection()
            reused = connected = conn.sock is not None
            try:
                conn.request(method, target, body=payload, headers=headers)
                connected = True
                response = conn.getresponse()
                content = response.read()
                break
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                # A kept-alive connection the master closed meanwhile: a read may go again.
                if attempt == 1 and reused and method == "GET":
                    continue
                raise TransportFailure(_reason(exc, self.timeout, connected)) from exc
        self._last_used = time.monotonic()
        if response.will_close:
            self.close()
        found = _Headers((k.lower(), v) for k, v in response.getheaders())
        return Answer(response.status, found, content, response.reason)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class Route:
    """Sends calls to the first of ``master`` (one URL, or several comma-separated) that
    answers, and to the leader when a follower redirects (307), as the agents do.

    ``token`` (else ``$PALLET_TOKEN``) goes as ``Authorization: token=...`` to the masters
    named and, after a redirect, only where ``KeepToken`` trusts; ``ca`` (else
    ``$PALLET_CA``) is the cluster's CA for an https master.
    """

    def __init__(
        self,
        master: str | None = None,
        timeout: float = 10.0,
        token: str | None = None,
        ca: str | None = None,
    ) -> None:
        self.masters = master_urls(master)
        self.master = self.masters[0]
        self.timeout = timeout
        self.headers = auth_headers(token)
        self.ca = ca
        self.wire = self._sender(self.master)

    def send(
        self,
        method: str,
        path: str,
        params: Mapping[str, str | Sequence[str]] | None = None,
        body: object = None,
    ) -> Answer:
        """The answer of the master that answered; ``MasterUnreachable`` when none did."""
        tried: list[str] = []
        hops = 0
        while True:
            try:
                answer = self.wire.send(method, path, params, body)
            except TransportFailure as exc:
                tried.append(self.master)
                left = [m for m in self.masters if m not in tried]
                if not left:
                    from pallet.client.errors import MasterUnreachable

                    raise MasterUnreachable(self.master, f"{method} {path}: {exc.reason}") from None
                self._use(left[0])
                continue
            location = answer.headers.get("location")
            if answer.status in (307, 308) and location and hops < 3:
                hops += 1
                parts = urlsplit(location)
                self._use(f"{parts.scheme}://{parts.netloc}", redirected=True)
                continue
            return answer

    def close(self) -> None:
        self.wire.close()

    def _use(self, master: str, *, redirected: bool = False) -> None:
        self.wire.close()
        self.master = master
        self.wire = self._sender(master, redirected=redirected)

    def _sender(self, master: str, *, redirected: bool = False) -> StdlibSender:
        context = tls_context(self.ca) if master.startswith("https:") else None
        headers = self.headers
        if redirected and master not in self.masters:
            # the token follows a redirect only to a master the cluster vouches for
            keep = KeepToken(self.masters[0], headers, pinned=context is not None)
            parts = urlsplit(master)
            if not keep.trusts(parts.scheme, parts.hostname or ""):
                headers = {}
        return StdlibSender(master, self.timeout, headers, context)
