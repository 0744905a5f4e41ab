"""Watching a deployment until it finishes: polls ``/v2/deployments`` and the app; does I/O
through a ``Client``, with the clock and sleep passed in so tests need no real time.

A deployment is finished when the master no longer lists it and the app has as many
running tasks as it wants (none once it is removed). While it runs, each snapshot
says how many instances wait for placement and why nodes turned them down (from
``/v2/queue``), and the app's last task failure since the deployment began.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from pallet.client.errors import NotFound, WaitTimeout
from pallet.client.models import QueueItem, TaskFailure
from pallet.client.sync import Client

__all__ = ["Progress", "describe_waiting", "watch_deployment"]

_WATCH_EMBED = ("app.counts", "app.deployments", "app.lastTaskFailure")


@dataclass(frozen=True, slots=True)
class Progress:
    """One look at a deployment: running tasks against the target, and what holds it up."""

    app_id: str
    deployment_id: str | None
    running: int
    target: int
    active: bool
    elapsed: float
    waiting: QueueItem | None = None
    failure: TaskFailure | None = None

    @property
    def finished(self) -> bool:
        return not self.active and self.running == self.target


def describe_waiting(item: QueueItem) -> str:
    """``2 instances not placed: InsufficientMemory on 3 of 3 nodes``."""
    noun = "instance" if item.count == 1 else "instances"
    text = f"{item.count} {noun} not placed"
    reasons = [f"{r.reason} on {r.declined} of {r.processed} nodes" for r in item.reasons]
    if reasons:
        return f"{text}: {', '.join(reasons)}"
    if item.delay_seconds > 0 and not item.overdue:
        return f"{text}: backing off for {item.delay_seconds} s after failures"
    return text


def _parse_time(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def _look(
    client: Client,
    app_id: str,
    deployment_id: str | None,
    removing: bool,
    since: datetime | None,
    elapsed: float,
) -> Progress:
    active_ids = {d.id for d in client.list_deployments()}
    failure = None
    if removing:
        running = sum(1 for t in client.list_tasks() if t.app_id == app_id and t.live)
        target = 0
        active = deployment_id in active_ids
    else:
        try:
            app = client.get_app(app_id, _WATCH_EMBED)
        except NotFound:
            raise NotFound(
                "GET", app_id, 404, f"app {app_id} was removed while waiting for its deployment"
            ) from None
        running, target = app.tasks_running or 0, app.instances
        active = (deployment_id in active_ids) if deployment_id else app.deploying
        failure = app.last_task_failure
        if failure is not None and (
            since is None or failure.timestamp is None or failure.timestamp < since
        ):
            failure = None
    waiting = None
    if active and not removing:
        waiting = next((q for q in client.list_queue() if q.app_id == app_id), None)
    return Progress(app_id, deployment_id, running, target, active, elapsed, waiting, failure)


def _timeout_message(p: Progress, timeout: float) -> str:
    what = f"deployment {p.deployment_id}" if p.deployment_id else "the deployment"
    parts = [
        f"{what} of {p.app_id} did not finish within {timeout:g} s: "
        f"{p.running} of {p.target} instances running"
    ]
    if p.waiting is not None:
        parts.append(describe_waiting(p.waiting))
    if p.failure is not None:
        parts.append(f"last task failure: {p.failure.state} {p.failure.message}".rstrip())
    parts.append(f"it goes on in the background; see `pallet app show {p.app_id}`")
    return "; ".join(parts)


def watch_deployment(
    client: Client,
    app_id: str,
    deployment_id: str | None,
    *,
    removing: bool = False,
    since: str | None = None,
    interval: float = 0.5,
    timeout: float = 300.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Progress]:
    """Snapshots of the deployment every ``interval`` seconds until it finishes.

    ``since`` is the deployment's version (an ISO-8601 time): task failures older
    than it are not reported. Raises ``WaitTimeout`` after ``timeout`` seconds; the
    deployment itself goes on.
    """
    start = clock()
    began = _parse_time(since)
    while True:
        progress = _look(client, app_id, deployment_id, removing, began, clock() - start)
        yield progress
        if progress.finished:
            return
        if progress.elapsed >= timeout:
            raise WaitTimeout(_timeout_message(progress, timeout))
        sleep(interval)
