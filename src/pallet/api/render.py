"""Rendering the master's state in Marathon's shapes: apps with their embeds, deployments,
the launch queue; pure over ``ClusterState`` plus small caches.

``GET /v2/apps`` is the hot path (dashboards poll it): each app's JSON, its serialized
bytes and their deflate fragment are cached by what they depend on (version, counts,
deployments, last failure; ``api/listing.py``), and the whole serialized list by the
state's ``generation``, which every change raises: a change re-renders and recompresses
only the apps it changed, then joins the list; the unfiltered list finds those apps
without visiting the others.
"""

from __future__ import annotations

import gzip
import itertools
import json
import math
import operator
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pallet.api.convert import app_document, epoch, marathon_task, moment
from pallet.api.listing import ListingPieces, WholeListing
from pallet.api.marathon import (
    ActionName,
    Canary,
    Deployment,
    MesosTaskState,
    QueueDelay,
    QueueItem,
    ReadinessCheckResult,
    TaskCounts,
    TaskView,
    app_json,
    deployments_json,
    offers_summary,
    queue_json,
    task_failure_json,
)
from pallet.api.marathon.params import INDEX_EMBEDS, AppEmbed
from pallet.api.render_pods import pod_definition, pod_json
from pallet.control import (
    AppRecord,
    ClusterState,
    DeploymentRecord,
    TaskGoal,
    TaskRecord,
    TaskState,
)

__all__ = ["Renderer"]


def _forget_gone(cache: dict[str, Any], live: dict[str, Any]) -> None:
    """Drop the entries of apps no longer in ``live`` (deleted)."""
    for app_id in cache.keys() - live.keys():
        del cache[app_id]


def _changed_apps(
    seen: _Seen, ids: list[str], records: list[AppRecord], counts: list[int | None]
) -> set[str]:
    """The ids whose record or change count differ from what ``seen`` holds (the state's
    apps in its dict order, their records, their change counts), compared in C. An update
    keeps an app's place in the dict, a delete removes it and a create appends, so the old
    ids without the deleted ones are a prefix of the new ones and the lists compare in
    step (records by identity: the old ones are held, so no new record has an old one's
    id); if that ever fails, both sides are compared as dicts."""
    old_ids, old_held, old_counts = seen.ids, seen.held, seen.changes
    removed: set[str] = set()
    if ids[: len(old_ids)] != old_ids:
        removed = set(old_ids).difference(ids)
        if removed:
            kept = list(map(operator.not_, map(removed.__contains__, old_ids)))
            old_ids = list(itertools.compress(old_ids, kept))
            old_held = list(itertools.compress(old_held, kept))
            old_counts = list(itertools.compress(old_counts, kept))
    n = len(old_ids)
    if ids[:n] == old_ids:
        changed = set(itertools.compress(ids, map(operator.is_not, records, old_held)))
        changed.update(itertools.compress(ids, map(operator.ne, counts, old_counts)))
        changed.update(ids[n:])
        return changed | removed
    now = dict(zip(ids, zip(map(id, records), counts, strict=True), strict=True))
    before = dict(zip(seen.ids, zip(map(id, seen.held), seen.changes, strict=True), strict=True))
    return {k for k, _ in now.items() ^ before.items()}


def _counts(tasks: Iterable[TaskRecord]) -> TaskCounts:
    """Marathon's counts; a task is healthy or unhealthy only once its checks have a
    verdict (a task of an app without health checks is neither)."""
    staged = running = healthy = unhealthy = 0
    for t in tasks:
        if t.goal is TaskGoal.KILL:
            continue
        if t.state is TaskState.RUNNING:
            running += 1
            if t.healthy is True:
                healthy += 1
            elif t.healthy is False:
                unhealthy += 1
        elif t.state in (TaskState.STAGING, TaskState.STARTING):
            staged += 1
    return TaskCounts(staged=staged, running=running, healthy=healthy, unhealthy=unhealthy)


@dataclass
class _Seen:
    """The state as a whole listing's last update saw it, to tell which apps changed
    since: each app's record (held, so that no new record can reuse an old one's id),
    change count, deployments and last failure."""

    listing: WholeListing
    first: bool = True
    ids: list[str] = field(default_factory=list)
    held: list[AppRecord] = field(default_factory=list)
    changes: list[int | None] = field(default_factory=list)
    marks: dict[str, int] = field(default_factory=dict)
    """``Deployments.marks`` as it was (listing deployments)."""
    failures: dict[str, object] = field(default_factory=dict)


class Renderer:
    slack = 256
    """Deleted apps' entries a cache may hold before they are swept: a sweep visits every
    app, so it runs once per this many deletes rather than at every write after one."""

    def __init__(self, state: ClusterState) -> None:
        self.state = state
        # (embeds, version info) -> app id -> (stamp, the app's JSON)
        self._docs: dict[
            tuple[frozenset[AppEmbed], bool], dict[str, tuple[tuple[object, ...], dict[str, Any]]]
        ] = {}
        self._pieces_by_embeds: dict[frozenset[AppEmbed], ListingPieces] = {}
        self._wholes: dict[frozenset[AppEmbed], _Seen] = {}
        self._lists: dict[tuple[object, ...], bytes] = {}
        self._list_generation = -1

    # ------------------------------------------------------------ apps

    def definition(self, app: AppRecord) -> dict[str, Any]:
        """The app's (or pod's) Marathon definition without its version, its count in
        it: what a dry run compares and a group version restores."""
        if app.is_pod:
            return pod_definition(app)
        return app_document(app.spec)

    def service_ports(self, app: AppRecord) -> tuple[int, ...]:
        """The app's service ports (its ``portDefinitions``' ports; a pod has none)."""
        if app.is_pod:
            return ()
        return tuple(p.port for p in app.spec.port_definitions or ())

    def tasks_of(self, app: AppRecord) -> list[TaskRecord]:
        return sorted(self.state.app_tasks(app.id), key=lambda t: (t.staged_at, t.id))

    def task_json_records(self, app: AppRecord) -> list[Any]:
        ports = self.service_ports(app)
        return [marathon_task(t, ports, self.state.reservations) for t in self.tasks_of(app)]

    def last_failure(self, app_id: str) -> dict[str, Any] | None:
        backoff = self.state.backoff.get(app_id)
        failure = backoff.last_failure if backoff is not None else None
        if not failure:
            return None
        state = failure.get("state", "")
        known = {s.value for s in MesosTaskState}
        record = TaskView(
            id=failure["task_id"],
            app_id=app_id,
            host=failure.get("host", ""),
            state=MesosTaskState(state) if state in known else MesosTaskState.TASK_FAILED,
            agent_id=failure.get("node_id"),
            version=moment(failure["version"]),
        )
        return task_failure_json(record, failure.get("message") or "", epoch(failure["timestamp"]))

    def app(
        self,
        app: AppRecord,
        embeds: frozenset[AppEmbed],
        version_info: bool = True,
    ) -> dict[str, Any]:
        """One app's JSON with the embeds asked for."""
        return self._app(app, embeds, version_info)[0]

    def created(self, app: AppRecord) -> dict[str, Any]:
        """The answer to a create: the app with its counts, deployments and tasks, no
        ``versionInfo``. Without tasks yet it is the listing's JSON of the app (which
        this caches, so the next listing renders nothing for it) less ``versionInfo``,
        plus ``"tasks": []``, in the field order of a full rendering."""
        if self.state.app_tasks(app.id):
            embeds = frozenset({AppEmbed.COUNTS, AppEmbed.DEPLOYMENTS, AppEmbed.TASKS})
            return self.app(app, embeds, version_info=False)
        doc = self.app(app, INDEX_EMBEDS)
        out = {k: v for k, v in doc.items() if k != "versionInfo"}
        out["tasks"] = []
        return out

    def _stamp(
        self, app: AppRecord, deployments: list[str] | None, embeds: frozenset[AppEmbed]
    ) -> tuple[object, ...]:
        """What an app's JSON without tasks and readiness is made of: it is rendered again
        only when this changes."""
        failure_at = None
        if AppEmbed.LAST_TASK_FAILURE in embeds:
            backoff = self.state.backoff.get(app.id)
            failure = backoff.last_failure if backoff is not None else None
            failure_at = failure["timestamp"] if failure else None
        return (
            app.version,
            # Rises with every change of the app or its tasks: what the counts are made
            # of, so an unchanged app is found without counting its tasks.
            self.state.app_changes.get(app.id, 0),
            tuple(deployments or ()),
            failure_at,
        )

    def _deployments_of(self, app: AppRecord, embeds: frozenset[AppEmbed]) -> list[str] | None:
        if AppEmbed.DEPLOYMENTS not in embeds:
            return None
        return sorted(d.id for d in self.state.deployments.of_app(app.id))

    def _app(
        self,
        app: AppRecord,
        embeds: frozenset[AppEmbed],
        version_info: bool = True,
        keep: bool = True,
    ) -> tuple[dict[str, Any], bool]:
        """One app's JSON and whether it may be cached (not with its tasks or readiness).
        ``keep``: cache the JSON (the listing keeps its bytes instead)."""
        deployments = self._deployments_of(app, embeds)
        with_tasks = AppEmbed.TASKS in embeds
        readiness = self.readiness(app) if AppEmbed.READINESS in embeds else None
        cacheable = not with_tasks and readiness is None
        docs = None
        if cacheable:
            stamp = self._stamp(app, deployments, embeds)
            docs = self._docs.setdefault((embeds, version_info), {})
            cached = docs.get(app.id)
            if cached is not None and cached[0] == stamp:
                return cached[1], True
        failure = self.last_failure(app.id) if AppEmbed.LAST_TASK_FAILURE in embeds else None
        counts = _counts(self.state.app_tasks(app.id)) if AppEmbed.COUNTS in embeds else None
        spec = app.spec
        doc = app_json(
            spec,
            moment(app.version),
            version_info=(moment(app.last_scaling_at), moment(app.config_version))
            if version_info
            else None,
            counts=counts,
            deployments=deployments,
            tasks=self.task_json_records(app) if with_tasks else None,
            last_task_failure=failure,
            readiness=readiness,
        )
        if docs is not None and keep:
            if app.id not in docs and len(docs) >= len(self.state.apps) + self.slack:
                _forget_gone(docs, self.state.apps)
            docs[app.id] = (stamp, doc)
        return doc, cacheable

    def cached_list(self, key: tuple[object, ...], gzipped: bool) -> bytes | None:
        """The serialized list for ``key`` if nothing changed since it was made."""
        if self._list_generation != self.state.generation:
            return None
        return self._lists.get((key, gzipped))

    def every_app(self) -> list[AppRecord]:
        """Every app (no pods), by id."""
        return sorted((a for a in self.state.apps.values() if not a.is_pod), key=lambda a: a.id)

    def app_list(
        self,
        apps: list[AppRecord] | None,
        embeds: frozenset[AppEmbed],
        key: tuple[object, ...],
        gzipped: bool = False,
    ) -> bytes:
        """``{"apps": [...]}`` serialized (and gzipped if asked), cached until the state
        changes; made of per-app pieces cached by what each app's JSON is made of
        (``api/listing.py``), so a list after a write renders and compresses only the
        apps the write changed and joins the rest. ``apps``: None for every app, whose
        list is brought up to date from what changed since its last build."""
        if self._list_generation != self.state.generation:
            self._lists.clear()
            self._list_generation = self.state.generation
        body = self._lists.get((key, gzipped))
        if body is not None:
            return body
        plain = self._lists.get((key, False))
        if AppEmbed.TASKS in embeds or AppEmbed.READINESS in embeds:
            # Changes with every task: rendered whole, as before the pieces.
            if plain is None:
                every = self.every_app() if apps is None else apps
                docs = [json.dumps(self._app(a, embeds)[0], separators=(",", ":")) for a in every]
                plain = ('{"apps":[' + ",".join(docs) + "]}").encode()
                self._lists[(key, False)] = plain
            body = gzip.compress(plain, compresslevel=1, mtime=0) if gzipped else plain
        elif apps is None:
            whole = self._whole(embeds)
            if plain is None:
                plain = self._lists[(key, False)] = whole.plain()
            body = whole.gzipped(plain) if gzipped else plain
        else:
            pieces = self._pieces(apps, embeds)
            if plain is None:
                plain = self._lists[(key, False)] = ListingPieces.plain(pieces)
            body = ListingPieces.gzipped(pieces, plain) if gzipped else plain
        self._lists[(key, gzipped)] = body
        return body

    def _variant(self, embeds: frozenset[AppEmbed]) -> ListingPieces:
        variant = self._pieces_by_embeds.get(embeds)
        if variant is None:
            variant = self._pieces_by_embeds[embeds] = ListingPieces()
        return variant

    def _forget_deleted(self) -> None:
        """Drop what deleted apps left in the caches, once there is something to drop."""
        if any(len(v) > len(self.state.apps) + self.slack for v in self._pieces_by_embeds.values()):
            for v in self._pieces_by_embeds.values():
                v.forget_all_but(self.state.apps)
            for docs in self._docs.values():
                _forget_gone(docs, self.state.apps)

    def _whole(self, embeds: frozenset[AppEmbed]) -> WholeListing:
        """The list of every app, updated for the apps whose record, change count,
        deployments or last failure differ from what its last update saw, found in C
        (``_changed_apps``), so no Python code runs per unchanged app."""
        seen = self._wholes.get(embeds)
        if seen is None:
            seen = self._wholes[embeds] = _Seen(WholeListing(self._variant(embeds)))
        apps = self.state.apps
        ids, records = list(apps), list(apps.values())
        counts = list(map(self.state.app_changes.get, ids))
        # Only apps some deployment targets have a mark: few, unless writes outrun them.
        marks = self.state.deployments.marks if AppEmbed.DEPLOYMENTS in embeds else {}
        failures: dict[str, object] = {}
        if AppEmbed.LAST_TASK_FAILURE in embeds:
            for app_id, backoff in self.state.backoff.items():
                if backoff.last_failure:
                    failures[app_id] = backoff.last_failure["timestamp"]
        changed: set[str] | None = None
        if not seen.first:
            changed = _changed_apps(seen, ids, records, counts)
            changed.update(k for k, _ in marks.items() ^ seen.marks.items())
            changed.update(k for k, _ in failures.items() ^ seen.failures.items())
        seen.first = False
        seen.ids, seen.held, seen.changes = ids, records, counts
        seen.marks, seen.failures = dict(marks), failures

        def stamp(app_id: str) -> tuple[object, ...] | None:
            app = apps.get(app_id)
            if app is None or app.is_pod:
                return None
            return self._stamp(app, self._deployments_of(app, embeds), embeds)

        def render(app_id: str) -> bytes:
            doc = self._app(apps[app_id], embeds, keep=False)[0]
            return json.dumps(doc, separators=(",", ":")).encode()

        seen.listing.update(changed, lambda: [a.id for a in self.every_app()], stamp, render)
        self._forget_deleted()
        return seen.listing

    def _pieces(self, apps: list[AppRecord], embeds: frozenset[AppEmbed]) -> list[Any]:
        """Each app's cached piece: an app whose stamp is unchanged since the last list is
        neither rendered nor serialized nor compressed again."""
        variant = self._variant(embeds)
        by_id = {a.id: a for a in apps}

        def render(app_id: str) -> bytes:
            doc = self._app(by_id[app_id], embeds, keep=False)[0]
            return json.dumps(doc, separators=(",", ":")).encode()

        stamps = ((a.id, self._stamp(a, self._deployments_of(a, embeds), embeds)) for a in apps)
        pieces = variant.pieces(stamps, render)
        self._forget_deleted()
        return pieces

    def readiness(self, app: AppRecord) -> list[ReadinessCheckResult]:
        """The readiness of the app's tasks of its current config that have readiness
        checks (Marathon's ``readinessCheckResults``): one result per check per task,
        not ready until the agent's first answer."""
        out = []
        for t in self.tasks_of(app):
            if t.config_version != app.config_version or not t.live:
                continue
            known = {r.name: r for r in t.readiness}
            for check in t.launch.readiness_checks:
                r = known.get(check.name)
                last = r.last_response if r is not None else None
                out.append(
                    ReadinessCheckResult(
                        name=check.name,
                        task_id=t.id,
                        ready=r is not None and r.ready,
                        last_response=(
                            None
                            if last is None
                            else {
                                "status": last.status,
                                "contentType": last.content_type,
                                "body": last.body,
                            }
                        ),
                    )
                )
        return out

    # ------------------------------------------------------------ deployments and queue

    def deployment_model(self, d: DeploymentRecord) -> Deployment:
        steps = [[(ActionName(a), app_id) for a, app_id in step] for step in d.steps]
        readiness = {
            app.id: self.readiness(app)
            for app in (self.state.apps.get(i) for i in d.app_ids)
            if app is not None
        }
        pods = frozenset(i for i in d.app_ids if self._is_pod(d, i))
        model = Deployment.running(
            d.id, moment(d.version), steps, d.current_step, readiness, pods=pods
        )
        if d.canaries:
            canary = Canary(
                instances=d.canaries,
                paused=d.holding is not None and d.paused_at is not None,
                promoted=d.promoted,
            )
            model = model.model_copy(update={"canary": canary})
        return model

    def _is_pod(self, d: DeploymentRecord, app_id: str) -> bool:
        """Whether a deployment's target is a pod (one being stopped is gone from the
        state; its definition before the change says)."""
        app = self.state.apps.get(app_id)
        if app is not None:
            return app.is_pod
        original = d.originals.get(app_id)
        return bool(original and original.get("run", {}).get("containers"))

    def deployments(self) -> list[dict[str, Any]]:
        items = sorted(self.state.deployments.values(), key=lambda d: (d.started_at, d.id))
        return deployments_json([self.deployment_model(d) for d in items])

    def queue(self, now: float, embed_offers: bool = False) -> dict[str, Any]:
        """Marathon's queue: an app's entry names it as ``app``, a pod's as ``pod``
        (Marathon's ``QueuePod``), each with its definition."""
        items = []
        pods = set()
        for entry in self.state.queue.values():
            app = self.state.apps.get(entry.app_id)
            if app is None or entry.count <= 0:
                continue
            if app.is_pod:
                pods.add(app.id)
            left = max(0.0, entry.launch_after - now)
            try:
                summary = offers_summary(
                    entry.reasons,
                    max(entry.nodes_considered, sum(n for _, n in entry.reasons)),
                    epoch(entry.last_unused_at) if entry.last_unused_at else None,
                    epoch(entry.last_used_at) if entry.last_used_at else None,
                )
            except ValueError:
                summary = offers_summary((), entry.nodes_considered)
            items.append(
                QueueItem(
                    app=pod_json(app) if app.is_pod else self.app(app, frozenset()),
                    count=entry.count,
                    delay=QueueDelay(time_left_seconds=math.ceil(left), overdue=left <= 0),
                    since=epoch(entry.since),
                    processed_offers_summary=summary,
                    last_unused_offers=[] if embed_offers else None,
                )
            )
        doc = queue_json(items)
        for item in doc["queue"]:
            if item["app"].get("id") in pods:
                item["pod"] = item.pop("app")
        return doc
