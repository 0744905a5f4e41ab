"""Polling a real cluster (processes, HTTP) until something holds; for end-to-end tests."""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 20.0, what: str = "") -> T:
    """``predicate()``'s first truthy answer, polled every 0.1 s for up to ``timeout``
    seconds; HTTP errors, refused or dropped connections (a proxy that closes the client's
    connection while its backends are being set up) and missing keys count as not yet."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = predicate()
        except (
            httpx.HTTPError,
            http.client.HTTPException,
            OSError,
            KeyError,
            IndexError,
            ValueError,
        ) as e:
            last = e
        if last and not isinstance(last, Exception):
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}: last {last!r}")
        time.sleep(0.1)
