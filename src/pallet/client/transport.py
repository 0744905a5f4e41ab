"""Where the master is, and what a failed connection means to a user; no I/O of its own."""

from __future__ import annotations

import os
from typing import Any

import httpx

from pallet.client.calls import Call
from pallet.client.errors import MasterUnreachable
from pallet.model.errors import ValidationError

__all__ = ["DEFAULT_MASTER", "DEFAULT_TIMEOUT", "MASTER_ENV", "master_url", "unreachable"]

DEFAULT_MASTER = "http://127.0.0.1:8080"
MASTER_ENV = "PALLET_MASTER"
DEFAULT_TIMEOUT = 10.0
"""Seconds to connect and to wait for each answer."""


def master_url(url: str | None = None) -> str:
    """The master's base URL: ``url``, else ``$PALLET_MASTER``, else the default.

    ``host:port`` gets ``http://``; a trailing slash is dropped.
    """
    text = (url or os.environ.get(MASTER_ENV) or DEFAULT_MASTER).strip()
    candidate = text if "://" in text else f"http://{text}"
    try:
        parsed = httpx.URL(candidate)
    except httpx.InvalidURL:
        parsed = None
    if (
        parsed is None
        or parsed.scheme not in ("http", "https")
        or not parsed.host
        or "%" in parsed.host
    ):
        raise ValidationError(
            "--master", f"{text!r} is not a master URL; give one like {DEFAULT_MASTER}"
        )
    return str(parsed).rstrip("/")


def _reason(exc: httpx.TransportError, timeout: float) -> str:
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
    return MasterUnreachable(master, f"{call.name}: {_reason(exc, timeout)}")
