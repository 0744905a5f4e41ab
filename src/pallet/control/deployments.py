"""Deployments: when one exists, when it is done, and the records and ids it needs; pure.

A deployment exists while an app converges after a create, update, scale, restart or
delete. It is done when every counted task runs the app's current config version and is
ready (RUNNING, and healthy when the app has health checks, as in Marathon), their
number is the app's ``instances`` and no task of the app is still being killed; a stop
is done when the app has no task left.

``watch`` follows one in flight (Pallet's additions to ``upgradeStrategy``): progress is
a new ready task of the target; none for ``progressDeadlineSeconds`` fails it. With
``canaryInstances`` it holds at that many new tasks; once all are ready it is paused
until promoted (``POST /v2/deployments/{id}/promote``, or ``autoPromoteAfterSeconds``
of their being ready). A paused deployment's deadline does not run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pallet.control.reconcile import counted
from pallet.control.records import AppRecord, DeploymentRecord, TaskGoal, TaskRecord
from pallet.control.state import ClusterState

__all__ = [
    "RESTART",
    "SCALE",
    "START",
    "STOP",
    "advance",
    "app_converged",
    "converged",
    "holding",
    "holds",
    "iso",
    "make_deployment",
    "make_group_deployment",
    "waiting",
    "waiting_apps",
    "watch",
]

START = "StartApplication"
SCALE = "ScaleApplication"
RESTART = "RestartApplication"
STOP = "StopApplication"


def iso(epoch: float) -> str:
    """Marathon's version text for epoch seconds: UTC, milliseconds, ``Z``."""
    moment = datetime.fromtimestamp(epoch, UTC)
    # %Y does not zero-pad years before 1000 on glibc; ISO 8601 wants four digits
    return f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def make_deployment(
    deployment_id: str,
    action: str,
    original: AppRecord | None,
    target: AppRecord | None,
    now: float,
    version: str,
    with_canaries: bool = True,
) -> DeploymentRecord:
    """The deployment of a change to one app: its actions all happen at once (Marathon
    shows a start as two steps, start then scale, both current)."""
    app = target or original
    assert app is not None, "a deployment changes an app"
    steps: tuple[tuple[tuple[str, str], ...], ...] = (((action, app.id),),)
    if action == START and target is not None and target.instances > 0:
        steps = (((START, app.id),), ((SCALE, app.id),))
    canaries = 0
    if with_canaries and action == RESTART and target is not None and original is not None:
        canaries = min(target.run.canary_instances, target.instances)
    return DeploymentRecord(
        id=deployment_id,
        version=version,
        steps=steps,
        current_step=len(steps),
        originals={app.id: original.to_json() if original is not None else None},
        targets={app.id: target.to_json() if target is not None else None},
        started_at=now,
        progress_at=now,
        canaries=canaries,
    )


def make_group_deployment(
    deployment_id: str,
    group: str,
    levels: Sequence[Sequence[tuple[str, AppRecord | None, AppRecord | None]]],
    now: float,
    version: str,
) -> DeploymentRecord:
    """The deployment of a group change: one step per level of ``(action, original,
    target)`` (dependencies first; stops come in their own levels, dependents first).
    The apps of a level wait until every earlier level has converged."""
    steps = []
    originals: dict[str, dict[str, Any] | None] = {}
    targets: dict[str, dict[str, Any] | None] = {}
    for level in levels:
        step = []
        for action, original, target in level:
            app = target or original
            assert app is not None, "a deployment changes an app"
            step.append((action, app.id))
            originals[app.id] = original.to_json() if original is not None else None
            targets[app.id] = target.to_json() if target is not None else None
        if step:
            steps.append(tuple(step))
    return DeploymentRecord(
        id=deployment_id,
        version=version,
        steps=tuple(steps),
        current_step=1,
        originals=originals,
        targets=targets,
        started_at=now,
        progress_at=now,
        group=group,
    )


def app_converged(d: DeploymentRecord, app_id: str, state: ClusterState, now: float) -> bool:
    """Whether ``app_id`` has reached its target in ``d``: no task left for a stop; else
    every counted task ready at the app's current config, ``instances`` of them, none
    being killed."""
    tasks = state.app_tasks(app_id)
    target = d.targets.get(app_id)
    if target is None:
        return not tasks
    app: AppRecord | None = state.apps.get(app_id)
    if app is None or app.version != target.get("version"):
        return False
    live = [t for t in tasks if counted(t, app, now)]
    if len(live) != app.instances:
        return False
    if any(t.config_version != app.config_version or not t.ready for t in live):
        return False
    return not any(t.goal is TaskGoal.KILL for t in tasks)


def advance(d: DeploymentRecord, state: ClusterState, now: float) -> DeploymentRecord:
    """``d`` moved past every step whose apps (and all before) have converged, as far as
    the last step."""
    step = d.current_step
    while step < len(d.steps) and all(
        app_converged(d, app, state, now) for _, app in d.steps[step - 1]
    ):
        step += 1
    return d if step == d.current_step else d.with_(current_step=step, progress_at=now)


def converged(deployment: DeploymentRecord, state: ClusterState, now: float) -> bool:
    """Whether every app of ``deployment`` has reached its target (at the last step)."""
    if deployment.current_step < len(deployment.steps):
        return False
    return all(app_converged(deployment, app, state, now) for app in deployment.app_ids)


def waiting(state: ClusterState, app_id: str) -> bool:
    """Whether a deployment leaves ``app_id`` as it is until an earlier step is done (the
    app's few deployments looked at, through the index)."""
    return any(d.waits(app_id) for d in state.deployments.of_app(app_id))


def waiting_apps(state: ClusterState) -> set[str]:
    """Every app ``waiting`` is true of, found in one walk over the deployments (a pass over
    every app asks for each)."""
    return {a for d in state.deployments.values() for a in d.targets if d.waits(a)}


def holding(state: ClusterState, app_id: str) -> int | None:
    """How many new tasks ``app_id`` may run while its deployment's canaries wait to be
    promoted (None: no such wait); as ``holds`` answers, from the app's few deployments
    (the index keeps them in the order they were added, as the whole dict does)."""
    for d in state.deployments.of_app(app_id):
        hold = d.holding
        if hold is not None and d.app_id == app_id:
            return hold
    return None


def holds(state: ClusterState) -> dict[str, int]:
    """``holding`` of every app that has such a wait, in one walk over the deployments (the
    first deployment of an app that holds wins, as ``holding`` answers)."""
    out: dict[str, int] = {}
    for d in state.deployments.values():
        hold = d.holding  # cheap; the app id is built only for the few that hold
        if hold is not None:
            out.setdefault(d.app_id, hold)
    return out


def watch(
    d: DeploymentRecord, apps: Mapping[str, AppRecord], tasks: Iterable[TaskRecord], now: float
) -> tuple[DeploymentRecord, str | None]:
    """``d`` after looking at the tasks of its apps of the current step at ``now``, and
    why it failed (None: it goes on). Pure."""
    current = [app for _, app in d.steps[d.current_step - 1]] if d.steps else []
    # The step's apps looked up, not every app walked (one watch per deployment per
    # tick: with 1,000 apps being created that was a million look-ups a tick).
    wanted = {
        a.id: a
        for a in (apps.get(app_id) for app_id in dict.fromkeys(current))
        if a is not None
        and d.targets.get(a.id) is not None
        and a.version == (d.targets[a.id] or {}).get("version")
    }
    if not wanted:
        return d, None
    ready = sum(
        1
        for t in tasks
        if t.app_id in wanted
        and t.config_version == wanted[t.app_id].config_version
        and t.goal is TaskGoal.RUN
        and t.ready
    )
    new = d
    if ready > d.ready_seen:
        new = new.with_(ready_seen=ready, progress_at=now)
    elif ready < d.ready_seen:
        new = new.with_(ready_seen=ready)  # lost one: the deadline still counts from the last
    app = next(iter(wanted.values()))
    hold = new.holding
    if hold is not None:
        if ready >= hold and new.paused_at is None:
            new = new.with_(paused_at=now)
        elif ready < hold and new.paused_at is not None:
            new = new.with_(paused_at=None)  # a canary failed after all: not paused
        after = app.run.auto_promote_after_seconds
        if after is not None and new.paused_at is not None and now - new.paused_at >= after:
            new = new.with_(promoted=True, progress_at=now)
    paused = new.holding is not None and new.paused_at is not None
    deadlines = [a.run.progress_deadline_seconds for a in wanted.values()]
    known = [x for x in deadlines if x is not None]
    deadline = min(known) if known else None
    if deadline is not None and not paused and now - new.progress_at > deadline:
        return new, f"no new task became ready within progressDeadlineSeconds ({deadline:g} s)"
    return new, None
