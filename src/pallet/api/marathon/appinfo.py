"""Apps as ``/v2/apps`` returns them, and updates applied to stored apps; pure.

``app_json`` renders an ``AppSpec`` with Marathon's exact field set (``AppConversion``
``appWriter``: deprecated ``ports``, ``uris``, ``ipAddress`` never written; empty
``args``, ``constraints``, ``env`` ... left out; ``labels``, ``networks``,
``portDefinitions`` always there). The embeds of ``GET /v2/apps`` (counts,
deployments, tasks, last task failure) are optional arguments. Versions are passed
in; nothing here reads a clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pallet.api.marathon.app import AppDefinition, AppUpdate
from pallet.api.marathon.deployment import ReadinessCheckResult
from pallet.api.marathon.errors import Violation, not_valid
from pallet.api.marathon.jsontypes import MarathonModel, Timestamp
from pallet.api.marathon.normalize import normalize_app, translate_networks
from pallet.api.marathon.parts import PortDefinition
from pallet.api.marathon.specbuild import spec_definition
from pallet.api.marathon.task import MarathonTask, TaskFailure, TaskView, task_model
from pallet.model.app import AppSpec

__all__ = [
    "AppInfo",
    "Identifiable",
    "TaskCounts",
    "VersionInfo",
    "app_json",
    "apply_update",
    "rollback_version",
]


class VersionInfo(MarathonModel):
    last_scaling_at: Timestamp
    last_config_change_at: Timestamp


class Identifiable(MarathonModel):
    id: str


@dataclass(frozen=True, slots=True)
class TaskCounts:
    """``tasksStaged`` / ``tasksRunning`` / ``tasksHealthy`` / ``tasksUnhealthy``."""

    staged: int = 0
    running: int = 0
    healthy: int = 0
    unhealthy: int = 0


class AppInfo(AppDefinition):
    """An app with the read-only parts ``GET /v2/apps`` adds (``raml.AppInfo``)."""

    version_info: VersionInfo | None = None
    tasks_staged: int | None = None
    tasks_running: int | None = None
    tasks_healthy: int | None = None
    tasks_unhealthy: int | None = None
    deployments: list[Identifiable] | None = None
    readiness_check_results: list[ReadinessCheckResult] | None = None
    tasks: list[MarathonTask] | None = None
    last_task_failure: TaskFailure | None = None


def app_json(
    spec: AppSpec,
    version: datetime,
    version_info: tuple[datetime, datetime] | None = None,
    counts: TaskCounts | None = None,
    deployments: Sequence[str] | None = None,
    tasks: Iterable[TaskView] | None = None,
    last_task_failure: dict[str, Any] | None = None,
    readiness: Sequence[ReadinessCheckResult] | None = None,
) -> dict[str, Any]:
    """The Marathon JSON of ``spec`` at ``version``.

    ``version_info`` is ``(lastScalingAt, lastConfigChangeAt)``; Marathon leaves it out
    for an app just created. ``counts``, ``deployments`` (ids), ``tasks`` and
    ``last_task_failure`` (from ``task.task_failure_json``) and ``readiness`` are the
    embeds; ``None`` leaves a field out, as Marathon does when it was not asked for.
    """
    definition = spec_definition(spec)
    fields: dict[str, Any] = {
        name: getattr(definition, name) for name in definition.model_fields_set
    }
    fields["version"] = version
    if version_info is not None:
        fields["version_info"] = VersionInfo(
            last_scaling_at=version_info[0], last_config_change_at=version_info[1]
        )
    if counts is not None:
        fields |= {
            "tasks_staged": counts.staged,
            "tasks_running": counts.running,
            "tasks_healthy": counts.healthy,
            "tasks_unhealthy": counts.unhealthy,
        }
    if deployments is not None:
        fields["deployments"] = [Identifiable(id=d) for d in deployments]
    if tasks is not None:
        fields["tasks"] = [task_model(t) for t in tasks]
    if last_task_failure is not None:
        fields["last_task_failure"] = TaskFailure.model_validate(last_task_failure)
    if readiness is not None:
        fields["readiness_check_results"] = list(readiness)
    return AppInfo.model_construct(_fields_set=set(fields), **fields).to_json()


def rollback_version(update: AppUpdate) -> datetime | None:
    """The version an update asks to go back to, or None for an ordinary update.

    Marathon allows ``version`` only with ``id`` (a rollback); with any other field the
    update is invalid (422, ``AppValidation.validateAppUpdateVersion``).
    """
    if update.version is None:
        return None
    if update.given() - {"version", "id"}:
        message = "The 'version' field may only be combined with the 'id' field."
        raise not_valid([Violation("/", message)])
    return update.version


def apply_update(current: AppSpec, update: AppUpdate, default_role: str = "*") -> AppSpec:
    """``current`` changed by the fields ``update`` sets, then validated and normalised
    as a whole (``AppConversion.appUpdateRamlReader``). The id never changes.

    Deprecated fields of the update are translated first, so an update may use them
    even though the stored app is canonical: ``ports`` replace the port definitions,
    ``uris`` the fetch list, ``ipAddress`` / ``container.docker.network`` the networks.
    """
    rollback_version(update)
    given = update.given() - {"id", "version"}
    changes: dict[str, Any] = {name: getattr(update, name) for name in given}
    if "ports" in given and "port_definitions" not in given:
        changes["port_definitions"] = [PortDefinition(port=p) for p in update.ports or []]
    if {"ip_address", "container"} & given and (
        update.ip_address is not None
        or (
            update.container is not None
            and update.container.docker is not None
            and update.container.docker.network is not None
        )
    ):
        changes["networks"] = translate_networks(update)
        changes["ip_address"] = None
        if update.container is not None and update.container.docker is not None:
            docker = update.container.docker.model_copy(update={"network": None})
            changes["container"] = update.container.model_copy(update={"docker": docker})
    if "uris" in given and "fetch" not in given:
        changes["fetch"] = None
    changes.pop("ports", None)
    base = spec_definition(current)
    fields = {name: getattr(base, name) for name in base.model_fields_set} | changes
    merged = AppDefinition.model_construct(_fields_set=set(fields), **fields)
    return normalize_app(merged, default_role=default_role)
