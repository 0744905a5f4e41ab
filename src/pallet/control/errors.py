"""Errors the master's operations raise for the API to translate; pure.

PalletError
 └── ControlError
      ├── AppExists        create of an id that is taken
      ├── AppNotFound      no app with that id
      ├── AppLocked        a deployment holds the app and ``force`` was not given
      ├── TaskNotFound     no live task with that id
      ├── DeploymentNotFound
      ├── GroupNotFound    no group with that id (or no such version of it)
      ├── NotPromotable    a promote of a deployment that holds no canaries
      ├── NodeNotFound     an agent speaks for a node the master does not know
      └── NodeBusy         a node cannot be removed in its state (ACTIVE, tasks left)
"""

from __future__ import annotations

from collections.abc import Sequence

from pallet.model import PalletError

__all__ = [
    "AppExists",
    "AppLocked",
    "AppNotFound",
    "ControlError",
    "DeploymentNotFound",
    "GroupNotFound",
    "NodeBusy",
    "NodeNotFound",
    "NotLeader",
    "NotPromotable",
    "TaskNotFound",
]


class ControlError(PalletError):
    """Base of the errors of the master's operations."""


class AppExists(ControlError):
    def __init__(self, app_id: str) -> None:
        super().__init__(f"an app with id {app_id} already exists")
        self.app_id = app_id


class AppNotFound(ControlError):
    def __init__(self, app_id: str) -> None:
        super().__init__(f"app {app_id} does not exist")
        self.app_id = app_id


class AppLocked(ControlError):
    def __init__(self, app_id: str, deployment_ids: Sequence[str]) -> None:
        super().__init__(f"app {app_id} is locked by deployments {', '.join(deployment_ids)}")
        self.app_id = app_id
        self.deployment_ids = tuple(deployment_ids)


class TaskNotFound(ControlError):
    def __init__(self, task_id: str) -> None:
        super().__init__(f"task {task_id} does not exist")
        self.task_id = task_id


class DeploymentNotFound(ControlError):
    def __init__(self, deployment_id: str) -> None:
        super().__init__(f"deployment {deployment_id} does not exist")
        self.deployment_id = deployment_id


class GroupNotFound(ControlError):
    def __init__(self, group_id: str, version: str | None = None) -> None:
        at = f" at version {version}" if version else ""
        super().__init__(f"group {group_id}{at} does not exist")
        self.group_id = group_id
        self.version = version


class NotPromotable(ControlError):
    def __init__(self, deployment_id: str) -> None:
        super().__init__(
            f"deployment {deployment_id} holds no canaries to promote (none, or promoted already)"
        )
        self.deployment_id = deployment_id


class NodeNotFound(ControlError):
    def __init__(self, node_id: str) -> None:
        super().__init__(f"node {node_id} is not registered; register it first")
        self.node_id = node_id


class NodeBusy(ControlError):
    """A node that may not be removed as it is: it is ACTIVE, or still runs tasks."""

    def __init__(self, node_id: str, why: str) -> None:
        super().__init__(f"node {node_id} {why}")
        self.node_id = node_id


class NotLeader(ControlError):
    def __init__(self) -> None:
        super().__init__("this master is no longer the leader; ask the leader (GET /v2/leader)")
