"""Following the master's apps and tasks by its event stream, as Marathon-LB's ``--sse``
mode does; I/O (httpx).

``follow_apps`` opens ``GET /v2/events``; once the stream is attached it reads
``GET /v2/apps?embed=apps.tasks`` and hands the apps over, and after that reads them
again whenever an event says a task, its health or an app changed: not polling, and
nothing missed (an event that arrives during a read marks the state dirty, so one more
read follows). Reads are coalesced, so a burst of events costs one or two reads. A
dropped stream is opened again (backoff 0.2 s doubling to 5 s), and the apps read anew.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx

from pallet.client.transport import env_credentials

__all__ = ["RELEVANT_EVENTS", "follow_apps", "read_apps"]

log = logging.getLogger(__name__)

RELEVANT_EVENTS = (
    "status_update_event",
    "health_status_changed_event",
    "api_post_event",
    "app_terminated_event",
    "deployment_success",
    "deployment_info",
)
"""The events after which apps or tasks may look different to discovery."""

Apps = list[dict[str, Any]]


async def read_apps(client: httpx.AsyncClient) -> Apps:
    """Every app with its tasks (``GET /v2/apps?embed=apps.tasks``)."""
    r = await client.get("/v2/apps", params={"embed": "apps.tasks"})
    r.raise_for_status()
    apps = r.json()["apps"]
    if not isinstance(apps, list):
        raise ValueError("/v2/apps: apps is not a list")
    return apps


async def follow_apps(
    master: str,
    on_apps: Callable[[Apps, float], Awaitable[None]],
    stop: asyncio.Event,
    *,
    events: Sequence[str] = RELEVANT_EVENTS,
    on_event: Callable[[str, dict[str, Any], float], None] | None = None,
) -> None:
    """Call ``on_apps(apps, seen_at)`` with every new picture of the apps until ``stop``
    is set; ``seen_at`` is when the event that caused the read arrived (time.time()).
    ``on_event(type, payload, arrived_at)`` sees each event as it comes."""
    backoff = 0.2
    timeout = httpx.Timeout(10.0, read=None)
    async with httpx.AsyncClient(
        base_url=master, timeout=timeout, **env_credentials(master)
    ) as client:
        while not stop.is_set():
            try:
                await _one_stream(client, on_apps, stop, events, on_event)
                backoff = 0.2
            except (httpx.HTTPError, ValueError, KeyError) as e:
                log.warning("event stream from %s: %s; again in %.1f s", master, e, backoff)
            if stop.is_set():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(5.0, backoff * 2)


async def _one_stream(
    client: httpx.AsyncClient,
    on_apps: Callable[[Apps, float], Awaitable[None]],
    stop: asyncio.Event,
    events: Sequence[str],
    on_event: Callable[[str, dict[str, Any], float], None] | None,
) -> None:
    dirty = asyncio.Event()
    seen = [0.0]
    params: list[tuple[str, str | int | float | bool | None]] = [
        ("event_type", e) for e in ("event_stream_attached", *events)
    ]

    async def refresher() -> None:
        while True:
            await dirty.wait()
            dirty.clear()
            at = seen[0]
            apps = await read_apps(client)
            await on_apps(apps, at)

    task: asyncio.Task[None] | None = None
    stopper = asyncio.ensure_future(stop.wait())
    try:
        async with client.stream("GET", "/v2/events", params=params) as response:
            response.raise_for_status()
            lines = response.aiter_lines()
            kind = ""
            while True:
                nxt = asyncio.ensure_future(lines.__anext__())
                done, _ = await asyncio.wait({nxt, stopper}, return_when=asyncio.FIRST_COMPLETED)
                if stopper in done:
                    nxt.cancel()
                    return
                if task is not None and task.done():
                    task.result()  # a failed read ends this stream; it is opened again
                try:
                    line = nxt.result()
                except StopAsyncIteration:
                    return
                if line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:") and kind:
                    now = time.time()
                    if on_event is not None:
                        with contextlib.suppress(ValueError):
                            on_event(kind, json.loads(line[5:]), now)
                    if kind == "event_stream_attached":
                        task = task or asyncio.create_task(refresher())
                    if not dirty.is_set():
                        seen[0] = now
                    dirty.set()
                    kind = ""
    finally:
        stopper.cancel()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
