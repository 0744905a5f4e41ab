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

from collections.abc import Iterable
from datetime import UTC, datetime

from pallet.control.reconcile import counted
from pallet.control.records import AppRecord, DeploymentRecord, TaskGoal, TaskRecord
from pallet.control.state import ClusterState

__all__ = [
    "RESTART",
    "SCALE",
    "START",
    "STOP",
    "converged",
    "holding",
    "iso",
    "make_deployment",
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
    app = target or original
    assert app is not None, "a deployment changes an app"
    steps: tuple[tuple[str, ...], ...] = ((action,),)
    if action == START and target is not None and target.instances > 0:
        steps = ((START,), (SCALE,))
    canaries = 0
    if with_canaries and action == RESTART and target is not None and original is not None:
        canaries = min(target.run.canary_instances, target.instances)
    return DeploymentRecord(
        id=deployment_id,
        app_id=app.id,
        version=version,
        steps=steps,
        current_step=len(steps),
        original=original.to_json() if original is not None else None,
        target=target.to_json() if target is not None else None,
        started_at=now,
        progress_at=now,
        canaries=canaries,
    )


def converged(deployment: DeploymentRecord, state: ClusterState, now: float) -> bool:
    """Whether the app of ``deployment`` has reached its target."""
    tasks = state.app_tasks(deployment.app_id)
    if deployment.target is None:
        return not tasks
    app: AppRecord | None = state.apps.get(deployment.app_id)
    if app is None or app.version != deployment.version:
        return False
    live = [t for t in tasks if counted(t, app, now)]
    if len(live) != app.instances:
        return False
    if any(t.config_version != app.config_version or not t.ready for t in live):
        return False
    return not any(t.goal is TaskGoal.KILL for t in tasks)


def holding(state: ClusterState, app_id: str) -> int | None:
    """How many new tasks ``app_id`` may run while its deployment's canaries wait to be
    promoted (None: no such wait)."""
    for d in state.deployments.values():
        if d.app_id == app_id and d.holding is not None:
            return d.holding
    return None


def watch(
    d: DeploymentRecord, app: AppRecord | None, tasks: Iterable[TaskRecord], now: float
) -> tuple[DeploymentRecord, str | None]:
    """``d`` after looking at its app's tasks at ``now``, and why it failed (None: it
    goes on). Pure."""
    if d.target is None or app is None or app.version != d.version:
        return d, None
    ready = sum(
        1
        for t in tasks
        if t.config_version == app.config_version and t.goal is TaskGoal.RUN and t.ready
    )
    new = d
    if ready > d.ready_seen:
        new = new.with_(ready_seen=ready, progress_at=now)
    elif ready < d.ready_seen:
        new = new.with_(ready_seen=ready)  # lost one: the deadline still counts from the last
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
    deadline = app.run.progress_deadline_seconds
    if deadline is not None and not paused and now - new.progress_at > deadline:
        return new, f"no new task became ready within progressDeadlineSeconds ({deadline:g} s)"
    return new, None
