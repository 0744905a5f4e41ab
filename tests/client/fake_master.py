"""A test double of what only a real agent can serve: task logs (``/v1/tasks/{id}/logs``),
with the task list a log follower polls (``/v2/tasks``), for ``httpx.MockTransport``.

Everything else the client and the CLI ask is tested against the master's real API
(``client.real_master.RealMaster``). A log grows by one piece per read that finds nothing
new (``log_growth``), and its task ends after the last piece, so a follower can be tested
without real time.
"""

from __future__ import annotations

import itertools
from typing import Any
from urllib.parse import unquote

import httpx

VERSION = "2026-01-02T03:04:05.678Z"


def _json(status: int, doc: Any) -> httpx.Response:
    return httpx.Response(status, json=doc)


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
    """Live tasks and their logs behind one request handler."""

    def __init__(self) -> None:
        self.tasks: dict[str, dict[str, Any]] = {}
        self.logs: dict[tuple[str, str], bytes] = {}
        self.log_growth: dict[str, list[bytes]] = {}
        self.log_json = False
        """Answer log reads as ``{"data", "offset", "next_offset", "size"}``, not raw bytes."""
        self.requests: list[httpx.Request] = []
        self._task_ids = itertools.count(1)

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
        if path == "/v2/tasks" and method == "GET":
            live = [t for t in self.tasks.values() if t["state"] == "TASK_RUNNING"]
            return _json(200, {"tasks": live})
        if path.startswith("/v1/tasks/") and path.endswith("/logs") and method == "GET":
            return self._log(path.removeprefix("/v1/tasks/").removesuffix("/logs"), request)
        return _json(404, {"message": f"no route {method} {path} in the fake"})

    def start_task(self, app_id: str) -> str:
        n = next(self._task_ids)
        task_id = f"{app_id.strip('/').replace('/', '_')}.{n:04d}"
        self.tasks[task_id] = {
            "id": task_id,
            "appId": app_id,
            "host": "node-1.local",
            "slaveId": "node-1",
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
        return task_id

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
