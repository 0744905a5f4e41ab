"""Where the master is, and what a failed connection means to a user; no I/O of its own.

Light on purpose (no model, no dataclasses): ``pallet app list``'s fast path reads the
master, the token and the CA through these very functions (``pallet.cli.fast``)."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pallet.errors import ValidationError

if TYPE_CHECKING:
    import httpx

    from pallet.client.calls import Call
    from pallet.client.errors import MasterUnreachable

__all__ = [
    "CA_ENV",
    "DEFAULT_MASTER",
    "DEFAULT_TIMEOUT",
    "MASTER_ENV",
    "TOKEN_ENV",
    "KeepToken",
    "auth_headers",
    "env_credentials",
    "master_url",
    "master_urls",
    "tls_context",
    "unreachable",
]

DEFAULT_MASTER = "http://127.0.0.1:8080"
MASTER_ENV = "PALLET_MASTER"
DEFAULT_TIMEOUT = 10.0
"""Seconds to connect and to wait for each answer."""
TOKEN_ENV = "PALLET_TOKEN"
"""A token to send when none is given (``pallet auth login`` keeps one in the CLI's config)."""
CA_ENV = "PALLET_CA"
"""The cluster's CA certificate (PEM file) to check an https master with."""


def auth_headers(token: str | None = None) -> dict[str, str]:
    """``Authorization: token=<token>`` (DC/OS's form) for ``token`` or ``$PALLET_TOKEN``."""
    token = token or os.environ.get(TOKEN_ENV)
    return {"Authorization": f"token={token}"} if token else {}


def env_credentials(master: str) -> dict[str, Any]:
    """httpx keyword arguments (``headers`` or ``auth``, ``verify``, the redirect hook)
    from ``$PALLET_SERVICE_ACCOUNT_CREDENTIAL`` (logs in as that service account, again
    when its token expires), else ``$PALLET_TOKEN``, and ``$PALLET_CA``: how the DNS
    server and load balancers reach a secured master, and its leader through a
    follower's redirect."""
    from pallet.client.login import ServiceLogin, env_credential

    context = tls_context()
    verify = context if context is not None else True
    credential = env_credential()
    if credential is not None:
        keep = KeepToken(master, {}, pinned=context is not None)
        login = ServiceLogin(credential, keep.trusts)
        return {
            "auth": login,
            "verify": verify,
            "follow_redirects": True,
            "event_hooks": {"request": [login.on_request_async]},
        }
    headers = auth_headers()
    keep = KeepToken(master, headers, pinned=context is not None)
    return {
        "headers": headers,
        "verify": verify,
        "follow_redirects": True,
        "event_hooks": {"request": [keep.on_request_async]},
    }


_LOOPBACK = re.compile(r"127\.\d+\.\d+\.\d+|::1|localhost", re.IGNORECASE)


class KeepToken:
    """Puts the token back on a redirected call to another master.

    A follower answers every call with a redirect to the leader, at another port or
    host; httpx drops ``Authorization`` on a redirect to another origin, so the leader
    would see an anonymous caller. The token goes back on only to an https target when
    the client was given the cluster's CA (``pinned``; the target's certificate must
    verify, against that CA or the system's, which ``tls_context`` trusts too, and the
    redirect came from a master the client already trusts), or from a loopback master
    to a loopback one; never to plain http elsewhere.
    """

    def __init__(self, master: str, headers: dict[str, str], *, pinned: bool) -> None:
        self.authorization = headers.get("Authorization")
        self.pinned = pinned
        self.loopback = _LOOPBACK.fullmatch(urlsplit(master).hostname or "") is not None

    def trusts(self, scheme: str, host: str) -> bool:
        if scheme == "https" and self.pinned:
            return True
        return self.loopback and _LOOPBACK.fullmatch(host) is not None

    def on_request(self, request: httpx.Request) -> None:
        if (
            self.authorization
            and "Authorization" not in request.headers
            and self.trusts(request.url.scheme, request.url.host)
        ):
            request.headers["Authorization"] = self.authorization

    async def on_request_async(self, request: httpx.Request) -> None:
        self.on_request(request)


def tls_context(ca: str | None = None) -> Any:
    """An ``ssl.SSLContext`` that trusts ``ca`` (or ``$PALLET_CA``) besides the system's
    CAs; None when neither is given (the defaults apply)."""
    ca = ca or os.environ.get(CA_ENV)
    if not ca:
        return None
    import ssl  # only an https master pays for TLS

    context = ssl.create_default_context()
    try:
        context.load_verify_locations(cafile=ca)
    except (OSError, ssl.SSLError) as e:
        raise ValidationError("--ca", f"cannot read the CA certificate {ca}: {e}") from None
    return context


def master_url(url: str | None = None) -> str:
    """The master's base URL: ``url``, else ``$PALLET_MASTER``, else the default.

    ``host:port`` gets ``http://``; a trailing slash is dropped.
    """
    text = (url or os.environ.get(MASTER_ENV) or DEFAULT_MASTER).strip()
    candidate = text if "://" in text else f"http://{text}"
    try:
        parsed = urlsplit(candidate)
        port = parsed.port  # reads the port: a bad one raises
    except ValueError:
        parsed, port = None, None
    host = parsed.hostname if parsed is not None else None
    if (
        parsed is None
        or parsed.scheme.lower() not in ("http", "https")
        or not host
        or not _HOST.fullmatch(host)
        or parsed.query
        or parsed.fragment
    ):
        raise ValidationError(
            "--master", f"{text!r} is not a master URL; give one like {DEFAULT_MASTER}"
        )
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    return f"{parsed.scheme.lower()}://{netloc}{parsed.path}".rstrip("/")


def master_urls(text: str | None = None) -> list[str]:
    """Several masters, comma-separated (``http://a:8080,http://b:8080``; the first is
    tried first), each read as ``master_url`` reads one."""
    raw = (text or os.environ.get(MASTER_ENV) or DEFAULT_MASTER).strip()
    urls = [master_url(part) for part in raw.split(",") if part.strip()]
    if not urls:
        raise ValidationError(
            "--master", f"{raw!r} names no master; give one like {DEFAULT_MASTER}"
        )
    return list(dict.fromkeys(urls))


_HOST = re.compile(r"[A-Za-z0-9._\-]+|[0-9A-Fa-f:.]+")
"""A host name, IPv4 or IPv6 address (no spaces, no zone ids)."""


def _reason(exc: httpx.TransportError, timeout: float) -> str:
    import httpx

    if isinstance(exc, httpx.ConnectTimeout):
        return f"no connection within {timeout:g} s"
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer within {timeout:g} s"
    text = str(exc) or type(exc).__name__
    # "[Errno 111] Connection refused" -> "connection refused"
    if text.startswith("[Errno"):
        text = text.split("]", 1)[-1].strip()
    return text[:1].lower() + text[1:]


def unreachable(
    master: str, call: Call[Any], exc: httpx.TransportError, timeout: float
) -> MasterUnreachable:
    """The error for a call that got no HTTP answer at all."""
    from pallet.client.errors import MasterUnreachable

    return MasterUnreachable(master, f"{call.name}: {_reason(exc, timeout)}")
