"""What a change to an app would do, computed without doing it (``?dryRun=true``); pure.

``preview`` plays the app controller's own rule (``reconcile_app``) against the real
``core.schedule`` on a copy of the view, as if every launched task became ready and every
kill ended at once, until the app would have converged. It yields the deployment steps,
the node every new task would land on and the tasks that would be killed, in order, and
for instances that fit nowhere the per-node reasons. Nothing is written and nothing is
published: the store, the state and the live policy are left as they were.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from pallet.control.deployments import make_deployment
from pallet.control.reconcile import reconcile_app
from pallet.control.records import AppRecord, Step, TaskGoal, TaskRecord, TaskState
from pallet.control.state import ClusterState
from pallet.core import Policy, schedule
from pallet.model import Placement, ReadinessResult

__all__ = ["Preview", "preview"]


@dataclass(frozen=True, slots=True)
class Preview:
    """A change played out on a copy of the cluster."""

    action: str
    steps: tuple[Step, ...]
    launches: tuple[TaskRecord, ...]
    """The tasks that would be started, in order, each on the node it would land on."""
    kills: tuple[TaskRecord, ...]
    """The running tasks that would be stopped, in order."""
    unplaced: int
    """Instances that fit on no node (they would wait in the queue)."""
    reasons: tuple[tuple[str, int], ...]
    """Why the nodes turned the first of them down, per reason, counted."""
    nodes: int


def _new_task(state: ClusterState, app: AppRecord, p: Placement, now: float) -> TaskRecord:
    node = state.nodes[p.node_id]
    launch = app.run.launch_spec(p.request_id, app.id, app.version, p.ports, p.gpus)
    return TaskRecord(
        id=p.request_id,
        app_id=app.id,
        node_id=p.node_id,
        host=node.node.hostname,
        version=app.version,
        config_version=app.config_version,
        resources=p.resources,
        ports=p.ports,
        requested_ports=p.request.ports,
        gpus=p.gpus,
        staged_at=now,
        started_at=now,
        launch=launch,
        state=TaskState.RUNNING,
        role=app.run.role,
        healthy=True,  # as if it became ready at once: the preview plays the whole rollout
        readiness=tuple(ReadinessResult(c.name, True) for c in launch.readiness_checks),
    )


def preview(
    state: ClusterState,
    action: str,
    current: AppRecord | None,
    target: AppRecord,
    policy: Policy,
    rng: np.random.Generator,
    now: float,
    task_ids: Iterator[str],
) -> Preview:
    """Play ``current`` -> ``target`` out on a copy of ``state``'s view. ``policy`` must be
    a twin of the live one (``Policy.twin``): scheduling may teach a policy."""
    deployment = make_deployment("preview", action, current, target, now, target.version)
    view = state.view.copy()
    tasks = {t.id: t for t in state.app_tasks(target.id)}
    launches: list[TaskRecord] = []
    kills: list[TaskRecord] = []
    unplaced = 0
    reasons: tuple[tuple[str, int], ...] = ()
    stuck = False
    # every pass launches or kills something, or ends: at most one pass per task involved
    for _ in range(2 * (len(tasks) + target.instances) + 2):
        decision = reconcile_app(target, tasks.values(), now, stuck=stuck)
        for tid in decision.kill:
            kills.append(tasks[tid])
            tasks[tid] = tasks[tid].with_(goal=TaskGoal.KILL)
        placed = 0
        if decision.launch:
            requests = [target.placement_request(next(task_ids)) for _ in range(decision.launch)]
            plan = schedule(requests, view, policy, rng)
            for p in plan.placements:
                task = _new_task(state, target, p, now)
                tasks[task.id] = task
                launches.append(task)
            placed = len(plan.placements)
            unplaced = len(plan.unplaced)
            if plan.unplaced:
                reasons = plan.unplaced[0].reasons
        ending = [t for t in tasks.values() if t.goal is TaskGoal.KILL]
        for t in ending:
            if t.id in view.tasks:
                view.release(t.id)
            del tasks[t.id]
        if not decision.kill and not placed and not ending:
            if stuck or not unplaced:
                break
            stuck = True  # the live controller's next pass knows the round placed nothing
        else:
            stuck = False
    return Preview(
        action=action,
        steps=deployment.steps,
        launches=tuple(launches),
        kills=tuple(kills),
        unplaced=unplaced,
        reasons=reasons,
        nodes=len(view),
    )
