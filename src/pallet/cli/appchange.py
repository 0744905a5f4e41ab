"""Changing apps from files: what a file asks for, how it differs from what runs, and the
one request that makes it so; pure but for ``plan_changes`` and ``send_change``.

    file ─▶ app_definitions (an app, or a Marathon group of apps with relative ids)
         ─▶ plan_changes: GET each app ─▶ Change(create | update | unchanged, differences)
         ─▶ send_change: POST (create) or PUT of the differing fields (update)

``pallet app apply``, ``edit`` and the commands that show a change before making it all go
through here, so they agree on what "changed" means. A file says what it cares about:
fields it leaves out keep their value (Marathon's ``PUT``), a port of 0 matches whatever
port was picked, and numbers compare by value. Applying the same file twice sends
nothing the second time.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pallet.client import App, Client, DeploymentRef, NotFound
from pallet.errors import PalletError

__all__ = [
    "STATUS_FIELDS",
    "Action",
    "AppFileShapeError",
    "Change",
    "Difference",
    "Sent",
    "app_definitions",
    "definition_of",
    "differences",
    "plan_changes",
    "send_change",
]

STATUS_FIELDS = frozenset(
    {
        "version",
        "versionInfo",
        "tasks",
        "deployments",
        "lastTaskFailure",
        "tasksStaged",
        "tasksRunning",
        "tasksHealthy",
        "tasksUnhealthy",
        "taskStats",
        "readinessCheckResults",
    }
)
"""Fields of an app's JSON that report its state, not what was asked for."""

_GROUP_FIELDS = frozenset({"id", "apps", "groups"})
# Fields that pick "any": a port of 0 is assigned by the master.
_ANY_WHEN_ZERO = frozenset({"port", "hostPort", "servicePort", "containerPort"})
_MISSING: Any = object()


class Action(enum.StrEnum):
    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class Difference:
    """One field the file sets to another value than the app has (``before`` is None
    when the app lacks the field)."""

    path: str
    before: Any
    after: Any

    def describe(self) -> str:
        before = "(unset)" if self.before is _MISSING else _short(self.before)
        return f"{self.path}: {before} -> {_short(self.after)}"


@dataclass(frozen=True, slots=True)
class Change:
    """What applying ``definition`` does to the app ``app_id``."""

    app_id: str
    action: Action
    definition: Mapping[str, Any]
    differences: tuple[Difference, ...] = ()
    current: App | None = None

    def fields(self) -> dict[str, Any]:
        """The top-level fields to send: all of them to create, the differing ones to
        update (so that nothing the file leaves alone is touched)."""
        if self.action is Action.CREATE:
            return dict(self.definition)
        names = {d.path.split("/")[1] for d in self.differences}
        return {k: v for k, v in self.definition.items() if k in names}

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.app_id,
            "action": self.action.value,
            "changes": [
                {
                    "path": d.path,
                    "before": None if d.before is _MISSING else d.before,
                    "after": d.after,
                }
                for d in self.differences
            ],
        }


class AppFileShapeError(PalletError):
    """A file that is neither one app nor a group of apps."""


def _short(value: Any, width: int = 60) -> str:
    import json

    text = json.dumps(value, separators=(", ", ": "))
    return text if len(text) <= width else text[: width - 1] + "…"


def _absolute(app_id: str, parent: str, where: str) -> str:
    """Marathon's id resolution: ``web`` in group ``/shop`` is ``/shop/web``."""
    if not isinstance(app_id, str) or not app_id.strip("/"):
        raise AppFileShapeError(f"{where}: needs an id, such as /web")
    if ".." in app_id.split("/"):
        raise AppFileShapeError(f"{where}: id {app_id!r} uses '..'; write the id in full")
    joined = app_id if app_id.startswith("/") else f"{parent.rstrip('/')}/{app_id}"
    return "/" + "/".join(p for p in joined.split("/") if p)


def app_definitions(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The apps a file defines, ids made absolute: the file itself when it is one app,
    every app of a Marathon group (``{"id", "apps", "groups"}``) otherwise."""
    if "apps" not in doc and "groups" not in doc:
        app = dict(doc)
        app["id"] = _absolute(doc.get("id", ""), "/", "the app")
        return [app]
    return _group_apps(doc, "/", "the group")


def _group_apps(group: Mapping[str, Any], parent: str, where: str) -> list[dict[str, Any]]:
    group_id = _absolute(group.get("id", ""), parent, where)
    unknown = sorted(set(group) - _GROUP_FIELDS)
    if unknown:
        raise AppFileShapeError(
            f"group {group_id}: {', '.join(unknown)} not supported in a group; "
            "a group file holds id, apps and groups"
        )
    apps = group.get("apps") or []
    groups = group.get("groups") or []
    if not isinstance(apps, list) or not isinstance(groups, list):
        raise AppFileShapeError(f"group {group_id}: apps and groups must be lists")
    out: list[dict[str, Any]] = []
    for i, app in enumerate(apps):
        if not isinstance(app, Mapping):
            raise AppFileShapeError(f"group {group_id}: apps[{i}] is not an app object")
        resolved = dict(app)
        resolved["id"] = _absolute(app.get("id", ""), group_id, f"group {group_id} apps[{i}]")
        out.append(resolved)
    for i, sub in enumerate(groups):
        if not isinstance(sub, Mapping):
            raise AppFileShapeError(f"group {group_id}: groups[{i}] is not a group object")
        out += _group_apps(sub, group_id, f"group {group_id} groups[{i}]")
    seen: set[str] = set()
    for app in out:
        if app["id"] in seen:
            raise AppFileShapeError(f"group {group_id}: app {app['id']} is defined twice")
        seen.add(app["id"])
    if not out:
        raise AppFileShapeError(f"group {group_id}: holds no app")
    return out


def definition_of(app: App) -> dict[str, Any]:
    """What was asked for of ``app``: its JSON less the fields that report its state."""
    return {k: v for k, v in app.raw.items() if k not in STATUS_FIELDS}


def _same_scalar(desired: Any, current: Any, name: str) -> bool:
    if isinstance(desired, bool) or isinstance(current, bool):
        return desired is current
    if isinstance(desired, int | float) and isinstance(current, int | float):
        if name in _ANY_WHEN_ZERO and desired == 0:
            return True
        return math.isclose(desired, current, rel_tol=1e-9, abs_tol=1e-12)
    return bool(desired == current)


def differences(desired: Any, current: Any, path: str = "") -> list[Difference]:
    """Where ``desired`` (what a file says) differs from ``current`` (the app's JSON).
    Objects compare only on the keys ``desired`` has; lists element by element."""
    if isinstance(desired, Mapping) and isinstance(current, Mapping):
        out: list[Difference] = []
        for key, value in desired.items():
            out += differences(value, current.get(key, _MISSING), f"{path}/{key}")
        return out
    if (
        isinstance(desired, Sequence)
        and not isinstance(desired, str)
        and isinstance(current, Sequence)
        and not isinstance(current, str)
        and len(desired) == len(current)
    ):
        out = []
        for i, (d, c) in enumerate(zip(desired, current, strict=True)):
            out += differences(d, c, f"{path}/{i}")
        return out
    name = path.rsplit("/", 1)[-1]
    if current is not _MISSING and _same_scalar(desired, current, name):
        return []
    if current is _MISSING and desired in (None, [], {}):
        return []  # asking for nothing where the app has nothing
    return [Difference(path, current, desired)]


def plan_changes(client: Client, definitions: Sequence[Mapping[str, Any]]) -> list[Change]:
    """What applying each definition would do, from the apps as they are now."""
    out = []
    for definition in definitions:
        app_id = str(definition["id"])
        try:
            current = client.get_app(app_id, ())
        except NotFound:
            out.append(Change(app_id, Action.CREATE, definition))
            continue
        wanted = {k: v for k, v in definition.items() if k != "id"}
        found = tuple(differences(wanted, current.raw))
        action = Action.UPDATE if found else Action.UNCHANGED
        out.append(Change(app_id, action, definition, found, current))
    return out


@dataclass(frozen=True, slots=True)
class Sent:
    """What the master said to one change: the deployment it started, if any."""

    change: Change
    deployment_id: str | None = None
    version: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


def send_change(client: Client, change: Change, force: bool = False) -> Sent:
    """Make ``change``: POST to create, PUT of the differing fields to update, nothing
    when unchanged."""
    if change.action is Action.CREATE:
        created = client.create_app(change.fields())
        deployment = created.deployment_ids[0] if created.deployment_ids else None
        return Sent(change, deployment, created.version, created.raw)
    if change.action is Action.UPDATE:
        ref: DeploymentRef = client.update_app(change.app_id, change.fields(), force=force)
        return Sent(change, ref.deployment_id, ref.version, ref.raw)
    return Sent(change)
