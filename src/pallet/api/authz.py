"""What each request needs to be allowed: one table for every route of the master; pure
(the few facts it needs about the cluster come through ``Lookup``).

``requirement(method, path, lookup)`` answers:

- ``PUBLIC``: no token needed (login, the public keys, the dashboard's files, the API
  schema, ``/ping``);
- ``SIGNED_IN``: any authenticated caller; the route shows only what the caller may read
  (listings);
- ``Needs(((rid, action), ...))``: every pair must be allowed;
- ``BODY``: the resources are named in the JSON body (creating apps and groups, killing
  tasks by id): ``body_requirement`` decides once the body is read.

A route this table does not know needs ``pallet:superuser``: a route added without a rule
here is closed, never open. Metronome's ``/v1/jobs`` routes are in the table already.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from pallet.api.marathon.pathid import canonical_path
from pallet.auth.perms import Action, Rid, job_path

__all__ = [
    "BODY",
    "PUBLIC",
    "SIGNED_IN",
    "Lookup",
    "Needs",
    "Requirement",
    "body_requirement",
    "requirement",
    "service",
]

C, R, U, D = Action.CREATE, Action.READ, Action.UPDATE, Action.DELETE


class Lookup(Protocol):
    def is_app(self, app_id: str) -> bool: ...

    def task_app(self, task_id: str) -> str | None: ...

    def deployment_apps(self, deployment_id: str) -> Sequence[str] | None: ...


@dataclass(frozen=True, slots=True)
class Needs:
    pairs: tuple[tuple[Rid, Action], ...]


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


PUBLIC = _Marker("PUBLIC")
SIGNED_IN = _Marker("SIGNED_IN")
BODY = _Marker("BODY")
Requirement = Needs | _Marker

SUPERUSER = Needs(((Rid("superuser"), Action.FULL),))


def _path(text: str) -> tuple[str, ...]:
    return tuple(p for p in text.split("/") if p)


def service(app_id: str) -> Rid:
    return Rid("service", _path(canonical_path(app_id)))


def _needs(*pairs: tuple[Rid, Action]) -> Needs:
    return Needs(tuple(pairs))


def _whole(kind: str, action: Action) -> Needs:
    return _needs((Rid(kind), action))


_WRITE = {"POST": U, "PUT": U, "PATCH": U, "DELETE": D}
_PUBLIC_GET = {"/ping", "/", "/index.html", "/v1/openapi.json", "/v1/docs", "/v1/auth/jwks"}
_TASK = re.compile(r"^(?P<app>.*)/tasks/(?P<task>[^/]+)$")
_VERSION = re.compile(r"^(?P<app>.*)/versions/[^/]+$")
_AGENT_NODE = re.compile(
    r"^/v1/agent/nodes/(?P<node>[^/]+)/(desired|status|heartbeat|drain|tasks/[^/]+/secrets)$"
)
_DCOS_SECRETS = "/secrets/v1/secret/default"
_OPERATOR_READS = ("GET_MAINTENANCE_STATUS", "GET_MAINTENANCE_SCHEDULE")
"""Mesos operator API calls that only read (``pallet:node`` read); the others update."""


def _apps(method: str, rest: str, lookup: Lookup) -> Requirement:
    """``/v2/apps/<rest>``, split as ``routes_apps`` splits it."""
    if method in ("GET", "HEAD"):
        if m := _TASK.match(rest):
            return _needs((service(m.group("app")), R))
        for suffix in ("/tasks", "/versions"):
            if rest.endswith(suffix):
                return _needs((service(rest[: -len(suffix)]), R))
        if m := _VERSION.match(rest):
            return _needs((service(m.group("app")), R))
        return _needs((service(rest), R))
    if method == "POST":  # /restart
        return _needs((service(rest.removesuffix("/restart")), U))
    if method in ("PUT", "PATCH"):
        return _needs((service(rest), U if lookup.is_app(canonical_path(rest)) else C))
    if method == "DELETE":
        whole = canonical_path(rest)
        if not lookup.is_app(whole):
            if m := _TASK.match(rest):  # killing a task changes its app
                return _needs((service(m.group("app")), U))
            if rest.endswith("/tasks"):
                return _needs((service(rest[: -len("/tasks")]), U))
        return _needs((service(rest), D))
    return SUPERUSER


def _jobs(method: str, rest: str) -> Requirement:
    """Metronome: ``/v1/jobs/<job id>[/runs[/<id>[/actions/stop]]|/schedules[/<id>]]``."""
    job_id = rest.split("/", 1)[0]
    if not job_id:  # the list shows only the jobs the caller may read
        return SIGNED_IN if method == "GET" else BODY
    rid = Rid("job", _path(job_path(job_id)))
    if method in ("GET", "HEAD"):
        return _needs((rid, R))
    if method == "DELETE" and "/" not in rest.strip("/"):
        return _needs((rid, D))
    return _needs((rid, _WRITE.get(method, U)))


def _pods(method: str, rest: str, lookup: Lookup) -> Requirement:
    """``/v2/pods/<id>[::status|::versions[/v]|::instances[/id]]``: a pod is a service at
    its path, as DC/OS names Marathon's pods."""
    pod, _, sub = rest.partition("::")
    rid = service(pod or "/")
    if method == "GET":
        return _needs((rid, R))
    if method == "PUT" and not sub:
        return _needs((rid, U if lookup.is_app(canonical_path(pod)) else C))
    if method == "DELETE":
        return _needs((rid, U if sub else D))  # killing instances changes the pod
    return SUPERUSER


def requirement(method: str, path: str, lookup: Lookup) -> Requirement:
    method = "GET" if method == "HEAD" else method
    if method == "GET" and (path in _PUBLIC_GET or path.startswith("/ui/")):
        return PUBLIC
    if path in ("/v1/auth/login", "/acs/api/v1/auth/login", "/v1/agent/join") and method == "POST":
        return PUBLIC  # the credentials are in the body
    if method == "OPTIONS":
        return PUBLIC  # answered 405 with Allow; nothing is read or changed
    if path in ("/v1/auth/whoami", "/v1/auth/logout") or (
        path in ("/v2/info", "/v1/cluster") and method == "GET"
    ):
        return SIGNED_IN
    if path == "/v2/leader":
        return SIGNED_IN if method == "GET" else _whole("leader", D)  # DELETE: abdicate

    if path.startswith("/v2/apps"):
        rest = path[len("/v2/apps") :]
        if not rest.strip("/"):
            return SIGNED_IN if method == "GET" else BODY
        return _apps(method, rest, lookup)
    if path.startswith("/v2/groups"):
        rest = path[len("/v2/groups") :]
        if method == "GET":
            return SIGNED_IN  # the tree shows only what the caller may read
        if method == "DELETE":
            return _needs((service(rest.removesuffix("/versions") or "/"), D))
        return BODY
    if path.startswith("/v2/pods"):
        rest = path[len("/v2/pods") :]
        if rest.strip("/") in ("", "::status"):
            # the lists are not filtered: they need read on every service
            return _needs((Rid("service", ()), R)) if method == "GET" else BODY
        return _pods(method, rest, lookup)
    if path in ("/v2/tasks", "/v2/deployments", "/v2/queue") and method == "GET":
        return SIGNED_IN
    if path == "/v2/tasks/delete" and method == "POST":
        return BODY
    if m := re.fullmatch(r"/v2/deployments/([^/]+)(/promote)?", path):
        apps = lookup.deployment_apps(m.group(1))
        if apps is None:
            return SIGNED_IN  # unknown: the route answers 404
        return Needs(tuple((service(a), U) for a in apps) or ((Rid("service", ()), U),))
    if path.startswith("/v2/queue/") and method == "DELETE":
        return _needs((service(path[len("/v2/queue") :].removesuffix("/delay")), U))
    if path == "/v2/events" and method == "GET":
        return _whole("events", R)

    if m := re.fullmatch(r"/v1/tasks/([^/]+)/logs", path):
        app = lookup.task_app(m.group(1))
        return SIGNED_IN if app is None else _needs((service(app), R))
    if path.startswith("/v1/nodes"):
        return _whole("node", R if method == "GET" else _WRITE.get(method, U))
    if path.removeprefix("/master").startswith(("/maintenance/", "/machine/", "/v1/maintenance/")):
        return _whole("node", R if method == "GET" else U)  # Mesos's maintenance
    if path.removeprefix("/master") == "/api/v1" and method == "POST":
        return BODY  # Mesos's operator API: the call's type says what it reads or changes
    if path == "/v1/agent/register" and method == "POST":
        return BODY  # create on the body's own node
    if m := _AGENT_NODE.match(path):
        return _needs((Rid("agent", (m.group("node"),)), U))
    if path.startswith("/v1/discovery"):
        if method == "GET" and path.startswith("/v1/discovery/apps/"):
            return _needs((service(path[len("/v1/discovery/apps") :]), R))
        return _whole("discovery", R if method == "GET" else U)
    if path == "/metrics" and method == "GET":
        return _whole("metrics", R)
    if path.startswith("/v1/jobs"):
        return _jobs(method, path[len("/v1/jobs") :].strip("/"))
    if path == "/v1/queue" and method == "GET":  # Metronome's queue: the readable jobs' runs
        return SIGNED_IN
    if path.startswith("/v0/scheduled-jobs"):  # Metronome's older job-and-schedule routes
        job_id = path[len("/v0/scheduled-jobs") :].strip("/")
        if not job_id:
            return BODY
        return _needs((Rid("job", _path(job_path(job_id))), U))
    if path.startswith(("/v1/secrets", _DCOS_SECRETS)):
        rest = path[len(_DCOS_SECRETS if path.startswith(_DCOS_SECRETS) else "/v1/secrets") :]
        if rest and not rest.startswith("/"):  # /v1/secretsX, /secrets/v1/secret/defaultX
            return SUPERUSER
        if not rest.strip("/"):
            return SIGNED_IN if method == "GET" else SUPERUSER
        action = {"GET": R, "PUT": C, "DELETE": D}.get(method, U)
        return _needs((Rid("secret", _path(rest)), action))
    if path == "/v1/audit" and method == "GET":
        return _whole("audit", R)
    if path == "/v1/auth/password" and method == "POST":
        return SIGNED_IN  # one's own, with the current password in the body
    if path.startswith(("/v1/users", "/v1/groups", "/v1/acls", "/v1/auth/", "/acs/api/v1/")):
        return _whole("iam", R if method == "GET" else U)
    return SUPERUSER


# ------------------------------------------------------------------ requirements read from bodies


def _group_apps(body: dict[str, object], group_id: str, depth: int = 0) -> list[str]:
    """Every app id a group body names, resolved as ``routes_groups`` resolves them."""
    ids: list[str] = []
    apps = body.get("apps")
    if isinstance(apps, list):
        for app in apps:
            if isinstance(app, dict) and isinstance(app.get("id"), str):
                ids.append(canonical_path(app["id"], group_id))
    groups = body.get("groups")
    if isinstance(groups, list) and depth < 32:
        for sub in groups:
            if isinstance(sub, dict) and isinstance(sub.get("id"), str):
                ids += _group_apps(sub, canonical_path(sub["id"], group_id), depth + 1)
    return ids


def body_requirement(method: str, path: str, body: object, lookup: Lookup) -> Requirement:
    """The requirement of a ``BODY`` route, from its parsed JSON body (anything that does
    not name a resource asks for the whole kind: the route then answers 4xx to those
    allowed, and nobody else learns anything)."""
    everything = (Rid("service", ()), C)
    if path.rstrip("/") in ("/v2/apps", "/v2/pods"):  # POST: create one app or pod
        if isinstance(body, dict) and isinstance(body.get("id"), str):
            return _needs((service(body["id"]), C))
        return _needs(everything)
    if path.startswith("/v2/groups"):
        base = canonical_path(path[len("/v2/groups") :] or "/")
        if not isinstance(body, dict):
            return _needs(everything)
        if method == "POST":
            if not isinstance(body.get("id"), str):
                return _needs(everything)
            group_id = canonical_path(body["id"], base)
            pairs = [(service(group_id), C)]
            pairs += [(service(a), C) for a in _group_apps(body, group_id)]
            return Needs(tuple(pairs))
        group = service(base)
        pairs = [(group, C), (group, U), (group, D)]
        for app in _group_apps(body, base):
            pairs.append((service(app), U if lookup.is_app(app) else C))
        return Needs(tuple(pairs))
    if path == "/v2/tasks/delete":
        ids = body.get("ids") if isinstance(body, dict) else None
        if not isinstance(ids, list):
            return _needs((Rid("service", ()), U))
        apps = {a for i in ids if isinstance(i, str) and (a := lookup.task_app(i)) is not None}
        return Needs(tuple((service(a), U) for a in sorted(apps)))
    if path == "/v1/agent/register":
        node = body.get("node") if isinstance(body, dict) else None
        node_id = node.get("id") if isinstance(node, dict) else None
        if isinstance(node_id, str) and node_id and "/" not in node_id:
            return _needs((Rid("agent", (node_id,)), C))
        return _whole("agent", C)
    if path.removeprefix("/master") == "/api/v1":
        reads = isinstance(body, dict) and body.get("type") in _OPERATOR_READS
        return _whole("node", R if reads else U)
    if path.rstrip("/") in ("/v1/jobs", "/v0/scheduled-jobs"):
        if isinstance(body, dict) and isinstance(body.get("id"), str):
            return _needs((Rid("job", _path(job_path(body["id"]))), C))
        return _needs((Rid("job", ()), C))
    return SUPERUSER
