"""Health checks end to end on a real cluster (``pallet up``): the agents probe, the
master counts, renders Marathon's ``healthCheckResults`` and kills what stays unhealthy."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import LiveCluster, wait_for

pytestmark = pytest.mark.slow


def create(cluster: LiveCluster, app: dict[str, Any]) -> None:
    r = cluster.http.post("/v2/apps", json={"cpus": 0.05, "mem": 64, **app})
    assert r.status_code == 201, r.text


def test_http_health_check_makes_tasks_healthy(cluster: LiveCluster) -> None:
    create(
        cluster,
        {
            "id": "/healthy-web",
            "cmd": "exec python3 -m http.server $PORT0",
            "instances": 2,
            "portDefinitions": [{"port": 0}],
            "healthChecks": [
                {
                    "protocol": "HTTP",
                    "path": "/",
                    "portIndex": 0,
                    "gracePeriodSeconds": 30,
                    "intervalSeconds": 1,
                    "timeoutSeconds": 2,
                    "maxConsecutiveFailures": 3,
                }
            ],
        },
    )

    def healthy() -> dict[str, Any] | None:
        app = cluster.app("/healthy-web")
        return app if app["tasksHealthy"] == 2 else None

    app = wait_for(healthy, 30, "2 healthy tasks")
    assert app["tasksUnhealthy"] == 0
    for task in app["tasks"]:
        (result,) = task["healthCheckResults"]
        assert result["alive"] is True
        assert result["consecutiveFailures"] == 0
        assert result["instanceId"] == task["id"]
        assert result["firstSuccess"] and result["lastSuccess"]
    # the deployment ends once the new tasks are healthy (Marathon's rule)
    wait_for(lambda: not cluster.app("/healthy-web")["deployments"], 30, "deployment done")
    tasks = cluster.http.get("/v2/tasks").json()["tasks"]
    assert all(t["healthCheckResults"] for t in tasks if t["appId"] == "/healthy-web")
    cluster.delete_app("/healthy-web")


def test_task_failing_its_health_check_is_killed_and_replaced(cluster: LiveCluster) -> None:
    create(
        cluster,
        {
            "id": "/unhealthy",
            "cmd": "sleep 600",
            "backoffSeconds": 1,
            "healthChecks": [
                {
                    "protocol": "COMMAND",
                    "command": {"value": "echo not today >&2; false"},
                    "gracePeriodSeconds": 1,
                    "intervalSeconds": 1,
                    "timeoutSeconds": 2,
                    "delaySeconds": 0,
                    "maxConsecutiveFailures": 2,
                }
            ],
        },
    )
    (first,) = wait_for(lambda: cluster.running("/unhealthy", 1), 30, "first task running")
    seen_unhealthy = wait_for(
        lambda: (
            cluster.app("/unhealthy")["tasksUnhealthy"] == 1
            or cluster.app("/unhealthy").get("lastTaskFailure")
        ),
        30,
        "an unhealthy verdict",
    )
    assert seen_unhealthy

    def replaced() -> dict[str, Any] | None:
        app = cluster.app("/unhealthy")
        ids = [t["id"] for t in app["tasks"]]
        return app if ids and first["id"] not in ids else None

    app = wait_for(replaced, 30, "the unhealthy task replaced")
    failure = app["lastTaskFailure"]
    assert failure["taskId"] != "" and failure["state"] == "TASK_KILLED"
    wait_for(lambda: not cluster.task_processes(first["id"]), 10, "killed task's processes gone")
    cluster.delete_app("/unhealthy")


def test_bad_health_checks_are_422_naming_the_field(cluster: LiveCluster) -> None:
    r = cluster.http.post(
        "/v2/apps",
        json={
            "id": "/bad-check",
            "cmd": "sleep 600",
            "portDefinitions": [{"port": 0}],
            "healthChecks": [{"protocol": "HTTP", "portIndex": 3}, {"protocol": "COMMAND"}],
        },
    )
    assert r.status_code == 422, r.text
    paths = {d["path"] for d in r.json()["details"]}
    assert {"/healthChecks(0)", "/healthChecks(1)/command"} <= paths
