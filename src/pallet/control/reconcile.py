"""The app controller's decision: desired instances vs an app's tasks -> launches and kills; pure.

Level-triggered, like a Kubernetes controller: given the app, its tasks and the time,
``reconcile_app`` says how many instances to launch now, which tasks to kill, which
unreachable tasks count as replaced and which to forget. It holds no state; calling it
twice on the same input gives the same answer.

- A task counts toward the app while its goal is RUN and it has not ended. An
  UNREACHABLE task stops counting ``inactiveAfterSeconds`` after its node was lost
  (Marathon's ``unreachableStrategy``; disabled = it always counts) and is forgotten
  ``expungeAfterSeconds`` after.
- Tasks of an older config version are replaced by a rolling upgrade: at most
  ``instances * (1 + maximumOverCapacity)`` tasks at once, and old tasks are killed only
  while ``instances * minimumHealthCapacity`` stay ready (RUNNING, and healthy when the
  task has health checks).
- Scaling down kills tasks that are not running first, then by ``killSelection``.
  When that leaves no room to move (no over-capacity, or new tasks fit nowhere while
  the old ones hold their nodes), one old task at a time is killed to make some.
- Backoff: launches wait until ``launch_after``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from pallet.control.records import AppRecord, BackoffRecord, TaskGoal, TaskRecord, TaskState

__all__ = ["AppDecision", "backoff_after_failure", "counted", "reconcile_app"]


@dataclass(frozen=True, slots=True)
class AppDecision:
    launch: int = 0
    """Instances to place now (0 while backing off)."""
    waiting: int = 0
    """Instances missing, placed or not (what /v2/queue shows)."""
    launch_after: float = 0.0
    kill: tuple[str, ...] = ()
    replaced: tuple[str, ...] = ()
    """UNREACHABLE tasks that now count as replaced."""
    expunge: tuple[str, ...] = ()
    """UNREACHABLE tasks to forget."""


def _inactive(task: TaskRecord, app: AppRecord, now: float) -> bool:
    after = app.run.unreachable_inactive_after
    if task.state is not TaskState.UNREACHABLE or after is None:
        return False
    return now - (task.unreachable_since or now) >= after


def _expunged(task: TaskRecord, app: AppRecord, now: float) -> bool:
    if not _inactive(task, app, now):
        return False
    return now - (task.unreachable_since or now) >= app.run.unreachable_expunge_after


def counted(task: TaskRecord, app: AppRecord, now: float) -> bool:
    """Whether ``task`` counts as one of ``app``'s instances now."""
    return task.goal is TaskGoal.RUN and task.live and not _inactive(task, app, now)


def _kill_order(tasks: list[TaskRecord], selection: str) -> list[TaskRecord]:
    """Tasks to kill first come first: not running yet, then by ``killSelection``."""
    youngest = selection != "OLDEST_FIRST"

    def key(t: TaskRecord) -> tuple[int, float]:
        age = t.started_at if t.started_at is not None else t.staged_at
        return (0 if t.state is not TaskState.RUNNING else 1, -age if youngest else age)

    return sorted(tasks, key=key)


def reconcile_app(
    app: AppRecord,
    tasks: Iterable[TaskRecord],
    now: float,
    backoff: BackoffRecord | None = None,
    stuck: bool = False,
) -> AppDecision:
    """What to do about ``app`` given all of its ``tasks`` at time ``now``. ``stuck``: the
    last scheduling round could place none of the app's waiting instances."""
    tasks = list(tasks)
    n = app.instances
    replaced = tuple(t.id for t in tasks if _inactive(t, app, now) and not t.replaced)
    expunge = tuple(t.id for t in tasks if _expunged(t, app, now))
    live = [t for t in tasks if counted(t, app, now)]
    new = [t for t in live if t.config_version == app.config_version]
    old = [t for t in live if t.config_version != app.config_version]
    kill: list[TaskRecord] = []
    if old:
        over = math.floor(n * app.run.maximum_over_capacity)
        min_healthy = math.ceil(n * app.run.minimum_health_capacity)
        launch = max(0, min(n - len(new), n + over - len(live)))
        running = sum(1 for t in live if t.ready)
        if len(new) >= n:
            kill = old + _kill_order(new, app.run.kill_selection)[: len(new) - n]
        else:
            not_running = [t for t in old if t.state is not TaskState.RUNNING]
            spare = max(0, running - min_healthy)
            by_age = _kill_order([t for t in old if t.state is TaskState.RUNNING], "OLDEST_FIRST")
            kill = not_running + by_age[:spare]
            if not kill and (launch == 0 or stuck) and all(t.ready for t in new):
                # No room (the strategy's, or the cluster's: e.g. hostname UNIQUE on every
                # node): make some by replacing one old task at a time, or it never moves.
                kill = by_age[:1]
    else:
        launch = max(0, n - len(new))
        if len(new) > n:
            kill = _kill_order(new, app.run.kill_selection)[: len(new) - n]
    waiting = launch
    launch_after = backoff.launch_after if backoff is not None else 0.0
    if launch and launch_after > now:
        launch = 0
    return AppDecision(
        launch=launch,
        waiting=waiting,
        launch_after=launch_after,
        kill=tuple(t.id for t in kill),
        replaced=replaced,
        expunge=expunge,
    )


def backoff_after_failure(
    app: AppRecord, current: BackoffRecord | None, now: float
) -> BackoffRecord:
    """Marathon's rate limiter: the first failure waits ``backoffSeconds``, each next one
    ``backoffFactor`` times longer, at most ``maxLaunchDelaySeconds``."""
    r = app.run
    if current is None or current.delay <= 0:
        delay = r.backoff_seconds
    else:
        delay = current.delay * r.backoff_factor
    delay = min(delay, r.max_launch_delay_seconds)
    last = current.last_failure if current is not None else None
    return BackoffRecord(delay=delay, launch_after=now + delay, last_failure=last)
