"""Deployments as ``/v2/deployments`` and the write endpoints return them; pure.

Shapes from ``deploymentPlan.raml``, ``deploymentAction.raml``,
``deploymentEventsInfo.raml`` and ``deploymentResult.raml``:

- ``GET /v2/deployments``: ``[{"id", "version", "affectedApps", "affectedPods",
  "steps": [{"actions": [{"action", "app"}]}], "currentActions": [{"action", "app",
  "readinessCheckResults"}], "currentStep", "totalSteps"}]``;
- ``PUT``/``DELETE /v2/apps/{id}`` and friends: ``{"version", "deploymentId"}``;
- the ``plan`` of deployment events: ``{"id", "original", "target", "steps",
  "version"}``, with the before/after groups (Marathon up to 1.7 sends them, and the
  Python client's ``MarathonDeploymentPlan`` cannot read a plan without them).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import Field

from pallet.api.marathon.jsontypes import MarathonModel, Timestamp

__all__ = [
    "ActionName",
    "Canary",
    "Deployment",
    "DeploymentAction",
    "DeploymentPlan",
    "DeploymentResult",
    "DeploymentStep",
    "Group",
    "ReadinessCheckResult",
    "deployment_result_json",
    "deployments_json",
]


class ActionName(enum.StrEnum):
    START_APPLICATION = "StartApplication"
    STOP_APPLICATION = "StopApplication"
    SCALE_APPLICATION = "ScaleApplication"
    RESTART_APPLICATION = "RestartApplication"
    START_POD = "StartPod"
    STOP_POD = "StopPod"
    SCALE_POD = "ScalePod"
    RESTART_POD = "RestartPod"
    RESOLVE_ARTIFACTS = "ResolveArtifacts"


_POD_ACTIONS = {
    ActionName.START_APPLICATION: ActionName.START_POD,
    ActionName.STOP_APPLICATION: ActionName.STOP_POD,
    ActionName.SCALE_APPLICATION: ActionName.SCALE_POD,
    ActionName.RESTART_APPLICATION: ActionName.RESTART_POD,
}


class ReadinessCheckResult(MarathonModel):
    name: str
    task_id: str
    ready: bool
    last_response: dict[str, Any] | None = None


class DeploymentAction(MarathonModel):
    """One action of a step: what happens to which app (or pod)."""

    action: ActionName
    app: str | None = None
    pod: str | None = None


def action_fields(action: ActionName | str, target: str, pods: frozenset[str]) -> dict[str, Any]:
    """The fields of one action: ``{action, app}``, or Marathon's ``*Pod`` action with
    ``pod`` when ``target`` is one of ``pods``."""
    name = ActionName(action)
    if target in pods:
        return {"action": _POD_ACTIONS.get(name, name), "pod": target}
    return {"action": name, "app": target}


class CurrentAction(DeploymentAction):
    """An action of the running step, with its tasks' readiness."""

    readiness_check_results: list[ReadinessCheckResult] = Field(default_factory=list)


class DeploymentStep(MarathonModel):
    actions: list[DeploymentAction]


class Canary(MarathonModel):
    """Pallet's: a deployment with ``canaryInstances`` holds at that many new tasks and,
    once they are ready, is ``paused`` until ``promoted``. Absent for other deployments,
    so Marathon clients never meet it."""

    instances: int
    paused: bool
    promoted: bool


class Deployment(MarathonModel):
    """A running deployment (``GET /v2/deployments``). ``current_step`` counts from 1."""

    id: str
    version: Timestamp
    affected_apps: list[str]
    affected_pods: list[str] = Field(default_factory=list)
    steps: list[DeploymentStep]
    current_actions: list[CurrentAction]
    current_step: int
    total_steps: int
    canary: Canary | None = None

    @classmethod
    def running(
        cls,
        id: str,
        version: datetime,
        steps: Sequence[Sequence[tuple[ActionName, str]]],
        current_step: int,
        readiness: Mapping[str, Sequence[ReadinessCheckResult]] | None = None,
        pods: frozenset[str] = frozenset(),
    ) -> Deployment:
        """A deployment of apps from its steps (each a list of ``(action, app id)``),
        ``current_step`` counting from 1 as Marathon does; ``readiness`` gives the
        current actions' ``readinessCheckResults`` by app id. Ids in ``pods`` are pods:
        their actions are Marathon's ``*Pod`` ones, naming them as ``pod``."""
        if not 1 <= current_step <= max(1, len(steps)):
            raise ValueError(f"deployment {id}: step {current_step} of {len(steps)} does not exist")

        def target(a: ActionName, app: str) -> dict[str, Any]:
            return action_fields(a, app, pods)

        step_models = [
            DeploymentStep(actions=[DeploymentAction(**target(a, app)) for a, app in step])
            for step in steps
        ]
        current = steps[current_step - 1] if steps else ()
        affected = list(dict.fromkeys(app for step in steps for _, app in step))
        return cls(
            id=id,
            version=version,
            affected_apps=[a for a in affected if a not in pods],
            affected_pods=[a for a in affected if a in pods],
            steps=step_models,
            current_actions=[
                CurrentAction(
                    **target(a, app),
                    readiness_check_results=list((readiness or {}).get(app, ())),
                )
                for a, app in current
            ],
            current_step=current_step,
            total_steps=len(steps),
        )


class Group(MarathonModel):
    """A group as Marathon 1.x writes it in deployment plans (``group.raml``)."""

    id: str
    apps: list[dict[str, Any]] = Field(default_factory=list)
    groups: list[Group] = Field(default_factory=list)
    pods: list[dict[str, Any]] = Field(default_factory=list)
    dependencies: list[str] = Field(default_factory=list)
    version: Timestamp | None = None


class DeploymentPlan(MarathonModel):
    """The ``plan`` carried by deployment events."""

    id: str
    original: Group
    target: Group
    steps: list[DeploymentStep]
    version: Timestamp


class DeploymentResult(MarathonModel):
    version: Timestamp
    deployment_id: str


def deployments_json(deployments: Sequence[Deployment]) -> list[dict[str, Any]]:
    """The body of ``GET /v2/deployments``."""
    return [d.to_json() for d in deployments]


def deployment_result_json(deployment_id: str, version: datetime) -> dict[str, Any]:
    """``{"version", "deploymentId"}``: the answer to a change that started a deployment
    (sent with the ``Marathon-Deployment-Id`` header)."""
    return DeploymentResult(version=version, deployment_id=deployment_id).to_json()
