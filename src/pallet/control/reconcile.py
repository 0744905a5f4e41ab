"""The app controller's decision: desired instances vs an app's tasks -> launches and kills; pure.

Level-triggered, like a Kubernetes controller: given the app, its tasks and the time,
``reconcile_app`` says how many instances to launch now, which tasks to kill, which
unreachable tasks count as replaced and which to forget. It holds no state; calling it
twice on the same input gives the same answer.

- A task counts toward the app while its goal is RUN and it has not ended. An
  UNREACHABLE task stops counting ``inactiveAfterSeconds`` after its node was lost
  (Marathon's ``unreachableStrategy``; disabled = it always counts) and is forgotten
  ``expungeAfterSeconds`` after.
- One capacity rule for starts, scaling, upgrades, restarts and rollbacks (Marathon's
  ``upgradeStrategy``): a ready task (RUNNING, healthy when the task has health checks)
  is killed only while ``ceil(instances * minimumHealthCapacity)`` ready tasks remain,
  and at most ``instances * (1 + maximumOverCapacity)`` tasks are alive, those still
  being killed included (one more when the two bounds meet, as Marathon allows).
- Old tasks that are not ready and surplus tasks that are not running go first; then
  old ready tasks oldest first, surplus ones by ``killSelection``. When the cluster has
  no room for the next new task (e.g. ``hostname UNIQUE`` on every node while the old
  tasks hold them), one old task at a time is replaced so the upgrade still moves.
- Backoff: launches wait until ``launch_after``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from pallet.control.records import AppRecord, BackoffRecord, TaskGoal, TaskRecord, TaskState

__all__ = [
    "AppDecision",
    "alive",
    "backoff_after_failure",
    "capacity",
    "counted",
    "next_due",
    "reconcile_app",
]


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
    after = app.run.unreachable_inactive_after_seconds
    if task.state is not TaskState.UNREACHABLE or after is None:
        return False
    return now - (task.unreachable_since or now) >= after


def _expunged(task: TaskRecord, app: AppRecord, now: float) -> bool:
    if not _inactive(task, app, now):
        return False
    return now - (task.unreachable_since or now) >= app.run.unreachable_expunge_after_seconds


def counted(task: TaskRecord, app: AppRecord, now: float) -> bool:
    """Whether ``task`` counts as one of ``app``'s instances now."""
    return task.goal is TaskGoal.RUN and task.live and not _inactive(task, app, now)


def _kill_order(
    tasks: list[TaskRecord], selection: str, unready_first: bool = False
) -> list[TaskRecord]:
    """Tasks to kill first come first: not running yet (or, with ``unready_first``, not
    ready), then by ``killSelection``."""
    youngest = selection != "OLDEST_FIRST"

    def key(t: TaskRecord) -> tuple[int, int, float]:
        age = t.started_at if t.started_at is not None else t.staged_at
        waiting = 0 if t.state is not TaskState.RUNNING else 1
        return (waiting, 0 if unready_first and not t.ready else 1, -age if youngest else age)

    return sorted(tasks, key=key)


def capacity(app: AppRecord) -> tuple[int, int]:
    """``(min_ready, max_live)`` of ``app``'s upgrade strategy, as Marathon computes them.

    ``min_ready = ceil(instances * minimumHealthCapacity)`` tasks must stay ready and at
    most ``max_live = floor(instances * (1 + maximumOverCapacity))`` may be alive. When
    the two are equal (both 1.0 and 0.0, say) nothing could ever move, so Marathon lets
    one instance go over capacity."""
    n = app.instances
    min_ready = math.ceil(n * app.run.minimum_health_capacity - 1e-9)
    max_live = math.floor(n * (1 + app.run.maximum_over_capacity) + 1e-9)
    if n > 0 and min_ready >= max_live:
        max_live = min_ready + 1
    return min_ready, max_live


def alive(task: TaskRecord, app: AppRecord, now: float) -> bool:
    """Whether ``task`` occupies one of ``app``'s places: not ended (a task being killed
    still runs until its agent reports the end) and not an unreachable task given up on."""
    return task.live and not _inactive(task, app, now)


def reconcile_app(
    app: AppRecord,
    tasks: Iterable[TaskRecord],
    now: float,
    backoff: BackoffRecord | None = None,
    stuck: bool = False,
    hold: int | None = None,
    moving: frozenset[str] = frozenset(),
) -> AppDecision:
    """What to do about ``app`` given all of its ``tasks`` at time ``now``. ``stuck``: the
    last scheduling round could place none of the app's waiting instances. ``hold``: a
    deployment with canaries waits to be promoted, so at most that many tasks of the
    current config run beside the old ones (old ones go only to make room for them).

    One rule covers starts, scaling, upgrades, restarts and rollbacks (Marathon's
    ``TaskReplaceActor``, level-triggered): a ready task is killed only while at least
    ``min_ready`` ready tasks remain; tasks that are not ready may always go when they
    are old or surplus; new tasks are launched while fewer than ``max_live`` tasks are
    alive, counting those still being killed (see ``capacity``). Tasks in ``moving`` (on a
    drained node) are replaced as old ones are, under the same rule."""
    n = app.instances
    # One pass over the tasks (this runs on every controller pass, for every app): which
    # are given up on (replaced, expunged), alive, and counted as current or old.
    replaced: list[str] = []
    expunge: list[str] = []
    new: list[TaskRecord] = []
    old: list[TaskRecord] = []
    occupied = 0
    for t in tasks:
        inactive = _inactive(t, app, now)
        if inactive:
            if not t.replaced:
                replaced.append(t.id)
            if _expunged(t, app, now):
                expunge.append(t.id)
        elif t.live:  # alive
            occupied += 1
            if t.goal is TaskGoal.RUN:  # counted
                if t.config_version == app.config_version and t.id not in moving:
                    new.append(t)
                else:
                    old.append(t)
    min_ready, max_live = capacity(app)
    spare = sum(1 for t in new if t.ready) + sum(1 for t in old if t.ready) - min_ready
    kill: list[TaskRecord] = []

    def take(candidates: list[TaskRecord], count: int, selection: str) -> None:
        nonlocal spare
        if count <= 0 or not candidates:
            return  # nothing to order
        for t in _kill_order(candidates, selection, unready_first=True)[:count]:
            if t.ready:
                if spare <= 0:
                    continue
                spare -= 1
            kill.append(t)

    want = n if hold is None or not old else min(hold, n)
    if want == n:
        # Old tasks: those not ready go at once (that costs no ready task), the ready
        # ones oldest first while the spare lasts.
        take(old, len(old), "OLDEST_FIRST")
    else:
        # Canaries: old tasks go only as far as the canaries need room.
        room = occupied + max(0, want - len(new)) - max_live
        take(old, room, "OLDEST_FIRST")
    # Surplus of the current version (a scale-down): not ready first, then killSelection.
    surplus = len(new) - want
    take(new, surplus, app.run.kill_selection)
    launch = max(0, min(want - len(new), max_live - occupied))
    killed = {t.id for t in kill}
    left = [t for t in old if t.id not in killed and t.id not in moving]
    if left and not kill and stuck and len(new) < want and all(t.ready for t in new):
        # The cluster has no room for the next new task (e.g. hostname UNIQUE on every
        # node while the old tasks hold them): replace one old task at a time, or the
        # upgrade never moves. This is the one place min_ready may be given up (never
        # for a drain, whose deadline decides).
        kill = _kill_order(left, "OLDEST_FIRST", unready_first=True)[:1]
    waiting = launch
    launch_after = backoff.launch_after if backoff is not None else 0.0
    if launch and launch_after > now:
        launch = 0
    return AppDecision(
        launch=launch,
        waiting=waiting,
        launch_after=launch_after,
        kill=tuple(t.id for t in kill),
        replaced=tuple(replaced),
        expunge=tuple(expunge),
    )


def next_due(app: AppRecord, tasks: Iterable[TaskRecord], now: float) -> float | None:
    """The first time after ``now`` at which ``reconcile_app``'s answer for ``app`` may
    change by the clock alone, its tasks unchanged: an UNREACHABLE task becoming inactive
    or expunged (None: never). A launch delay's end changes only ``launch``, which the
    scheduler reads from the queue entry's ``launch_after`` itself."""
    after = app.run.unreachable_inactive_after_seconds
    if after is None:
        return None
    expunge_after = max(after, app.run.unreachable_expunge_after_seconds)
    due: float | None = None
    for t in tasks:
        since = t.unreachable_since
        if t.state is not TaskState.UNREACHABLE or not since:
            continue  # (no time: ``_inactive`` counts it as just lost, whenever asked)
        for at in (since + after, since + expunge_after):
            if at > now and (due is None or at < due):
                due = at
    return due


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
