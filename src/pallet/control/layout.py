"""Where the master's records live in the store: one JSON record per key; pure.

    /pallet/apps/<app id>                 current app version (``AppRecord``)
    /pallet/versions/<app id>@<version>   every app version, for /v2/apps/{id}/versions
    /pallet/tasks/<task id>               a live task (``TaskRecord``); deleted when it ends
    /pallet/nodes/<node id>               a registered node (``NodeRecord``)
    /pallet/deployments/<deployment id>   a running deployment (``DeploymentRecord``)
    /pallet/backoff/<app id>              an app's launch delay and last failure
    /pallet/groups/<group id>             a group created through /v2/groups (``GroupRecord``)
    /pallet/groupversions/<id>@<version>  the group as it was after each change
    /pallet/reservations/<app id>@<slot>  a resident app's instance slot (``control.reservations``)
    /pallet/maintenance                   the maintenance schedule and DOWN machines (``Maintenance``)

App ids start with ``/`` (``/prod/web``), so keys read ``/pallet/apps//prod/web``. ``@``
cannot appear in an app id, so one app's versions never share a prefix with another's.
"""

from __future__ import annotations

__all__ = [
    "APPS",
    "BACKOFF",
    "DEPLOYMENTS",
    "GROUPS",
    "GROUP_VERSIONS",
    "MAINTENANCE",
    "NODES",
    "ROOT",
    "TASKS",
    "VERSIONS",
    "app_key",
    "backoff_key",
    "deployment_key",
    "group_key",
    "group_version_key",
    "group_versions_prefix",
    "node_key",
    "task_key",
    "version_key",
    "versions_prefix",
]

ROOT = "/pallet/"
APPS = ROOT + "apps/"
VERSIONS = ROOT + "versions/"
TASKS = ROOT + "tasks/"
NODES = ROOT + "nodes/"
DEPLOYMENTS = ROOT + "deployments/"
BACKOFF = ROOT + "backoff/"
GROUPS = ROOT + "groups/"
GROUP_VERSIONS = ROOT + "groupversions/"
MAINTENANCE = ROOT + "maintenance"


def app_key(app_id: str) -> str:
    return APPS + app_id


def versions_prefix(app_id: str) -> str:
    return f"{VERSIONS}{app_id}@"


def version_key(app_id: str, version: str) -> str:
    return versions_prefix(app_id) + version


def task_key(task_id: str) -> str:
    return TASKS + task_id


def node_key(node_id: str) -> str:
    return NODES + node_id


def deployment_key(deployment_id: str) -> str:
    return DEPLOYMENTS + deployment_id


def backoff_key(app_id: str) -> str:
    return BACKOFF + app_id


def group_key(group_id: str) -> str:
    return GROUPS + group_id


def group_versions_prefix(group_id: str) -> str:
    return f"{GROUP_VERSIONS}{group_id}@"


def group_version_key(group_id: str, version: str) -> str:
    return group_versions_prefix(group_id) + version
