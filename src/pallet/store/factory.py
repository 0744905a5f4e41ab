"""``open_store(url)``: the one place that maps a store URL to a backend; opens files.

    memory://                          a new empty store in this process
    sqlite:///var/lib/pallet/state.db  the SQLite file at that absolute path
    sqlite:state.db                    ... or at a path relative to the working directory
    etcd://h1:2379,h2:2379,h3:2379     an etcd 3 cluster, its members tried in turn

Each takes ``?history=N``: how many revisions of history to keep for watches (etcd URLs take
more options: see ``pallet.store.etcd.url``). ``check_store_url`` reads a URL without
opening anything, so a command can refuse a bad one before it starts.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qsl, unquote, urlsplit

from pallet.store.embedded import DEFAULT_HISTORY, Clock
from pallet.store.errors import InvalidArgument, InvalidArgumentType
from pallet.store.memory import open_memory
from pallet.store.protocol import Store
from pallet.store.sqlite import open_sqlite

__all__ = ["DEFAULT_EXPIRY_INTERVAL", "check_store_url", "open_store"]

DEFAULT_EXPIRY_INTERVAL = 0.5
"""Seconds between lease expiry checks (etcd checks every 500 ms)."""

_USAGE = (
    "use memory://, sqlite:///absolute/path.db (or sqlite:relative/path.db), "
    "or etcd://host:2379[,host2:2379...]"
)


async def open_store(
    url: str,
    *,
    clock: Clock = time.monotonic,
    expiry_interval: float | None = DEFAULT_EXPIRY_INTERVAL,
) -> Store:
    """Open the store ``url`` names. ``clock`` gives lease time in seconds; leases expire on
    ``expire_leases()`` calls, and every ``expiry_interval`` seconds in a background task
    unless it is None (tests and simulations drive expiry themselves)."""
    if not isinstance(url, str):
        raise InvalidArgumentType("url", "str", url)
    if url.startswith("etcd:"):
        from pallet.store.etcd import open_etcd, parse_etcd_url  # httpx only when used

        etcd_url = parse_etcd_url(url)
        history = _history(list(etcd_url.options), url)
        return await open_etcd(
            etcd_url,
            name=url,
            clock=clock,
            history=history,
            expiry_interval=expiry_interval,
        )
    parts = urlsplit(url)
    history = _history(parse_qsl(parts.query, keep_blank_values=True), url)
    if parts.fragment:
        raise InvalidArgument("url", f"{url!r} has a #fragment; {_USAGE}")
    if parts.scheme == "memory":
        if parts.netloc or parts.path:
            raise InvalidArgument("url", f"{url!r}: a memory store has no host or path; {_USAGE}")
        return await open_memory(clock=clock, history=history, expiry_interval=expiry_interval)
    if parts.scheme == "sqlite":
        if parts.netloc:
            raise InvalidArgument(
                "url",
                f"{url!r} names host {parts.netloc!r}; a sqlite store is a local file: {_USAGE}",
            )
        path = unquote(parts.path)
        if not path or path.endswith("/"):
            raise InvalidArgument("url", f"{url!r} names no file; {_USAGE}")
        return await open_sqlite(
            path, clock=clock, history=history, expiry_interval=expiry_interval
        )
    raise InvalidArgument("url", f"unknown store {url!r}; {_USAGE}")


def check_store_url(url: str) -> None:
    """Raise ``InvalidArgument("url", ...)`` if ``url`` names no store ``open_store`` could
    open (a bad scheme, option, member list ...); opens nothing, contacts nothing."""
    if not isinstance(url, str):
        raise InvalidArgumentType("url", "str", url)
    if url.startswith("etcd:"):
        from pallet.store.etcd.url import parse_etcd_url

        _history(list(parse_etcd_url(url).options), url)
        return
    parts = urlsplit(url)
    _history(parse_qsl(parts.query, keep_blank_values=True), url)
    if parts.fragment or parts.scheme not in ("memory", "sqlite"):
        raise InvalidArgument("url", f"unknown store {url!r}; {_USAGE}")
    if parts.scheme == "memory" and (parts.netloc or parts.path):
        raise InvalidArgument("url", f"{url!r}: a memory store has no host or path; {_USAGE}")
    if parts.scheme == "sqlite" and (parts.netloc or not parts.path or parts.path.endswith("/")):
        raise InvalidArgument("url", f"{url!r} names no local file; {_USAGE}")


def _history(query: list[tuple[str, str]], url: str) -> int:
    history = DEFAULT_HISTORY
    for name, value in query:
        if name != "history":
            known = "history, cluster_id and timeout" if url.startswith("etcd:") else "history"
            raise InvalidArgument("url", f"{url!r}: unknown option {name!r}; options: {known}")
        if not value.isdigit() or int(value) < 1:
            raise InvalidArgument("url", f"{url!r}: history must be a whole number >= 1")
        history = int(value)
    return history
