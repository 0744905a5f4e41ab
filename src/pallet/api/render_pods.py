"""Pods in Marathon's shapes: the definition with its version, ``PodStatus`` with one
``PodInstanceStatus`` per instance and one ``ContainerStatus`` per container, and the
``Instance`` a kill answers with; pure over ``ClusterState``.

An instance's state is derived from its task, which carries all its containers: STAGING
until the supervisor runs, STABLE while every container runs and every health check
passes, DEGRADED while running with a check not (yet) passing, TERMINAL once it is being
killed or has ended (a container that ends ends the instance). A pod is STABLE when at
least ``instances`` instances are STABLE, else DEGRADED (``podStatus.raml``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pallet.api.convert import epoch, moment
from pallet.api.marathon.jsontypes import format_timestamp
from pallet.control import AppRecord, ClusterState, TaskGoal, TaskState
from pallet.control import TaskRecord as ControlTask
from pallet.model import GPU_MILLI, Resources
from pallet.model.frozen import thaw

__all__ = [
    "instance_json",
    "instance_state",
    "killed_json",
    "pod_definition",
    "pod_json",
    "pod_status_json",
]

_STAGING = frozenset({TaskState.STAGING, TaskState.STARTING})


def _ts(seconds: float) -> str:
    return format_timestamp(epoch(seconds))


def _resources(r: Resources) -> dict[str, float]:
    return {
        "cpus": r.cpu_milli / 1000,
        "mem": float(r.mem_mib),
        "disk": float(r.disk_mib),
        "gpus": r.gpu_milli // GPU_MILLI,
    }


def pod_definition(pod: AppRecord) -> dict[str, Any]:
    """The pod's Marathon definition without its version: the stored one with its count
    (``scaling.instances``, kept by control in ``RunSpec`` only) put back."""
    doc = thaw(pod.definition)
    doc["scaling"] = {**(doc.get("scaling") or {"kind": "fixed"}), "instances": pod.instances}
    return doc


def pod_json(pod: AppRecord) -> dict[str, Any]:
    """The pod's definition as Marathon returns it: every default written, its version."""
    return {**pod_definition(pod), "version": format_timestamp(moment(pod.version))}


def instance_state(task: ControlTask) -> str:
    """``PodInstanceState`` of one instance."""
    if task.goal is TaskGoal.KILL or task.state.is_terminal or task.state is TaskState.KILLING:
        return "TERMINAL"
    if task.state in _STAGING:
        return "STAGING"
    if task.state is TaskState.RUNNING and task.ready:
        return "STABLE"
    return "DEGRADED"


def _since(task: ControlTask) -> float:
    return task.started_at if task.started_at is not None else task.staged_at


def _containers(task: ControlTask) -> list[dict[str, Any]]:
    """One ``ContainerStatus`` per container: the instance's state (they live and end
    together), its endpoints' host ports and health, its own resources."""
    ports = dict(zip(task.launch.port_names, task.ports, strict=False))
    checks = iter(range(len(task.launch.health_checks)))
    since = _ts(_since(task))
    out = []
    for c in task.launch.containers:
        healthy: bool | None = None
        if c.health_checked:
            index = next(checks)
            result = task.health[index] if index < len(task.health) else None
            healthy = None if result is None else result.alive
        endpoints = []
        for name in c.endpoints:
            ep: dict[str, Any] = {"name": name}
            if name in ports:
                ep["allocatedHostPort"] = ports[name]
            if healthy is not None:
                ep["healthy"] = healthy
            endpoints.append(ep)
        doc: dict[str, Any] = {
            "name": c.name,
            "status": task.state.value,
            "statusSince": since,
            "containerId": f"{task.id}.{c.name}",
            "endpoints": endpoints,
            "resources": _resources(Resources(c.cpu_milli, c.mem_mib, c.disk_mib, 0)),
            "conditions": [],
            "lastUpdated": since,
            "lastChanged": since,
        }
        if healthy is not None:
            doc["conditions"] = [
                {"name": "healthy", "value": str(healthy).lower(),
                 "lastChanged": since, "lastUpdated": since}
            ]  # fmt: skip
        if task.message and task.state is not TaskState.RUNNING:
            doc["message"] = task.message
        out.append(doc)
    return out


def instance_json(pod_id: str, task: ControlTask) -> dict[str, Any]:
    """``PodInstanceStatus`` of one instance."""
    since = _ts(_since(task))
    doc: dict[str, Any] = {
        "id": task.id,
        "status": instance_state(task),
        "statusSince": since,
        "conditions": [],
        "agentHostname": task.host,
        "agentId": task.node_id,
        "resources": _resources(task.resources),
        "networks": [],
        "containers": _containers(task),
        "specReference": f"/v2/pods{pod_id}::versions/{format_timestamp(moment(task.version))}",
        "lastUpdated": since,
        "lastChanged": since,
        "role": task.role,
    }
    if task.message:
        doc["message"] = task.message
    return doc


def pod_status_json(state: ClusterState, pod: AppRecord) -> dict[str, Any]:
    """``PodStatus``: the spec, STABLE or DEGRADED, and every instance."""
    tasks = sorted(state.app_tasks(pod.id), key=lambda t: (t.staged_at, t.id))
    instances = [instance_json(pod.id, t) for t in tasks]
    stable = sum(1 for i in instances if i["status"] == "STABLE")
    status = "STABLE" if stable >= pod.instances else "DEGRADED"
    since = format_timestamp(moment(pod.version))
    doc: dict[str, Any] = {
        "id": pod.id,
        "spec": pod_json(pod),
        "status": status,
        "statusSince": since,
        "instances": instances,
        "lastUpdated": since,
        "lastChanged": since,
    }
    if status == "DEGRADED":
        doc["message"] = f"{stable} of {pod.instances} instances are stable"
    history = _termination(state, pod)
    if history:
        doc["terminationHistory"] = history
    return doc


def _termination(state: ClusterState, pod: AppRecord) -> list[dict[str, Any]]:
    """``TerminationHistory``: Pallet keeps the last instance that failed (the one
    ``lastTaskFailure`` shows for an app); each of its containers ended with it."""
    backoff = state.backoff.get(pod.id)
    failure = backoff.last_failure if backoff is not None else None
    if not failure or "started_at" not in failure:
        return []
    termination: dict[str, Any] = {"message": failure.get("message", "")}
    if failure.get("exit_code") is not None:
        termination["exitCode"] = failure["exit_code"]
    containers = [
        {
            "containerId": f"{failure['task_id']}.{c.name}",
            "lastKnownState": failure.get("state", ""),
            "termination": termination,
        }
        for c in pod.run.containers
    ]
    return [
        {
            "instanceID": failure["task_id"],
            "startedAt": _ts(failure["started_at"]),
            "terminatedAt": _ts(failure["timestamp"]),
            "message": failure.get("message", ""),
            "containers": containers,
        }
    ]


def killed_json(
    state: ClusterState, pod: AppRecord, tasks: Iterable[ControlTask]
) -> list[dict[str, Any]]:
    """Marathon's ``Instance`` of each instance a kill was sent to."""
    out = []
    for t in tasks:
        node = state.nodes.get(t.node_id)
        attributes = dict(node.node.attributes) if node is not None else {}
        strategy: Any = "disabled"
        if pod.run.unreachable_inactive_after_seconds is not None:
            strategy = {
                "inactiveAfterSeconds": pod.run.unreachable_inactive_after_seconds,
                "expungeAfterSeconds": pod.run.unreachable_expunge_after_seconds,
            }
        state_doc: dict[str, Any] = {
            "condition": t.state.value.removeprefix("TASK_").title(),
            "since": _ts(_since(t)),
            "goal": "Decommissioned" if t.goal is TaskGoal.KILL else "Running",
        }
        if t.started_at is not None:
            state_doc["activeSince"] = _ts(t.started_at)
        if t.healthy is not None:
            state_doc["healthy"] = t.healthy
        out.append(
            {
                "instanceId": t.id,
                "state": state_doc,
                "agentInfo": {
                    "host": t.host,
                    "agentId": t.node_id,
                    "attributes": [{"name": k, "text": v} for k, v in sorted(attributes.items())],
                },
                "runSpecVersion": format_timestamp(moment(t.version)),
                "unreachableStrategy": strategy,
            }
        )
    return out
