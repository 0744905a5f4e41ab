"""What the API asks of groups: change a group's apps together (created, updated, scaled,
stopped) as one deployment ordered by dependencies, delete a group, list its versions;
asyncio. Each change is one store transaction under the applier's lock.

A group is implicit in its apps' ids (``/shop/web`` lies in ``/shop``); a group created
through ``/v2/groups`` is also stored (``GroupRecord``: its dependencies and version), and
every change of it keeps a snapshot (``/pallet/groupversions/<id>@<version>``) that
``PUT /v2/groups/<id> {"version": ...}`` returns to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pallet.control.apps import AppService, Change
from pallet.control.bus import DeploymentChanged
from pallet.control.decision import Decision
from pallet.control.depends import (
    Cycle,
    MissingDependency,
    app_dependencies,
    groups_above,
    levels,
    under,
)
from pallet.control.deployments import RESTART, SCALE, START, STOP, make_group_deployment
from pallet.control.errors import AppLocked, GroupNotFound
from pallet.control.layout import (
    app_key,
    backoff_key,
    deployment_key,
    group_key,
    group_version_key,
    group_versions_prefix,
    version_key,
    versions_prefix,
)
from pallet.control.records import (
    AppDefinition,
    AppRecord,
    GroupRecord,
    RunSpec,
    decode,
    encode,
)
from pallet.model import ValidationError
from pallet.model.frozen import FrozenMap
from pallet.store import MAX_TXN_BYTES, MAX_TXN_OPS, Delete, DeletePrefix, Op, Put

__all__ = ["AppChange", "GroupService"]


@dataclass(frozen=True, slots=True)
class AppChange:
    """One app of a group as the change wants it: its Marathon definition and ``RunSpec``,
    and where it stood in the request (for error paths, e.g. ``/apps(2)``)."""

    app_id: str
    definition: AppDefinition
    run: RunSpec
    path: str = ""


class GroupService:
    def __init__(self, apps: AppService) -> None:
        self.apps = apps
        self.state = apps.state
        self.groups: dict[str, GroupRecord] = {}
        """Groups created through the API (loaded at start, changed only here)."""

    # ------------------------------------------------------------ reading

    def exists(self, group_id: str) -> bool:
        return (
            group_id == "/"
            or group_id in self.groups
            or any(under(group_id, a) for a in self.state.apps)
        )

    async def versions(self, group_id: str) -> list[str]:
        if not self.exists(group_id):
            raise GroupNotFound(group_id)
        kvs, _ = await self.apps.applier.store.list(group_versions_prefix(group_id))
        return [kv.key.rsplit("@", 1)[1] for kv in kvs]

    async def snapshot(self, group_id: str, version: str) -> dict[str, Any]:
        """The group as it was at ``version``: ``{"apps": {id: app}, "groups":
        {id: dependencies}}``, each app an ``AppRecord``'s JSON (before the records had
        a ``format``: its Marathon definition, count included)."""
        kv = await self.apps.applier.store.get(group_version_key(group_id, version))
        if kv is None:
            raise GroupNotFound(group_id, version)
        return decode(kv.value)

    def check_dependencies(self, app_id: str, dependencies: Sequence[str]) -> None:
        """Refuse (``ValidationError`` at ``/dependencies(i)``) an app whose dependencies
        name nothing, or close a cycle, in the cluster as it would be with it.

        An app that waits for nothing (no dependencies of its own, none in a group above
        it) can neither name nothing nor close a cycle (a cycle through it would leave it
        by one of those): it is taken without walking every app's dependencies."""
        if not dependencies and not any(
            (group := self.groups.get(g)) is not None and group.dependencies
            for g in groups_above(app_id)
        ):
            return
        apps = {a.id: a.run.dependencies for a in self.state.apps.values()}
        apps[app_id] = tuple(dependencies)
        groups = {g: tuple(r.dependencies) for g, r in self.groups.items()}
        self._levels(apps, groups, [AppChange(app_id, FrozenMap(), RunSpec(), "")])

    # ------------------------------------------------------------ changing

    async def change(
        self,
        group_id: str,
        apps: Sequence[AppChange],
        groups: Mapping[str, Sequence[str]],
        remove_missing: bool = True,
        force: bool = False,
        dry_run: bool = False,
    ) -> Change | None:
        """Make the group hold ``apps`` (and the groups ``groups``, id -> dependencies):
        new apps start, changed ones are updated, with ``remove_missing`` the group's
        other apps stop. One deployment, a step per dependency level. None when nothing
        changes. ``dry_run``: the deployment it would be, nothing written or published."""
        async with self.apps.applier.lock:
            return await self._change(
                group_id, apps, groups, remove_missing, force, dry_run=dry_run
            )

    async def delete(self, group_id: str, force: bool = False) -> Change:
        """Stop every app of the group (dependents first) and forget the group."""
        async with self.apps.applier.lock:
            if not self.exists(group_id) or (group_id == "/" and not self.state.apps):
                raise GroupNotFound(group_id)
            doomed = [g for g in self.groups if under(group_id, g) or g == group_id]
            change = await self._change(
                group_id, [], {}, True, force, forget=doomed, stop_pods=True
            )
            if change is None:  # an empty group: nothing to stop, only to forget
                raise GroupNotFound(group_id)
            return change

    async def _change(
        self,
        group_id: str,
        wanted: Sequence[AppChange],
        groups: Mapping[str, Sequence[str]],
        remove_missing: bool,
        force: bool,
        forget: Sequence[str] = (),
        dry_run: bool = False,
        stop_pods: bool = False,
    ) -> Change | None:
        svc = self.apps
        state = self.state
        for change in wanted:
            if not under(group_id, change.app_id):
                raise ValidationError(f"{change.path}/id", f"{change.app_id} is not in {group_id}")
        clash = [g for g in groups if g in state.apps] + [
            c.app_id for c in wanted if c.app_id in groups or c.app_id in self.groups
        ]
        if clash:
            raise ValidationError("/id", f"{clash[0]} is both a group and an app; rename one")
        for path in [*groups, *(c.app_id for c in wanted)]:
            parts = path.strip("/").split("/")
            above = ["/" + "/".join(parts[:i]) for i in range(1, len(parts))]
            inside = next((a for a in above if a in state.apps), None)
            if inside is not None:
                raise ValidationError(
                    "/id", f"{path} would be inside {inside}, which is an app, not a group"
                )
        now, version = svc._peek_version() if dry_run else svc._now_version()
        actions: list[tuple[str, AppRecord | None, AppRecord | None]] = []
        backoffs: list[Decision] = []
        for change in wanted:
            current = state.apps.get(change.app_id)
            if current is None:
                created = AppRecord(
                    change.app_id, version, version, version, change.definition, change.run
                )
                actions.append((START, None, created))
                continue
            scale_only = change.definition == current.definition
            if scale_only and change.run.instances == current.instances:
                continue  # unchanged: not part of the deployment
            config = current.config_version
            if not scale_only:
                config = await svc._running_config(current, change.definition) or version
                backoffs.append(svc._reset_backoff(change.app_id))
            updated = AppRecord(
                change.app_id,
                version,
                version,
                config,
                change.definition,
                change.run,
                current.stable_version,
            )
            actions.append((SCALE if scale_only else RESTART, current, updated))
        keep = {c.app_id for c in wanted}
        stops = [
            a
            for a in state.apps.values()
            if remove_missing
            and under(group_id, a.id)
            and a.id not in keep
            and (stop_pods or not a.is_pod)  # a group's apps list names no pods
        ]
        actions += [(STOP, a, None) for a in stops]
        after_groups = {g: tuple(r.dependencies) for g, r in self.groups.items() if g not in forget}
        after_groups.update({g: tuple(d) for g, d in groups.items()})
        if not actions and not groups and not forget:
            return None
        after_apps = {a.id: a.run.dependencies for a in state.apps.values()}
        for _, _, target in actions:
            if target is not None:
                after_apps[target.id] = target.run.dependencies
        for _, original, target in actions:
            if target is None and original is not None:
                del after_apps[original.id]
        level = self._levels(after_apps, after_groups, wanted)
        before = self._levels(
            {a.id: a.run.dependencies for a in state.apps.values()},
            {g: tuple(r.dependencies) for g, r in self.groups.items()},
            (),
        )
        held = [
            d for d in state.deployments.values() if any(a[1] in d.targets for a in _ids(actions))
        ]
        if held and not force:
            raise AppLocked(held[0].app_id, [d.id for d in held])
        steps = _steps(actions, level, before)
        deployment = (
            make_group_deployment(svc.new_id(), group_id, steps, now, version) if actions else None
        )
        ops: list[Op] = []
        if deployment is not None:
            ops.append(Put(deployment_key(deployment.id), encode(deployment.to_json())))
            ops += [Delete(deployment_key(d.id)) for d in held]
        for _, original, target in actions:
            if target is not None:
                doc = encode(target.to_json())
                ops += [
                    Put(app_key(target.id), doc),
                    Put(version_key(target.id, target.version), doc),
                ]
            elif original is not None:
                ops += [
                    Delete(app_key(original.id)),
                    DeletePrefix(versions_prefix(original.id)),
                    Delete(backoff_key(original.id)),
                ]
        for reset in backoffs:
            ops += reset.ops
        records = {g: GroupRecord(g, tuple(d), version) for g, d in groups.items()}
        ops += [Put(group_key(g), encode(r.to_json())) for g, r in records.items()]
        ops += [Delete(group_key(g)) for g in forget]
        snapshot = self._snapshot(group_id, actions, after_groups, version)
        if group_id not in forget:
            ops.append(Put(group_version_key(group_id, version), encode(snapshot)))
        if not Decision(ops=tuple(ops)).fits():
            raise ValidationError(
                "/apps",
                f"changes {len(actions)} apps at once, more than one store transaction holds "
                f"({MAX_TXN_OPS} operations, {MAX_TXN_BYTES} bytes); change the group in parts",
            )
        if dry_run:
            first = next((t for _, _, t in actions if t is not None), None)
            return None if deployment is None else Change(first, deployment)

        def regroup() -> None:
            self.groups.update(records)
            for g in forget:
                self.groups.pop(g, None)

        events: list[object] = [
            DeploymentChanged("failed", d, now, f"superseded by {version}") for d in held
        ]
        if deployment is not None:
            events.append(DeploymentChanged("info", deployment, now))
        await svc.applier.apply(
            Decision(
                ops=tuple(ops),
                apps=tuple(t for _, _, t in actions if t is not None),
                dropped_apps=tuple(o.id for _, o, t in actions if t is None and o is not None),
                backoff=tuple(b for reset in backoffs for b in reset.backoff),
                dropped_deployments=tuple(d.id for d in held),
                deployments=() if deployment is None else (deployment,),
                after=(regroup,),
                events=tuple(events),
                touch=True,
                wake=deployment is not None,
            )
        )
        if deployment is None:
            return None
        svc.applier.kick()
        first = next((t for _, _, t in actions if t is not None), None)
        return Change(first, deployment)

    def _levels(
        self,
        apps: Mapping[str, Sequence[str]],
        groups: Mapping[str, Sequence[str]],
        wanted: Sequence[AppChange],
    ) -> dict[str, int]:
        paths = {c.app_id: c.path for c in wanted}
        try:
            return levels(app_dependencies(apps, groups))
        except MissingDependency as e:
            where = paths.get(e.owner)
            path = f"{where}/dependencies({e.index})" if where is not None else "/dependencies"
            raise ValidationError(path, str(e)) from None
        except Cycle as e:
            raise ValidationError("/dependencies", str(e)) from None

    def _snapshot(
        self,
        group_id: str,
        actions: Sequence[tuple[str, AppRecord | None, AppRecord | None]],
        groups: Mapping[str, Sequence[str]],
        version: str,
    ) -> dict[str, Any]:
        apps = {
            a.id: a.to_json()
            for a in self.state.apps.values()
            if under(group_id, a.id) and not a.is_pod
        }
        for _, original, target in actions:
            if target is not None:
                apps[target.id] = target.to_json()
            elif original is not None:
                apps.pop(original.id, None)
        return {
            "id": group_id,
            "version": version,
            "apps": apps,
            "groups": {
                g: list(d) for g, d in groups.items() if under(group_id, g) or g == group_id
            },
        }


def _ids(
    actions: Sequence[tuple[str, AppRecord | None, AppRecord | None]],
) -> list[tuple[str, str]]:
    out = []
    for action, original, target in actions:
        app = target or original
        assert app is not None
        out.append((action, app.id))
    return out


def _steps(
    actions: Sequence[tuple[str, AppRecord | None, AppRecord | None]],
    after: Mapping[str, int],
    before: Mapping[str, int],
) -> list[list[tuple[str, AppRecord | None, AppRecord | None]]]:
    """Stops first, dependents before what they depend on; then starts and updates,
    dependencies first (Marathon's order)."""
    stops = [a for a in actions if a[0] == STOP]
    others = [a for a in actions if a[0] != STOP]

    def app_of(a: tuple[str, AppRecord | None, AppRecord | None]) -> str:
        app = a[2] or a[1]
        assert app is not None
        return app.id

    out: list[list[tuple[str, AppRecord | None, AppRecord | None]]] = []
    for lv in sorted({before.get(app_of(a), 0) for a in stops}, reverse=True):
        out.append([a for a in stops if before.get(app_of(a), 0) == lv])
    for lv in sorted({after.get(app_of(a), 0) for a in others}):
        out.append([a for a in others if after.get(app_of(a), 0) == lv])
    return out


async def revert(groups: GroupService, d: Any, force: bool = True) -> Change | None:
    """Roll a group's deployment back: its apps as they were before it (those it created
    stop, those it stopped start again), as one new deployment ordered the same way."""
    assert d.group is not None
    state = groups.state
    wanted = []
    for app in state.apps.values():
        if under(d.group, app.id) and app.id not in d.targets:
            wanted.append(AppChange(app.id, app.definition, app.run))
    for app_id, original in d.originals.items():
        if original is not None:
            record = AppRecord.from_json(original)
            wanted.append(AppChange(app_id, record.definition, record.run))
    return await groups.change(d.group, wanted, {}, remove_missing=True, force=force)
