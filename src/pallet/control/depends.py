"""Dependencies between apps and groups: what each app waits for, cycles, and the order
in which a change starts and stops apps; pure.

Marathon's model: an app's ``dependencies`` and a group's ``dependencies`` name apps or
groups (a group stands for every app under it); an app also inherits the dependencies
of every group above it. A change starts apps dependencies first, one level at a time,
and stops them dependents first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

__all__ = ["Cycle", "MissingDependency", "app_dependencies", "groups_above", "levels", "under"]


class MissingDependency(ValueError):
    def __init__(self, owner: str, index: int, name: str) -> None:
        super().__init__(f"{owner} depends on {name}, which is neither an app nor a group")
        self.owner, self.index, self.name = owner, index, name


class Cycle(ValueError):
    def __init__(self, path: Sequence[str]) -> None:
        super().__init__("dependency cycle: " + " -> ".join(path))
        self.path = tuple(path)


def under(group: str, app_id: str) -> bool:
    """Whether ``app_id`` lies in ``group`` (or below it)."""
    return group == "/" or app_id.startswith(group.rstrip("/") + "/")


def groups_above(app_id: str) -> list[str]:
    """The groups above ``app_id``, nearest first (the root ``/`` not among them)."""
    parts = app_id.strip("/").split("/")[:-1]
    return ["/" + "/".join(parts[:i]) for i in range(len(parts), 0, -1)]


def app_dependencies(
    apps: Mapping[str, Sequence[str]],
    groups: Mapping[str, Sequence[str]],
) -> dict[str, frozenset[str]]:
    """The apps each app waits for: its own dependencies and those of the groups above
    it, a group read as every app under it. ``apps``: app id -> its dependencies;
    ``groups``: group id -> its dependencies. Raises ``MissingDependency`` naming the
    first that names nothing (an app id or a group holding an app, or an explicit group)."""

    def expand(owner: str, names: Sequence[str]) -> set[str]:
        out: set[str] = set()
        for i, name in enumerate(names):
            if name in apps:
                out.add(name)
                continue
            inside = {a for a in apps if under(name, a)}
            if not inside and name not in groups:
                raise MissingDependency(owner, i, name)
            out |= inside
        return out

    result = {}
    for app_id, own in apps.items():
        deps = expand(app_id, own)
        for group in groups_above(app_id):
            deps |= expand(group, groups.get(group, ()))
        deps.discard(app_id)
        result[app_id] = frozenset(deps)
    return result


def levels(deps: Mapping[str, Iterable[str]]) -> dict[str, int]:
    """Each app's level: 0 without dependencies, else one more than its deepest
    dependency's. Raises ``Cycle`` with the apps around it."""
    level: dict[str, int] = {}
    visiting: list[str] = []

    def visit(app: str) -> int:
        if app in level:
            return level[app]
        if app in visiting:
            raise Cycle([*visiting[visiting.index(app) :], app])
        visiting.append(app)
        depth = 0
        for dep in sorted(deps.get(app, ())):
            depth = max(depth, visit(dep) + 1)
        visiting.pop()
        level[app] = depth
        return depth

    for app in sorted(deps):
        visit(app)
    return level
