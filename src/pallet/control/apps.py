"""What the API asks of apps: create, update (scale or change), restart, delete, kill tasks,
cancel deployments; asyncio. Each change is one store transaction holding the app, its
version and its deployment, taken under the applier's lock."""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from pallet.control.applier import Applier
from pallet.control.bus import DeploymentChanged, EventBus
from pallet.control.decision import Decision
from pallet.control.deployments import RESTART, SCALE, START, STOP, iso, make_deployment
from pallet.control.errors import (
    AppExists,
    AppLocked,
    AppNotFound,
    DeploymentNotFound,
    NotPromotable,
    TaskNotFound,
)
from pallet.control.layout import (
    app_key,
    backoff_key,
    deployment_key,
    version_key,
    versions_prefix,
)
from pallet.control.preview import Preview, preview
from pallet.control.records import (
    AppDefinition,
    AppRecord,
    BackoffRecord,
    DeploymentRecord,
    RunSpec,
    TaskGoal,
    TaskRecord,
    decode,
    encode,
)
from pallet.control.scheduler import task_id_for
from pallet.control.state import ClusterState
from pallet.core import Policy, make_policy
from pallet.store import Compare, Delete, DeletePrefix, Op, Put

__all__ = ["AppService", "Change"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Change:
    """The result of a change that started a deployment."""

    app: AppRecord | None
    deployment: DeploymentRecord


class AppService:
    def __init__(
        self,
        applier: Applier,
        state: ClusterState,
        bus: EventBus,
        clock: Callable[[], float],
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        policy: Policy | None = None,
    ) -> None:
        self.policy = policy if policy is not None else make_policy("pallet")
        self.applier = applier
        self.state = state
        self.bus = bus
        self.clock = clock
        self.new_id = new_id
        self._last_version = 0.0
        self.on_group_rollback: Callable[[DeploymentRecord], Awaitable[Change | None]] | None = None
        """Rolls back a group's deployment (``groups.revert``; set by ``Control``)."""

    def _now_version(self) -> tuple[float, str]:
        """The time now and a version text no earlier change has (millisecond steps)."""
        now = max(self.clock(), self._last_version + 0.001)
        self._last_version = now
        return now, iso(now)

    def _peek_version(self) -> tuple[float, str]:
        """What ``_now_version`` would answer, without taking it (for a dry run)."""
        now = max(self.clock(), self._last_version + 0.001)
        return now, iso(now)

    def _locks(self, app_id: str, force: bool) -> list[DeploymentRecord]:
        held = self.state.deployments.of_app(app_id)
        if held and not force:
            raise AppLocked(app_id, [d.id for d in held])
        return held

    async def _deploy(
        self,
        action: str,
        original: AppRecord | None,
        target: AppRecord | None,
        superseded: Sequence[DeploymentRecord],
        more: Decision | None = None,
        compares: Sequence[Compare] = (),
        now: float = 0.0,
        version: str = "",
        canaries: bool = True,
        pipelined: bool = False,
    ) -> Change:
        """The app change and its deployment (and ``more``), as one decision applied whole.
        ``pipelined`` (``Applier.apply``): the caller does nothing after this under the
        lock that depends on what it read before."""
        deployment = make_deployment(
            self.new_id(), action, original, target, now, version, canaries
        )
        ops: list[Op] = [Put(deployment_key(deployment.id), encode(deployment.to_json()))]
        ops += [Delete(deployment_key(d.id)) for d in superseded]
        if target is not None:
            # The deployment holds the target's JSON already: encoded once for both keys
            # (rendering and encoding an app was a tenth of a write's CPU, bench api --mixed).
            body = encode(deployment.targets[target.id] or target.to_json())
            ops.append(Put(app_key(target.id), body))
            ops.append(Put(version_key(target.id, target.version), body))
        superseded_by = "superseded by " + deployment.id
        decision = Decision(
            compares=tuple(compares),
            ops=tuple(ops),
            apps=() if target is None else (target,),
            deployments=(deployment,),
            dropped_deployments=tuple(d.id for d in superseded),
            events=(
                *(DeploymentChanged("failed", d, now, superseded_by) for d in superseded),
                DeploymentChanged("info", deployment, now),
            ),
            touch=True,
        )
        result = await self.applier.apply(
            decision if more is None else decision.then(more), pipelined=pipelined
        )
        if not result.succeeded:
            assert target is not None
            raise AppExists(target.id)
        self.applier.kick()
        return Change(target, deployment)

    # ------------------------------------------------------------ apps

    async def create(self, app_id: str, definition: AppDefinition, run: RunSpec) -> Change:
        async with self.applier.lock:
            if app_id in self.state.apps:
                raise AppExists(app_id)
            now, version = self._now_version()
            app = AppRecord(app_id, version, version, version, definition, run)
            return await self._deploy(
                START,
                None,
                app,
                (),
                compares=[Compare.absent(app_key(app_id))],
                now=now,
                version=version,
                pipelined=True,
            )

    async def update(
        self,
        app_id: str,
        definition: AppDefinition,
        run: RunSpec,
        force: bool = False,
        rollback: bool = False,
    ) -> Change:
        """A new version of an existing app; only the instance count changed is a scale
        (tasks stay), anything else replaces the tasks and resets the launch delay. A
        ``rollback`` goes back without canaries."""
        async with self.applier.lock:
            return await self._update_locked(
                app_id, definition, run, force, rollback, pipelined=True
            )

    async def _update_locked(
        self,
        app_id: str,
        definition: AppDefinition,
        run: RunSpec,
        force: bool,
        rollback: bool = False,
        pipelined: bool = False,
    ) -> Change:
        current = self.state.apps.get(app_id)
        if current is None:
            raise AppNotFound(app_id)
        held = self._locks(app_id, force)
        now, version = self._now_version()
        scale_only = definition == current.definition
        config_version = current.config_version
        if not scale_only:
            config_version = await self._running_config(current, definition) or version
        app = AppRecord(
            app_id, version, version, config_version, definition, run, current.stable_version
        )
        return await self._deploy(
            SCALE if scale_only else RESTART,
            current,
            app,
            held,
            None if scale_only else self._reset_backoff(app_id),
            now=now,
            version=version,
            canaries=not rollback,
            pipelined=pipelined,
        )

    async def _running_config(self, app: AppRecord, definition: AppDefinition) -> str | None:
        """The config version of the app's live tasks whose definition is ``definition``
        (instances aside), if any: going back to it (a rollback, or undoing a change)
        keeps those tasks instead of replacing them with identical ones."""
        seen: dict[str, str] = {}
        for task in self.state.app_tasks(app.id):
            if task.config_version != app.config_version and task.live:
                seen.setdefault(task.config_version, task.version)
        for config_version, version in seen.items():
            kv = await self.applier.store.get(version_key(app.id, version))
            if kv is not None:
                stored = AppRecord.from_json(decode(kv.value))
                if stored.definition == definition:
                    return config_version
        return None

    async def preview(
        self,
        app_id: str,
        definition: AppDefinition,
        run: RunSpec,
        create: bool,
        force: bool = False,
    ) -> Preview:
        """What ``create`` (or else ``update``) would do, computed on a copy of the
        cluster; nothing is written, published or learned. Raises as the change would."""
        current = self.state.apps.get(app_id)
        now = self.clock()
        version = iso(max(now, self._last_version + 0.001))
        if create or current is None:
            if current is not None:
                raise AppExists(app_id)
            action, config_version = START, version
        else:
            self._locks(app_id, force)
            scale_only = definition == current.definition
            action, config_version = SCALE, current.config_version
            if not scale_only:
                action = RESTART
                config_version = await self._running_config(current, definition) or version
        target = AppRecord(
            app_id,
            version,
            version,
            config_version,
            definition,
            run,
            current.stable_version if current is not None else None,
        )
        ids = (task_id_for(app_id, f"dry-run-{i}") for i in range(1 << 62))
        rng = np.random.default_rng(int(now * 1000) & 0xFFFFFFFF)
        return preview(self.state, action, current, target, self.policy.twin(), rng, now, ids)

    def _reset_backoff(self, app_id: str) -> Decision:
        """The app's launch delay forgotten (its last failure kept); stored and then held
        in memory, never the other way round."""
        old = self.state.backoff.get(app_id)
        reset = BackoffRecord(0.0, 0.0, old.last_failure if old else None)
        return Decision(
            ops=(Put(backoff_key(app_id), encode(reset.to_json())),),
            backoff=((app_id, reset),),
            touch=True,
        )

    async def restart(self, app_id: str, force: bool = False) -> Change:
        """Replace every task by a rolling deployment (a new config version)."""
        async with self.applier.lock:
            current = self.state.apps.get(app_id)
            if current is None:
                raise AppNotFound(app_id)
            held = self._locks(app_id, force)
            now, version = self._now_version()
            app = replace(current, version=version, config_version=version)
            return await self._deploy(
                RESTART, current, app, held, self._reset_backoff(app_id), now=now, version=version
            )

    async def delete(self, app_id: str, force: bool = False) -> Change:
        """Remove the app now; a deployment stops its tasks."""
        async with self.applier.lock:
            current = self.state.apps.get(app_id)
            if current is None:
                raise AppNotFound(app_id)
            held = self._locks(app_id, force)
            now, version = self._now_version()
            gone = Decision(
                ops=(
                    Delete(app_key(app_id)),
                    DeletePrefix(versions_prefix(app_id)),
                    Delete(backoff_key(app_id)),
                ),
                dropped_apps=(app_id,),
            )
            change = await self._deploy(
                STOP, current, None, held, gone, now=now, version=version, pipelined=True
            )
            return Change(current, change.deployment)

    async def reset_delay(self, app_id: str) -> None:
        """Forget the app's launch delay (``DELETE /v2/queue/{id}/delay``)."""
        async with self.applier.lock:
            if app_id not in self.state.apps:
                raise AppNotFound(app_id)
            await self.applier.apply(self._reset_backoff(app_id))
        self.applier.kick()

    async def versions(self, app_id: str) -> list[AppRecord]:
        if app_id not in self.state.apps:
            raise AppNotFound(app_id)
        kvs, _ = await self.applier.store.list(versions_prefix(app_id))
        return [AppRecord.from_json(decode(kv.value)) for kv in kvs]

    # ------------------------------------------------------------ tasks

    async def kill_tasks(
        self,
        task_ids: Sequence[str],
        scale: bool = False,
        force: bool = False,
        wipe: bool = False,
    ) -> tuple[list[TaskRecord], Change | None]:
        """Kill tasks; with ``scale`` their apps shrink by as many (one deployment per
        app; the last one is returned), counting each task once and not those already
        being killed, as Marathon's ``killAndScale`` does; with ``wipe`` the instance
        slots of resident tasks are destroyed too (their replacements get new volumes).
        Unknown ids raise ``TaskNotFound``."""
        tasks = []
        for tid in task_ids:
            task = self.state.tasks.get(tid)
            if task is None:
                raise TaskNotFound(tid)
            tasks.append(task)
        change: Change | None = None
        async with self.applier.lock:  # scale and kill at once: the controller sees both or neither
            if scale:
                # Read under the lock: a task may have been told to stop meanwhile. Counting
                # a repeated id or a second kill of one task shrank its app again each time.
                current = (self.state.tasks.get(tid) for tid in dict.fromkeys(task_ids))
                newly_killed = [t for t in current if t is not None and t.goal is not TaskGoal.KILL]
                for app_id, count in Counter(t.app_id for t in newly_killed).items():
                    app = self.state.apps.get(app_id)
                    if app is None:
                        continue
                    instances = max(0, app.instances - count)
                    change = await self._update_locked(
                        app_id, app.definition, replace(app.run, instances=instances), force=True
                    )
            killed = await self.applier.kill_locked(t.id for t in tasks)
            if wipe:
                slots = [t.reservation for t in tasks if t.reservation is not None]
                await self.applier.destroy_slots_locked(slots)
        self.applier.kick()
        return killed, change

    # ------------------------------------------------------------ deployments

    async def cancel_deployment(self, deployment_id: str, force: bool = False) -> Change | None:
        """Stop a deployment. Without ``force`` Marathon rolls back: the app returns to its
        version before the deployment, by a new deployment (returned)."""
        deployment = self.state.deployments.get(deployment_id)
        if deployment is None:
            raise DeploymentNotFound(deployment_id)
        if deployment.group is not None and not force and self.on_group_rollback is not None:
            return await self.on_group_rollback(deployment)
        original_doc = deployment.originals.get(deployment.app_id)
        if not force and original_doc is not None:
            original = AppRecord.from_json(original_doc)
            if deployment.targets.get(deployment.app_id) is None:
                async with self.applier.lock:
                    now, version = self._now_version()
                    app = replace(original, version=version)
                    return await self._deploy(
                        START, None, app, [deployment], now=now, version=version
                    )
            return await self.update(
                original.id, original.definition, original.run, force=True, rollback=True
            )
        async with self.applier.lock:
            canceled = DeploymentChanged("failed", deployment, self.clock(), "canceled")
            await self.applier.apply(
                Decision(
                    ops=(Delete(deployment_key(deployment_id)),),
                    dropped_deployments=(deployment_id,),
                    events=(canceled,),
                    wake=False,
                )
            )
        return None

    async def roll_back(self, app_id: str, reason: str) -> Change | None:
        """``autoRollback``: return ``app_id`` to its last fully deployed version (its
        tasks that still run are kept); None when it has none to return to."""
        app = self.state.apps.get(app_id)
        if app is None or app.stable_version is None or app.stable_version == app.version:
            log.warning("deployment of %s failed (%s); no earlier healthy version", app_id, reason)
            return None
        kv = await self.applier.store.get(version_key(app_id, app.stable_version))
        if kv is None:
            return None
        stable = AppRecord.from_json(decode(kv.value))
        log.warning(
            "deployment of %s failed (%s); rolling back to %s", app_id, reason, stable.version
        )
        return await self.update(app_id, stable.definition, stable.run, force=True, rollback=True)

    async def promote(self, deployment_id: str) -> DeploymentRecord:
        """Let a deployment held at its canaries go on (``POST .../promote``)."""
        async with self.applier.lock:
            deployment = self.state.deployments.get(deployment_id)
            if deployment is None:
                raise DeploymentNotFound(deployment_id)
            if deployment.holding is None:
                raise NotPromotable(deployment_id)
            now = self.clock()
            promoted = deployment.with_(promoted=True, progress_at=now)
            await self.applier.apply(
                Decision(
                    ops=(Put(deployment_key(deployment_id), encode(promoted.to_json())),),
                    deployments=(promoted,),
                    events=(DeploymentChanged("info", promoted, now),),
                )
            )
        self.applier.kick()
        return promoted
