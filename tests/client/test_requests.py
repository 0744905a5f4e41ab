"""What each client call sends: method, path, query and body, by Marathon's routes."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from pallet.client import Client, app_path


class Recorder:
    """Answers every request with a canned JSON body and keeps the requests."""

    def __init__(self, answer: Any = None, status: int = 200) -> None:
        self.answer = {} if answer is None else answer
        self.status = status
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, json=self.answer)


REF = {"deploymentId": "d-1", "version": "2026-01-02T03:04:05.678Z"}


@pytest.mark.parametrize(
    ("call", "answer", "method", "target", "body"),
    [
        # app ids lose their leading slash in the path; force is always explicit
        (lambda c: c.scale_app("/prod/web", 3), REF, "PUT", "/v2/apps/prod/web?force=false",
         {"instances": 3}),
        (lambda c: c.scale_app("web", 0, force=True), REF, "PUT", "/v2/apps/web?force=true",
         {"instances": 0}),
        (lambda c: c.update_app("/web", {"cmd": "x"}, partial=True), REF, "PATCH",
         "/v2/apps/web?force=false", {"cmd": "x"}),
        (lambda c: c.restart_app("/a/b"), REF, "POST", "/v2/apps/a/b/restart?force=false", None),
        (lambda c: c.delete_app("/web", force=True), REF, "DELETE", "/v2/apps/web?force=true",
         None),
        (lambda c: c.app_versions("/web"), {"versions": ["v1"]}, "GET", "/v2/apps/web/versions",
         None),
        (lambda c: c.list_tasks(), {"tasks": []}, "GET", "/v2/tasks", None),
        (lambda c: c.list_tasks("/prod/web"), {"tasks": []}, "GET", "/v2/apps/prod/web/tasks",
         None),
        (lambda c: c.kill_tasks(["a.1", "b.2"], scale=True), REF, "POST",
         "/v2/tasks/delete?scale=true&force=false", {"ids": ["a.1", "b.2"]}),
        (lambda c: c.kill_app_task("/web", "web.1"), {"task": {"id": "web.1", "appId": "/web",
         "state": "TASK_KILLED", "host": "h"}}, "DELETE", "/v2/apps/web/tasks/web.1?scale=false",
         None),
        (lambda c: c.list_deployments(), [], "GET", "/v2/deployments", None),
        (lambda c: c.list_queue(), {"queue": []}, "GET", "/v2/queue", None),
        (lambda c: c.list_nodes(), {"nodes": []}, "GET", "/v1/nodes", None),
        (lambda c: c.get_node("n/1"), {"id": "n/1"}, "GET", "/v1/nodes/n%2F1", None),
        (lambda c: c.info(), {"name": "pallet", "version": "0.1.0", "elected": True}, "GET",
         "/v2/info", None),
        (lambda c: c.list_apps(embed=["apps.tasks"], id="/prod"), {"apps": []}, "GET",
         "/v2/apps?embed=apps.tasks&id=%2Fprod", None),
    ],
)  # fmt: skip
def test_each_call_uses_the_documented_route(
    call: Any, answer: Any, method: str, target: str, body: Any
) -> None:
    recorder = Recorder(answer)
    with Client("http://m:8080", transport=httpx.MockTransport(recorder)) as client:
        call(client)
    (request,) = recorder.requests
    assert request.method == method
    assert request.url.raw_path.decode() == target
    assert (json.loads(request.content) if request.content else None) == body


def test_get_app_asks_for_counts_tasks_deployments_and_failure() -> None:
    recorder = Recorder({"app": {"id": "/web"}})
    Client(transport=httpx.MockTransport(recorder)).get_app("/web")
    embeds = recorder.requests[0].url.params.get_list("embed")
    assert embeds == ["app.counts", "app.deployments", "app.tasks", "app.lastTaskFailure"]


def test_task_log_asks_for_a_range_of_one_stream() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"\x00raw bytes\xff")

    client = Client(transport=httpx.MockTransport(answer))
    chunk = client.task_log("web.1", "stderr", 10, 5)
    assert (chunk.data, chunk.offset, chunk.next_offset) == (b"\x00raw bytes\xff", 10, 21)
    assert seen[0].url.raw_path.decode() == "/v1/tasks/web.1/logs?stream=stderr&offset=10&length=5"


def test_create_app_takes_the_deployment_from_the_header_when_the_body_has_none() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) | {"version": "2026-01-02T03:04:05.678Z"}
        return httpx.Response(201, json=body, headers={"Marathon-Deployment-Id": "d-7"})

    app = Client(transport=httpx.MockTransport(answer)).create_app({"id": "/web", "cmd": "x"})
    assert app.deployment_ids == ("d-7",)
    assert app.raw["deployments"] == [{"id": "d-7"}]


def test_ping_reads_text() -> None:
    client = Client(transport=httpx.MockTransport(lambda r: httpx.Response(200, text="pong\n")))
    assert client.ping() == "pong"


@pytest.mark.parametrize(
    ("app_id", "path"),
    [
        ("/web", "/v2/apps/web"),
        ("prod/web/", "/v2/apps/prod/web"),
        ("//prod//web", "/v2/apps/prod/web"),
        ("/a b", "/v2/apps/a%20b"),
    ],
)
def test_app_path(app_id: str, path: str) -> None:
    assert app_path(app_id) == path


def test_app_path_refuses_the_root() -> None:
    with pytest.raises(ValueError, match="names no app"):
        app_path("/")
