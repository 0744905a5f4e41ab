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

import json
import socket
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from pallet.client.transport import KeepToken, auth_headers, master_urls, tls_context

if TYPE_CHECKING:
    import http.client

__all__ = ["Answer", "OneShotSender", "Route", "StdlibSender", "TransportFailure"]

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


def _target(prefix: str, path: str, params: Mapping[str, str | Sequence[str]] | None) -> str:
    """The request target: the base URL's path, ``path`` and the query of ``params``."""
    target = prefix + path
    if params:
        target += "?" + urlencode(dict(params.items()), doseq=True)
    return target


def _reason(exc: BaseException, timeout: float, connected: bool) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return (
            f"no answer within {timeout:g} s"
            if connected
            else f"no connection within {timeout:g} s"
        )
    import http.client

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
        import http.client

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
        target = _target(self.prefix, path, params)
        headers = {"Accept": "application/json", **self.headers}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        import http.client

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


class OneShotSender:
    """One GET to a plain-HTTP master on a connection of its own, without ``http.client``
    (whose e-mail header parser costs ``pallet app list`` a fifth of its start-up).

    It sends what ``StdlibSender`` sends (``Host``, ``Accept-Encoding: identity``, the
    same headers) with ``Connection: close``, and reads an answer framed by
    ``Content-Length``, chunks or the end of the connection. Failures to connect, send
    or read are the ``TransportFailure`` ``StdlibSender`` raises for them; an answer it
    does not plainly understand is asked for again through ``StdlibSender``, whose
    reading then has the last word (a GET may be sent twice).
    """

    def __init__(
        self, base_url: str, timeout: float, headers: Mapping[str, str] | None = None
    ) -> None:
        self.base_url = base_url
        parts = urlsplit(base_url)
        self.headers = dict(headers or {})
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout

    def send(
        self,
        method: str,
        path: str,
        params: Mapping[str, str | Sequence[str]] | None = None,
        body: object = None,
    ) -> Answer:
        if method != "GET" or body is not None:
            return self._again(method, path, params, body)
        target = _target(self.prefix, path, params)
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port != 80:
            host += f":{self.port}"
        lines = [f"GET {target} HTTP/1.1", f"Host: {host}", "Accept-Encoding: identity"]
        headers = {"Accept": "application/json", **self.headers, "Connection": "close"}
        lines += [f"{k}: {v}" for k, v in headers.items()]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        # An ASCII name as bytes: the resolver then needs no IDNA codec (a few ms to load).
        address = self.host.encode() if self.host.isascii() else self.host
        connected = False
        try:
            with socket.create_connection((address, self.port), self.timeout) as sock:  # type: ignore[arg-type]
                connected = True
                sock.sendall(request)
                chunks: list[bytes] = []
                while data := sock.recv(65536):
                    chunks.append(data)
        except OSError as exc:
            raise TransportFailure(_reason(exc, self.timeout, connected)) from exc
        raw = b"".join(chunks)
        if not raw:
            raise TransportFailure("server disconnected without sending a response")
        answer = _parse(raw)
        return answer if answer is not None else self._again(method, path, params, body)

    def _again(
        self,
        method: str,
        path: str,
        params: Mapping[str, str | Sequence[str]] | None,
        body: object,
    ) -> Answer:
        sender = StdlibSender(self.base_url, self.timeout, self.headers)
        try:
            return sender.send(method, path, params, body)
        finally:
            sender.close()

    def close(self) -> None:
        pass


def _parse(raw: bytes) -> Answer | None:
    """An HTTP/1.x answer read to the end of its connection; None unless plainly framed."""
    head, sep, rest = raw.partition(b"\r\n\r\n")
    if not sep:
        return None
    first, *header_lines = head.decode("latin-1").split("\r\n")
    version, _, tail = first.partition(" ")
    code, _, reason = tail.partition(" ")
    if version not in ("HTTP/1.1", "HTTP/1.0") or not (code.isdigit() and len(code) == 3):
        return None
    status = int(code)
    if status < 200:  # 1xx: interim answers are http.client's business
        return None
    headers = _Headers()
    for line in header_lines:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip() or name.lower() in headers:
            return None  # folded, malformed or repeated: not plain
        headers[name.lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        content = _unchunk(rest)
        if content is None:
            return None
    elif "content-length" in headers:
        length = headers["content-length"]
        if not length.isdigit() or len(rest) < int(length):
            return None
        content = rest[: int(length)]
    else:
        content = rest
    return Answer(status, headers, content, reason.strip())


def _unchunk(rest: bytes) -> bytes | None:
    out: list[bytes] = []
    while True:
        size_line, sep, rest = rest.partition(b"\r\n")
        size_text = size_line.split(b";", 1)[0].strip()
        if not sep or not size_text or any(c not in b"0123456789abcdefABCDEF" for c in size_text):
            return None
        size = int(size_text, 16)
        if size == 0:
            return b"".join(out)
        if len(rest) < size + 2 or rest[size : size + 2] != b"\r\n":
            return None
        out.append(rest[:size])
        rest = rest[size + 2 :]


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
        *,
        one_shot: bool = False,
    ) -> None:
        """``one_shot``: a plain-HTTP master is asked through ``OneShotSender`` (for a
        command that sends one GET and exits)."""
        self.one_shot = one_shot
        self.masters = master_urls(master)
        self.master = self.masters[0]
        self.timeout = timeout
        self.headers = auth_headers(token)
        self.ca = ca
        self.wire: StdlibSender | OneShotSender = self._sender(self.master)

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

    def _sender(self, master: str, *, redirected: bool = False) -> StdlibSender | OneShotSender:
        context = tls_context(self.ca) if master.startswith("https:") else None
        headers = self.headers
        if redirected and master not in self.masters:
            # the token follows a redirect only to a master the cluster vouches for
            keep = KeepToken(self.masters[0], headers, pinned=context is not None)
            parts = urlsplit(master)
            if not keep.trusts(parts.scheme, parts.hostname or ""):
                headers = {}
        if self.one_shot and context is None and master.startswith("http:"):
            return OneShotSender(master, self.timeout, headers)
        return StdlibSender(master, self.timeout, headers, context)
