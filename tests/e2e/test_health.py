"""Health checks end to end on a real cluster (``pallet up``): the agents probe, the
master counts, renders Marathon's ``healthCheckResults`` and kills what stays unhealthy."""

from __future__ import annotations

import contextlib
import os
import signal
from typing import Any

import psutil
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


POD: dict[str, Any] = {
    "id": "/pods/shop",
    "scaling": {"kind": "fixed", "instances": 2},
    "containers": [
        {
            "name": "web",
            "exec": {"command": {"shell": "exec python3 -m http.server $ENDPOINT_HTTP"}},
            "resources": {"cpus": 0.05, "mem": 64},
            "endpoints": [{"name": "http", "hostPort": 0}],
            "healthCheck": {
                "http": {"endpoint": "http", "path": "/"},
                "gracePeriodSeconds": 30,
                "intervalSeconds": 1,
                "timeoutSeconds": 2,
            },
        },
        {
            "name": "probe",
            # reaches its sibling over the shared (host) network, then idles
            "exec": {
                "command": {
                    "shell": 'until python3 -c "import os, urllib.request as u; '
                    "u.urlopen('http://127.0.0.1:' + os.environ['ENDPOINT_HTTP'])\" "
                    "2>/dev/null; do sleep 0.5; done; touch reached; exec sleep 3601"
                }
            },
            "resources": {"cpus": 0.05, "mem": 32},
        },
    ],
}


def _stable(cluster: LiveCluster, count: int) -> list[dict[str, Any]] | None:
    status = cluster.http.get("/v2/pods/pods/shop::status").json()
    instances = [i for i in status["instances"] if i["status"] == "STABLE"]
    if status["status"] == "STABLE" and len(status["instances"]) == count == len(instances):
        return instances
    return None


def _processes(cluster: LiveCluster, task_id: str) -> list[tuple[int, str, str, str]]:
    """(pid, command line, cgroups, cwd) of each process in the instance's sandbox; the
    ones that end while being read are left out."""
    out = []
    for p in cluster.task_processes(task_id):
        with contextlib.suppress(psutil.Error, OSError):
            with open(f"/proc/{p.pid}/cgroup") as f:
                cgroups = f.read()
            out.append((p.pid, " ".join(p.cmdline()), cgroups, p.cwd()))
    return out


def test_a_pod_runs_its_containers_together_and_fails_as_a_unit(cluster: LiveCluster) -> None:
    r = cluster.http.post("/v2/pods", json=POD)
    assert r.status_code == 201, r.text
    instances = wait_for(lambda: _stable(cluster, 2), 60, "2 stable pod instances")
    for inst in instances:
        web = inst["containers"][0]
        assert web["endpoints"][0]["healthy"] is True
        port = web["endpoints"][0]["allocatedHostPort"]
        assert cluster.http.get(f"http://{inst['agentHostname']}:{port}/").status_code == 200

        def settled(task_id: str = inst["id"]) -> list[tuple[int, str, str, str]] | None:
            procs = _processes(cluster, task_id)
            reached = any(os.path.exists(os.path.join(p[3], "reached")) for p in procs)
            # the sleeper itself, not the shell whose command line names it: between
            # `touch reached` and its exec the shell alone matched, and a test that then
            # looked for the sleeper found none (once, on a loaded machine)
            done = any(p[1] == "sleep 3601" for p in procs)
            return procs if reached and done else None

        # the probe reached the web container through the shared (host) network
        procs = wait_for(settled, 60, "the probe reaching its sibling")
        # the supervisor and each container: processes of their own, in one cgroup
        commands = [p[1] for p in procs]
        assert any("http.server" in c for c in commands)
        assert any(c.startswith("/bin/bash -c") for c in commands)
        assert len({p[2] for p in procs}) == 1

    # a container that dies takes its instance down with it; a new instance replaces it
    victim = instances[0]
    procs = _processes(cluster, victim["id"])
    web_pid = next(p[0] for p in procs if "http.server" in p[1])
    sleeper = next(p[0] for p in procs if p[1] == "sleep 3601")
    os.kill(sleeper, signal.SIGKILL)

    def replaced() -> list[dict[str, Any]] | None:
        now = _stable(cluster, 2)
        return now if now and victim["id"] not in {i["id"] for i in now} else None

    wait_for(replaced, 60, "the failed instance replaced")
    wait_for(lambda: not psutil.pid_exists(web_pid), 30, "the web container stopped with it")
    status = cluster.http.get("/v2/pods/pods/shop::status").json()
    (ended,) = status["terminationHistory"]
    assert ended["instanceID"] == victim["id"]
    assert "container probe was killed by signal 9" in ended["message"]

    r = cluster.http.delete("/v2/pods/pods/shop")
    assert r.status_code == 202, r.text
    wait_for(lambda: not cluster.http.get("/v2/deployments").json(), 60, "pod deleted")
    assert cluster.http.get("/v2/pods").json() == []
    wait_for(
        lambda: not any(cluster.task_processes(i["id"]) for i in instances), 30, "no process left"
    )
