"""Deployments: when one exists, when it is done, and the records and ids it needs; pure.

A deployment exists while an app converges after a create, update, scale, restart or
delete. It is done when every counted task runs the app's current config version and is
ready (RUNNING, and healthy when the app has health checks, as in Marathon), their
number is the app's ``instances`` and no task of the app is still being killed; a stop
is done when the app has no task left.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pallet.control.reconcile import counted
from pallet.control.records import AppRecord, DeploymentRecord, TaskGoal
from pallet.control.state import ClusterState

__all__ = [
    "RESTART",
    "SCALE",
    "START",
    "STOP",
    "converged",
    "iso",
    "make_deployment",
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
) -> DeploymentRecord:
    app = target or original
    assert app is not None, "a deployment changes an app"
    steps: tuple[tuple[str, ...], ...] = ((action,),)
    if action == START and target is not None and target.instances > 0:
        steps = ((START,), (SCALE,))
    return DeploymentRecord(
        id=deployment_id,
        app_id=app.id,
        version=version,
        steps=steps,
        current_step=len(steps),
        original=original.to_json() if original is not None else None,
        target=target.to_json() if target is not None else None,
        started_at=now,
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
