"""Every API call as data: the request to send and how to read its answer; pure.

The sync and async clients share these, so both speak the same HTTP and map errors
the same way; they only differ in how they send. ``finish`` turns a status, headers
and body into the call's result or a ``ClientError``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

from pallet.client.errors import MasterUnreachable, ProtocolError, error_for_status
from pallet.client.models import (
    App,
    Deployment,
    DeploymentRef,
    Info,
    KillResult,
    LogChunk,
    Node,
    NodeDetail,
    QueueItem,
    Task,
)
from pallet.client.reader import Fields

__all__ = [
    "APPS_EMBED",
    "APP_EMBED",
    "LIVENESS_EVERY",
    "LOG_CHUNK",
    "Call",
    "LogStream",
    "app_path",
    "calls",
    "finish",
    "pod_path",
]

T = TypeVar("T")
LogStream = Literal["stdout", "stderr"]
Params = Mapping[str, str | Sequence[str]]
Headers = Mapping[str, str]

LOG_CHUNK = 65536
"""Bytes asked for per log read."""
LIVENESS_EVERY = 4
"""Idle polls of a followed log between two checks of whether its task still runs."""

APPS_EMBED = ("apps.counts", "apps.deployments", "apps.lastTaskFailure")
APP_EMBED = ("app.counts", "app.deployments", "app.tasks", "app.lastTaskFailure")


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One request and the reader of its answer (JSON, or bytes when ``raw``)."""

    method: str
    path: str
    read: Callable[[Any, Headers], T]
    params: Params = field(default_factory=dict)
    body: object = None
    raw: bool = False

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"


def _object(doc: Any, where: str) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise ProtocolError(f"{where}: expected a JSON object")
    return doc


def pod_path(pod_id: str) -> str:
    """``/shop/pod`` -> ``/v2/pods/shop/pod`` (segments quoted)."""
    return "/v2/pods" + app_path(pod_id)[len("/v2/apps") :]


def _list_of_objects(doc: Any, _headers: Headers) -> list[dict[str, Any]]:
    if not isinstance(doc, list):
        raise ProtocolError("answer: expected a JSON list")
    return [_object(item, f"answer[{i}]") for i, item in enumerate(doc)]


def _deployment_header(_doc: Any, headers: Headers) -> str:
    deployment = headers.get("marathon-deployment-id")
    if not deployment:
        raise ProtocolError("answer: no Marathon-Deployment-Id header")
    return deployment


def _pod_created(doc: Any, headers: Headers) -> dict[str, Any]:
    """The pod as created, with ``deployments`` naming the deployment that starts it."""
    pod = _object(doc, "pod")
    return {**pod, "deployments": [{"id": _deployment_header(doc, headers)}]}


def app_path(app_id: str) -> str:
    """``/prod/web`` or ``prod/web`` -> ``/v2/apps/prod/web`` (segments quoted)."""
    parts = [quote(p, safe="") for p in app_id.split("/") if p]
    if not parts:
        raise ValueError(f"app id {app_id!r} names no app; give one such as /prod/web")
    return "/v2/apps/" + "/".join(parts)


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _decode_json(call: Call[Any], content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        snippet = content[:80].decode("utf-8", errors="replace").strip()
        raise ProtocolError(
            f"{call.name}: the answer is not JSON ({snippet!r}); "
            "is the master URL pointing at Pallet?"
        ) from None


def finish(call: Call[T], status: int, headers: Headers, content: bytes, reason: str = "") -> T:
    """The result of ``call`` from its HTTP answer, or the ``ClientError`` it means."""
    if status >= 400:
        try:
            body: object = json.loads(content)
        except ValueError:
            body = content.decode("utf-8", errors="replace")
        raise error_for_status(call.method, call.path, status, body, reason)
    if 300 <= status < 400:  # a redirect that was not (or could not be) followed
        where = headers.get("location") or "?"
        raise MasterUnreachable(
            where,
            f"{call.name}: a follower sends it to the leader there, which did not answer; "
            "a new leader is being elected: try again in a moment",
        )
    doc = content if call.raw else _decode_json(call, content)
    try:
        return call.read(doc, headers)
    except ProtocolError as exc:
        raise ProtocolError(f"{call.name}: {exc.message}") from None


def _list_of(key: str, reader: Callable[[object, str], T]) -> Callable[[Any, Headers], list[T]]:
    def read(doc: Any, _headers: Headers) -> list[T]:
        return [reader(item.doc, item.where) for item in Fields(doc, "answer").objs(key)]

    return read


def _one(key: str, reader: Callable[[object, str], T]) -> Callable[[Any, Headers], T]:
    def read(doc: Any, _headers: Headers) -> T:
        return reader(Fields(doc, "answer").doc.get(key), key)

    return read


def _versions(doc: Any, _headers: Headers) -> list[str]:
    return list(Fields(doc, "answer").strings("versions"))


def _deployments(doc: Any, _headers: Headers) -> list[Deployment]:
    if not isinstance(doc, list):
        raise ProtocolError("expected a list of deployments")
    return [Deployment.from_json(d, f"deployments[{i}]") for i, d in enumerate(doc)]


def _created(doc: Any, headers: Headers) -> App:
    app = App.from_json(doc)
    header = headers.get("marathon-deployment-id")
    if not app.deployment_ids and header:
        return App.from_json({**app.raw, "deployments": [{"id": header}]})
    return app


def _kill_result(key: str) -> Callable[[Any, Headers], KillResult]:
    def read(doc: Any, _headers: Headers) -> KillResult:
        f = Fields(doc, "answer")
        if "deploymentId" in f.doc:
            return KillResult(deployment=DeploymentRef.from_json(doc))
        if key == "task":
            return KillResult(tasks=(Task.from_json(f.doc.get("task"), "task"),))
        return KillResult(tasks=tuple(Task.from_json(t.doc, t.where) for t in f.objs(key)))

    return read


def _json_or_none(content: Any, _headers: Headers) -> Any:
    if not content:
        return None
    try:
        return json.loads(content)
    except ValueError:
        raise ProtocolError("the answer is not JSON") from None


def _log_reader(offset: int) -> Callable[[Any, Headers], LogChunk]:
    """Logs come as raw bytes, or as JSON with the range they cover."""

    def read(content: Any, headers: Headers) -> LogChunk:
        raw = bytes(content)
        if headers.get("content-type", "").startswith("application/json"):
            try:
                doc = json.loads(raw)
            except ValueError:
                raise ProtocolError("the log answer says JSON but is not") from None
            return LogChunk.from_json(doc, offset)
        start = max(offset, 0)
        return LogChunk(raw, start, start + len(raw))

    return read


class _Calls:
    """The API's calls, by Marathon's and Pallet's documented routes."""

    def ping(self) -> Call[str]:
        return Call("GET", "/ping", lambda doc, _h: bytes(doc).decode().strip(), raw=True)

    def info(self) -> Call[Info]:
        return Call("GET", "/v2/info", lambda doc, _h: Info.from_json(doc))

    def list_apps(
        self, embed: Iterable[str] = APPS_EMBED, id: str | None = None
    ) -> Call[list[App]]:
        params: dict[str, str | Sequence[str]] = {"embed": list(embed)}
        if id:
            params["id"] = id
        return Call("GET", "/v2/apps", _list_of("apps", App.from_json), params)

    def get_app(self, app_id: str, embed: Iterable[str] = APP_EMBED) -> Call[App]:
        return Call("GET", app_path(app_id), _one("app", App.from_json), {"embed": list(embed)})

    def create_app(self, definition: Mapping[str, Any]) -> Call[App]:
        return Call("POST", "/v2/apps", _created, body=dict(definition))

    def update_app(
        self, app_id: str, changes: Mapping[str, Any], force: bool = False, partial: bool = False
    ) -> Call[DeploymentRef]:
        """``PUT`` (Marathon 1.x semantics: only the fields given change) or ``PATCH``."""
        return Call(
            "PATCH" if partial else "PUT",
            app_path(app_id),
            lambda doc, _h: DeploymentRef.from_json(doc),
            {"force": _flag(force)},
            body=dict(changes),
        )

    def scale_app(self, app_id: str, instances: int, force: bool = False) -> Call[DeploymentRef]:
        return self.update_app(app_id, {"instances": instances}, force=force)

    def restart_app(self, app_id: str, force: bool = False) -> Call[DeploymentRef]:
        return Call(
            "POST",
            app_path(app_id) + "/restart",
            lambda doc, _h: DeploymentRef.from_json(doc),
            {"force": _flag(force)},
        )

    def delete_app(self, app_id: str, force: bool = False) -> Call[DeploymentRef]:
        return Call(
            "DELETE",
            app_path(app_id),
            lambda doc, _h: DeploymentRef.from_json(doc),
            {"force": _flag(force)},
        )

    def plan_app(
        self, definition: Mapping[str, Any], create: bool, force: bool = False
    ) -> Call[dict[str, Any]]:
        """What creating (POST) or updating (PUT) the app would do: ``?dryRun=true``, which
        changes nothing (steps, field diff, where each new task would land)."""
        if create:
            return Call(
                "POST",
                "/v2/apps",
                lambda doc, _h: _object(doc, "plan"),
                {"dryRun": "true"},
                body=dict(definition),
            )
        return Call(
            "PUT",
            app_path(str(definition["id"])),
            lambda doc, _h: _object(doc, "plan"),
            {"dryRun": "true", "force": _flag(force)},
            body=dict(definition),
        )

    def rollback_app(self, app_id: str, version: str, force: bool = False) -> Call[DeploymentRef]:
        """Back to an earlier version (Marathon's ``PUT {"version": ...}``)."""
        return self.update_app(app_id, {"version": version}, force=force)

    def cancel_deployment(
        self, deployment_id: str, force: bool = False
    ) -> Call[DeploymentRef | None]:
        """Roll a deployment back (or, with ``force``, just stop following it)."""

        def read(content: Any, _h: Headers) -> DeploymentRef | None:
            if not bytes(content).strip():  # 202: forgotten, nothing rolls back
                return None
            return DeploymentRef.from_json(json.loads(content))

        return Call(
            "DELETE",
            f"/v2/deployments/{deployment_id}",
            read,
            {"force": _flag(force)},
            raw=True,
        )

    def promote_deployment(self, deployment_id: str) -> Call[Deployment]:
        """Let a deployment held at its canaries go on."""
        return Call(
            "POST",
            f"/v2/deployments/{deployment_id}/promote",
            lambda doc, _h: Deployment.from_json(doc),
        )

    def app_versions(self, app_id: str) -> Call[list[str]]:
        return Call("GET", app_path(app_id) + "/versions", _versions)

    # Pods (``/v2/pods``): answered as Marathon's JSON, read by the CLI as it is.

    def list_pods(self) -> Call[list[dict[str, Any]]]:
        return Call("GET", "/v2/pods/::status", _list_of_objects)

    def pod_status(self, pod_id: str) -> Call[dict[str, Any]]:
        return Call("GET", pod_path(pod_id) + "::status", lambda doc, _h: _object(doc, "pod"))

    def create_pod(self, definition: Mapping[str, Any]) -> Call[dict[str, Any]]:
        return Call("POST", "/v2/pods", _pod_created, body=dict(definition))

    def plan_pod(self, definition: Mapping[str, Any], force: bool = False) -> Call[dict[str, Any]]:
        """What ``PUT /v2/pods/{id}`` (create or replace) would do: ``?dryRun=true``, which
        changes nothing (steps, field diff, where each new instance would land)."""
        return Call(
            "PUT",
            pod_path(str(definition.get("id", ""))),
            lambda doc, _h: _object(doc, "plan"),
            {"dryRun": "true", "force": _flag(force)},
            body=dict(definition),
        )

    def delete_pod(self, pod_id: str, force: bool = False) -> Call[str]:
        """The id of the deployment that stops the pod's instances."""
        return Call(
            "DELETE", pod_path(pod_id), _deployment_header, {"force": _flag(force)}, raw=True
        )

    def list_tasks(self, app_id: str | None = None) -> Call[list[Task]]:
        path = "/v2/tasks" if app_id is None else app_path(app_id) + "/tasks"
        return Call("GET", path, _list_of("tasks", Task.from_json))

    def kill_tasks(
        self, task_ids: Iterable[str], scale: bool = False, force: bool = False
    ) -> Call[KillResult]:
        return Call(
            "POST",
            "/v2/tasks/delete",
            _kill_result("tasks"),
            {"scale": _flag(scale), "force": _flag(force)},
            body={"ids": list(task_ids)},
        )

    def kill_app_task(self, app_id: str, task_id: str, scale: bool = False) -> Call[KillResult]:
        path = f"{app_path(app_id)}/tasks/{quote(task_id, safe='')}"
        return Call("DELETE", path, _kill_result("task"), {"scale": _flag(scale)})

    def list_deployments(self) -> Call[list[Deployment]]:
        return Call("GET", "/v2/deployments", _deployments)

    def list_queue(self) -> Call[list[QueueItem]]:
        return Call("GET", "/v2/queue", _list_of("queue", QueueItem.from_json))

    def list_nodes(self) -> Call[list[Node]]:
        return Call("GET", "/v1/nodes", _list_of("nodes", Node.from_json))

    def discovery(self) -> Call[dict[str, Any]]:
        """Where the DNS server and the load balancers are (``GET /v1/discovery``)."""
        return Call("GET", "/v1/discovery", lambda doc, _h: _object(doc, "discovery"))

    def app_discovery(self, app_id: str) -> Call[dict[str, Any]]:
        """An app's DNS names, VIPs and load-balancer endpoints."""
        path = "/v1/discovery/apps/" + app_path(app_id).removeprefix("/v2/apps/")
        return Call("GET", path, lambda doc, _h: _object(doc, "app discovery"))

    def get_node(self, node_id: str) -> Call[NodeDetail]:
        path = f"/v1/nodes/{quote(node_id, safe='')}"
        return Call("GET", path, lambda doc, _h: NodeDetail.from_json(doc))

    def drain_node(self, node_id: str, deadline: float | None = None) -> Call[Node]:
        """An operator's drain; ``deadline`` seconds until what has not moved is killed."""
        path = f"/v1/nodes/{quote(node_id, safe='')}/drain"
        body = {} if deadline is None else {"deadline": deadline}
        return Call("POST", path, lambda doc, _h: Node.from_json(doc), body=body)

    def undrain_node(self, node_id: str) -> Call[Node]:
        path = f"/v1/nodes/{quote(node_id, safe='')}/undrain"
        return Call("POST", path, lambda doc, _h: Node.from_json(doc))

    def remove_node(self, node_id: str) -> Call[Node]:
        """Forget a node that is down or drained (409 for any other); the node as it was."""
        path = f"/v1/nodes/{quote(node_id, safe='')}"
        return Call("DELETE", path, lambda doc, _h: Node.from_json(doc))

    def json(
        self,
        method: str,
        path: str,
        body: object = None,
        params: Mapping[str, str] | None = None,
    ) -> Call[Any]:
        """Any call answered with JSON (or nothing): identities, grants, secrets, the audit
        log. Path segments are quoted by the caller."""
        return Call(method, path, _json_or_none, dict(params or {}), body, raw=True)

    def task_log(
        self,
        task_id: str,
        stream: LogStream = "stdout",
        offset: int = 0,
        length: int = LOG_CHUNK,
        container: str | None = None,
    ) -> Call[LogChunk]:
        """Up to ``length`` bytes of a task's ``stream`` from byte ``offset`` (negative:
        from the end, when the master answers with the JSON form that says where it began);
        ``container``: that container's of a pod instance."""
        path = f"/v1/tasks/{quote(task_id, safe='')}/logs"
        params = {"stream": stream, "offset": str(offset), "length": str(length)}
        if container is not None:
            params["container"] = container
        return Call("GET", path, _log_reader(offset), params, raw=True)


calls = _Calls()
