"""A test double of the master's HTTP API for ``httpx.MockTransport``: Marathon's ``/v2``
shapes and Pallet's ``/v1/nodes`` and task logs, as documented, held in memory.

Deployments advance one step per ``GET /v2/deployments`` (one task started or stopped),
so ``--wait`` can be followed without real time. ``unplaceable[app_id] = n`` keeps n
instances of an app waiting in ``/v2/queue`` with rejection reasons.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import httpx

from pallet.discovery import mesos_names

VERSION = "2026-01-02T03:04:05.678Z"
LATER = "2026-01-02T03:05:00.000Z"


@dataclass
class FakeDeployment:
    id: str
    app_id: str
    removing: bool = False
    restart_left: int = 0


def _json(status: int, doc: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=doc, headers=headers)


def _not_found(app_id: str) -> httpx.Response:
    return _json(404, {"message": f"App '{app_id}' does not exist"})


def node_json(node_id: str, tasks: list[str], gpus: float = 0) -> dict[str, Any]:
    return {
        "id": node_id,
        "hostname": f"{node_id}.local",
        "state": "ACTIVE",
        "attributes": {"rack": "r1", "zone": "a"},
        "gpu_model": "A100" if gpus else None,
        "capacity": {"cpus": 4, "mem": 8192, "disk": 10000, "gpus": gpus, "ports": ["31000-32000"]},
        "allocated": {"cpus": 0.5, "mem": 256, "disk": 0, "gpus": 0},
        "used": {"cpus": 0.02, "mem": 40.5},
        "tasks": tasks,
        "last_heartbeat": VERSION,
    }


class FakeMaster:
    """In-memory apps, tasks, deployments and nodes behind one request handler."""

    def __init__(self) -> None:
        self.apps: dict[str, dict[str, Any]] = {}
        self.tasks: dict[str, dict[str, Any]] = {}
        self.deployments: dict[str, FakeDeployment] = {}
        self.unplaceable: dict[str, int] = {}
        self.failures: dict[str, dict[str, Any]] = {}
        self.logs: dict[tuple[str, str], bytes] = {}
        self.log_growth: dict[str, list[bytes]] = {}
        self.log_json = False
        """Answer log reads as ``{"data", "offset", "next_offset", "size"}``, not raw bytes."""
        self.requests: list[httpx.Request] = []
        self.nodes = ["node-1", "node-2"]
        self._task_ids = itertools.count(1)
        self._deployment_ids = itertools.count(1)

    # -- plumbing ------------------------------------------------------------------
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def async_transport(self) -> httpx.MockTransport:
        async def handle(request: httpx.Request) -> httpx.Response:
            await request.aread()
            return self.handle(request)

        return httpx.MockTransport(handle)

    def calls(self, method: str, path_prefix: str = "") -> list[httpx.Request]:
        return [
            r for r in self.requests if r.method == method and r.url.path.startswith(path_prefix)
        ]

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path, method = unquote(request.url.path), request.method
        if path == "/ping":
            return httpx.Response(200, text="pong\n")
        if path == "/v2/info":
            return _json(
                200,
                {
                    "name": "pallet",
                    "version": "0.1.0",
                    "elected": True,
                    "leader": "127.0.0.1:8080",
                    "http_config": {},
                },
            )
        if path == "/v2/apps" and method == "GET":
            return self._list_apps(request)
        if path == "/v2/apps" and method == "POST":
            return self._create(json.loads(request.content))
        if path == "/v2/deployments":
            self.advance()
            return _json(200, [self._deployment_json(d) for d in self.deployments.values()])
        if path == "/v2/queue":
            return _json(200, {"queue": self._queue()})
        if path == "/v2/tasks":
            return _json(200, {"tasks": list(self.tasks.values())})
        if path == "/v2/tasks/delete" and method == "POST":
            return self._kill(json.loads(request.content)["ids"], request)
        if path == "/v1/nodes":
            return _json(200, {"nodes": [self._node(n) for n in self.nodes]})
        if path.startswith("/v1/nodes/"):
            return self._get_node(path.removeprefix("/v1/nodes/"))
        if path.startswith("/v1/tasks/") and path.endswith("/logs"):
            return self._log(path.removeprefix("/v1/tasks/").removesuffix("/logs"), request)
        if path == "/v1/discovery":
            return _json(200, {"dns": None, "lbs": []})
        if path.startswith("/v1/discovery/apps/"):
            app_id = "/" + path.removeprefix("/v1/discovery/apps/").strip("/")
            if app_id not in self.apps:
                return _json(404, {"message": f"App '{app_id}' does not exist"})
            return _json(200, {"app": app_id, "dns": mesos_names(app_id), "vips": [], "lb": []})
        if path.startswith("/v2/apps/"):
            return self._app_route("/" + path.removeprefix("/v2/apps/"), method, request)
        return _json(404, {"message": f"no route {method} {path}"})

    # -- apps ----------------------------------------------------------------------
    def _app_json(self, app_id: str, embeds: list[str], prefix: str) -> dict[str, Any]:
        doc = dict(self.apps[app_id])
        mine = [t for t in self.tasks.values() if t["appId"] == app_id]
        if f"{prefix}.counts" in embeds:
            running = sum(t["state"] == "TASK_RUNNING" for t in mine)
            doc |= {
                "tasksStaged": len(mine) - running,
                "tasksRunning": running,
                "tasksHealthy": running if doc.get("healthChecks") else 0,
                "tasksUnhealthy": 0,
            }
        if f"{prefix}.deployments" in embeds:
            doc["deployments"] = [
                {"id": d.id} for d in self.deployments.values() if d.app_id == app_id
            ]
        if f"{prefix}.tasks" in embeds:
            doc["tasks"] = mine
        if f"{prefix}.lastTaskFailure" in embeds and app_id in self.failures:
            doc["lastTaskFailure"] = self.failures[app_id]
        return doc

    def _list_apps(self, request: httpx.Request) -> httpx.Response:
        embeds = request.url.params.get_list("embed")
        return _json(200, {"apps": [self._app_json(a, embeds, "apps") for a in self.apps]})

    def _create(self, body: dict[str, Any]) -> httpx.Response:
        details = []
        if not isinstance(body.get("cpus", 1), int | float) or body.get("cpus", 1) < 0.001:
            details.append({"path": "/cpus", "errors": ["error.min"]})
        if "id" not in body:
            details.append({"path": "/id", "errors": ["error.path.missing"]})
        if details:
            return _json(422, {"message": "Invalid JSON", "details": details})
        if "cmd" not in body and "args" not in body:
            message = (
                "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'."
            )
            return _json(
                422,
                {"message": "Object is not valid", "details": [{"path": "/", "errors": [message]}]},
            )
        app_id = "/" + body["id"].strip("/")
        if app_id in self.apps:
            return _json(409, {"message": f"An app with id [{app_id}] already exists."})
        self.apps[app_id] = {
            "cpus": 1.0,
            "mem": 128.0,
            "disk": 0.0,
            "gpus": 0,
            "instances": 1,
            "labels": {},
            "portDefinitions": [],
            "role": "*",
            **body,
            "id": app_id,
            "version": VERSION,
        }
        dep = self._deploy(app_id)
        return _json(
            201,
            self._app_json(app_id, ["app.deployments"], "app") | {"deployments": [{"id": dep.id}]},
            {"Marathon-Deployment-Id": dep.id},
        )

    def _deploy(self, app_id: str, **kw: Any) -> FakeDeployment:
        dep = FakeDeployment(f"dep-{next(self._deployment_ids)}", app_id, **kw)
        self.deployments[dep.id] = dep
        return dep

    def _result(self, dep: FakeDeployment) -> httpx.Response:
        return _json(
            200, {"deploymentId": dep.id, "version": LATER}, {"Marathon-Deployment-Id": dep.id}
        )

    def _locked(self, app_id: str, request: httpx.Request) -> httpx.Response | None:
        held = [d.id for d in self.deployments.values() if d.app_id == app_id]
        if held and request.url.params.get("force") != "true":
            return _json(
                409,
                {
                    "message": "App is locked by one or more deployments. Override "
                    "with the option '?force=true'.",
                    "deployments": [{"id": i} for i in held],
                },
            )
        return None

    def _app_route(self, rest: str, method: str, request: httpx.Request) -> httpx.Response:
        if "/tasks/" in rest:
            app_id, task_id = rest.split("/tasks/", 1)
            return self._kill([task_id], request, single=True)
        for suffix in ("/restart", "/tasks", "/versions"):
            if rest.endswith(suffix):
                app_id, action = rest.removesuffix(suffix), suffix
                break
        else:
            app_id, action = rest, ""
        if app_id not in self.apps:
            return _not_found(app_id)
        if action == "/tasks":
            return _json(200, {"tasks": [t for t in self.tasks.values() if t["appId"] == app_id]})
        if action == "/versions":
            return _json(200, {"versions": [VERSION]})
        if method == "GET":
            embeds = request.url.params.get_list("embed")
            return _json(200, {"app": self._app_json(app_id, embeds, "app")})
        if (locked := self._locked(app_id, request)) is not None:
            return locked
        if action == "/restart":
            n = sum(t["appId"] == app_id for t in self.tasks.values())
            return self._result(self._deploy(app_id, restart_left=n))
        if method in ("PUT", "PATCH"):
            changes = json.loads(request.content)
            if changes.get("instances", 0) < 0:
                return _json(
                    422,
                    {
                        "message": "Object is not valid",
                        "details": [{"path": "/instances", "errors": ["must be >= 0"]}],
                    },
                )
            self.apps[app_id] |= changes | {"version": LATER}
            return self._result(self._deploy(app_id))
        if method == "DELETE":
            del self.apps[app_id]
            return self._result(self._deploy(app_id, removing=True))
        return _json(405, {"message": "method not allowed"})

    # -- convergence ---------------------------------------------------------------
    def _start_task(self, app_id: str) -> None:
        n = next(self._task_ids)
        task_id = f"{app_id.strip('/').replace('/', '_')}.{n:04d}"
        self.tasks[task_id] = {
            "id": task_id,
            "appId": app_id,
            "host": "node-1.local",
            "slaveId": self.nodes[0],
            "state": "TASK_RUNNING",
            "ports": [31000 + n],
            "servicePorts": [],
            "ipAddresses": [],
            "healthCheckResults": [],
            "localVolumes": [],
            "role": "*",
            "stagedAt": VERSION,
            "startedAt": VERSION,
            "version": VERSION,
        }

    def advance(self) -> None:
        """One step of every deployment: start or stop one task, or finish."""
        for dep in list(self.deployments.values()):
            mine = sorted(t for t, doc in self.tasks.items() if doc["appId"] == dep.app_id)
            if not dep.removing and dep.app_id not in self.apps:
                del self.deployments[dep.id]  # the app was taken away behind its back
                continue
            target = 0 if dep.removing else self.apps[dep.app_id]["instances"]
            placeable = target - self.unplaceable.get(dep.app_id, 0)
            if dep.restart_left:
                del self.tasks[mine[0]]
                self._start_task(dep.app_id)
                dep.restart_left -= 1
            elif len(mine) > target:
                del self.tasks[mine[-1]]
            elif len(mine) < placeable:
                self._start_task(dep.app_id)
            elif len(mine) == target:
                del self.deployments[dep.id]

    def _deployment_json(self, dep: FakeDeployment) -> dict[str, Any]:
        if dep.removing:
            action = "StopApplication"
        elif dep.restart_left:
            action = "RestartApplication"
        else:
            action = "ScaleApplication"
        step = {"actions": [{"action": action, "app": dep.app_id}]}
        return {
            "id": dep.id,
            "version": LATER,
            "affectedApps": [dep.app_id],
            "affectedPods": [],
            "steps": [step],
            "currentActions": [{**step["actions"][0], "readinessCheckResults": []}],
            "currentStep": 1,
            "totalSteps": 1,
        }

    def _queue(self) -> list[dict[str, Any]]:
        items = []
        for app_id, count in self.unplaceable.items():
            if count and app_id in self.apps:
                items.append(
                    {
                        "app": self.apps[app_id],
                        "count": count,
                        "since": VERSION,
                        "delay": {"timeLeftSeconds": 0, "overdue": True},
                        "processedOffersSummary": {
                            "processedOffersCount": 2,
                            "unusedOffersCount": 2,
                            "rejectSummaryLastOffers": [
                                {"reason": "UnfulfilledRole", "declined": 0, "processed": 2},
                                {"reason": "InsufficientMemory", "declined": 2, "processed": 2},
                            ],
                        },
                    }
                )
        return items

    # -- tasks, nodes, logs --------------------------------------------------------
    def _kill(self, ids: list[str], request: httpx.Request, single: bool = False) -> httpx.Response:
        scale = request.url.params.get("scale") == "true"
        found = [self.tasks[i] for i in ids if i in self.tasks]
        if single and not found:
            return _json(404, {"message": f"Task '{ids[0]}' does not exist"})
        for task in found:
            del self.tasks[task["id"]]
        if scale and found:
            app_id = found[0]["appId"]
            self.apps[app_id]["instances"] -= len(found)
            return self._result(self._deploy(app_id))
        killed = [t | {"state": "TASK_KILLED"} for t in found]
        return _json(200, {"task": killed[0]} if single else {"tasks": killed})

    def _node(self, node_id: str) -> dict[str, Any]:
        tasks = [t for t, doc in self.tasks.items() if doc["slaveId"] == node_id]
        return node_json(node_id, tasks)

    def _get_node(self, node_id: str) -> httpx.Response:
        if node_id not in self.nodes:
            return _json(404, {"message": f"Node '{node_id}' does not exist"})
        doc = self._node(node_id)
        return _json(200, doc | {"task_details": [self.tasks[t] for t in doc["tasks"]]})

    def _log(self, task_id: str, request: httpx.Request) -> httpx.Response:
        stream = request.url.params.get("stream", "stdout")
        key = (task_id, stream)
        if key not in self.logs:
            return _json(404, {"message": f"Task '{task_id}' does not exist"})
        offset = int(request.url.params.get("offset", "0"))
        length = int(request.url.params.get("length", "65536"))
        log = self.logs[key]
        start = max(0, len(log) + offset) if offset < 0 else offset
        data = log[start : start + length]
        if not data and self.log_growth.get(task_id):
            # The task writes its next line between two reads; it ends after the last one.
            self.logs[key] += self.log_growth[task_id].pop(0)
            if not self.log_growth[task_id] and task_id in self.tasks:
                self.tasks[task_id]["state"] = "TASK_FINISHED"
        if self.log_json:
            doc = {
                "task_id": task_id,
                "stream": stream,
                "offset": start,
                "size": len(log),
                "next_offset": start + len(data),
                "data": data.decode(),
            }
            return _json(200, doc)
        return httpx.Response(
            200, content=data, headers={"Content-Type": "application/octet-stream"}
        )
