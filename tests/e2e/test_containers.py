"""End to end on a real cluster: apps with images from a registry run under runc (the
image's entrypoint, or the app's cmd), fail clearly when the image cannot be had, are
refused when the definition is wrong, and survive their agent's SIGKILL untouched."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from oci import PushedImages

from .conftest import LiveCluster, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.root]


@pytest.fixture(scope="module")
def up_args() -> tuple[str, ...]:
    """Every agent has a share (a /24) of the container network ``dcos``."""
    return ("--network", "name=dcos,subnet=10.77.0.0/16")


def create(cluster: LiveCluster, app: dict[str, Any]) -> None:
    r = cluster.http.post("/v2/apps", json={"cpus": 0.05, "mem": 32, **app})
    assert r.status_code == 201, r.text


def stdout_of(cluster: LiveCluster, task_id: str) -> str:
    (path,) = cluster.state_dir.glob(f"agent-*/sandboxes/{task_id}/stdout")
    return path.read_text()


def container_pid(cluster: LiveCluster, task_id: str) -> int:
    """The pid (on the host) of the task container's first process."""
    (state,) = cluster.state_dir.glob(f"agent-*/runc/{task_id}/state.json")
    return int(json.loads(state.read_text())["init_process_pid"])


def test_an_image_runs_its_entrypoint_or_the_apps_cmd(
    cluster: LiveCluster, images: PushedImages
) -> None:
    create(
        cluster,
        {"id": "/img", "container": {"type": "DOCKER", "docker": {"image": images.sleeper}}},
    )
    create(
        cluster,
        {
            "id": "/img-cmd",
            "cmd": 'echo "cmd $IMAGE $MESOS_SANDBOX"; exec sleep 600',
            "container": {"type": "MESOS", "docker": {"image": images.sleeper}},
        },
    )
    (task,) = wait_for(lambda: cluster.running("/img", 1), 60, "/img running")
    assert (
        wait_for(lambda: stdout_of(cluster, task["id"]), 10, "output") == "entrypoint as 0 in /\n"
    )
    (task,) = wait_for(lambda: cluster.running("/img-cmd", 1), 60, "/img-cmd running")
    assert wait_for(lambda: stdout_of(cluster, task["id"]), 10, "output") == (
        "cmd sleeper /mnt/mesos/sandbox\n"
    )
    cluster.delete_app("/img")
    cluster.delete_app("/img-cmd")


def test_an_image_that_cannot_be_pulled_fails_the_task_with_the_registrys_answer(
    cluster: LiveCluster, images: PushedImages
) -> None:
    missing = images.sleeper.replace("sleeper:1", "missing:1")
    create(cluster, {"id": "/missing", "container": {"docker": {"image": missing}}})
    failure = wait_for(lambda: cluster.app("/missing").get("lastTaskFailure"), 30, "a failure")
    assert failure["state"] == "TASK_FAILED"
    assert (
        failure["message"].startswith(f"pull {missing}: ")
        and "manifest unknown" in failure["message"]
    )
    cluster.delete_app("/missing")


@pytest.mark.parametrize(
    ("container", "path"),
    [
        ({"type": "DOCKER", "docker": {"image": "Upper/Case"}}, "/container/docker/image"),
        ({"type": "RKT", "docker": {"image": "busybox"}}, "/container/type"),
        (
            {"type": "DOCKER", "docker": {"image": "busybox", "privileged": True}},
            "/container/docker/privileged",
        ),
        (
            {
                "type": "DOCKER",
                "docker": {"image": "busybox"},
                "volumes": [{"containerPath": "/x", "hostPath": "/etc", "mode": "RO"}],
            },
            "/container/volumes(0)/hostPath",
        ),
        (
            {
                "type": "DOCKER",
                "docker": {"image": "busybox"},
                "portMappings": [{"containerPort": 70000}],
            },
            "/container/portMappings(0)/containerPort",
        ),
    ],
)
def test_bad_container_definitions_are_422_with_the_path(
    cluster: LiveCluster, container: dict[str, Any], path: str
) -> None:
    r = cluster.http.post("/v2/apps", json={"id": "/bad", "container": container})
    assert r.status_code == 422, r.text
    assert path in [d["path"] for d in r.json()["details"]]
    assert cluster.http.get("/v2/apps/bad").status_code == 404


def test_containers_survive_their_agent_being_killed(
    cluster: LiveCluster, images: PushedImages
) -> None:
    create(
        cluster,
        {
            "id": "/kept",
            "instances": 2,
            "container": {"docker": {"image": images.sleeper}},
            "constraints": [["hostname", "CLUSTER", "127.0.0.2"]],
            # not replaced while the node is silent for a minute: a restart can take longer
            # than the cluster's 3 s grace on a busy machine (replacing would be right then)
            "unreachableStrategy": {"inactiveAfterSeconds": 60, "expungeAfterSeconds": 120},
        },
    )
    tasks = wait_for(lambda: cluster.running("/kept", 2), 60, "2 running")
    pids = {
        t["id"]: wait_for(lambda t=t: container_pid(cluster, t["id"]), 10, "container state")
        for t in tasks
    }
    agent = next(a for a in cluster.agents() if a["address"] == "127.0.0.2")
    log = Path(agent["work_dir"]) / "agent.log"
    registered = log.read_text().count("registered as")
    os.kill(agent["pid"], signal.SIGKILL)
    wait_for(lambda: log.read_text().count("registered as") > registered, 30, "re-registered")
    assert "adopted 2 tasks" in log.read_text()
    again = wait_for(lambda: cluster.running("/kept", 2), 30, "still 2 running")
    assert {t["id"] for t in again} == set(pids)
    for tid, pid in pids.items():
        assert container_pid(cluster, tid) == pid and os.path.exists(f"/proc/{pid}")
    cluster.delete_app("/kept")


def test_bridge_port_mappings_are_reachable_from_the_host(
    cluster: LiveCluster, images: PushedImages
) -> None:
    create(
        cluster,
        {
            "id": "/bridged",
            "cmd": "echo from-the-bridge > /tmp/index.html; exec httpd -f -p 8080 -h /tmp",
            "container": {
                "type": "DOCKER",
                "docker": {"image": images.busybox},
                "portMappings": [{"containerPort": 8080, "hostPort": 0, "name": "http"}],
            },
            "networks": [{"mode": "container/bridge"}],
            "healthChecks": [{"protocol": "HTTP", "portIndex": 0, "path": "/index.html"}],
        },
    )
    (task,) = wait_for(lambda: cluster.running("/bridged", 1), 60, "running")
    (port,) = task["ports"]
    body = wait_for(
        lambda: httpx.get(f"http://{task['host']}:{port}/index.html", timeout=2).text,
        30,
        "the server through the host port",
    )
    assert body == "from-the-bridge\n"
    healthy = wait_for(
        lambda: cluster.app("/bridged")["tasks"][0].get("healthCheckResults"), 60, "a health result"
    )
    assert healthy[0]["alive"] is True
    cluster.delete_app("/bridged")


def test_tasks_on_a_container_network_reach_each_other_by_their_own_ips_across_agents(
    cluster: LiveCluster, images: PushedImages
) -> None:
    create(
        cluster,
        {
            "id": "/cnet",
            "instances": 2,
            "cmd": 'echo "$HOST" > /tmp/index.html; exec httpd -f -p 8080 -h /tmp',
            "container": {
                "type": "MESOS",
                "docker": {"image": images.busybox},
                "portMappings": [{"containerPort": 8080, "name": "http"}],
            },
            "networks": [{"mode": "container", "name": "dcos"}],
            "constraints": [["hostname", "UNIQUE"]],
            "healthChecks": [{"protocol": "MESOS_HTTP", "portIndex": 0, "path": "/index.html"}],
        },
    )
    tasks = wait_for(
        lambda: [t for t in cluster.running("/cnet", 2) if t["ipAddresses"]], 60, "running"
    )
    assert len(tasks) == 2 and len({t["slaveId"] for t in tasks}) == 2
    ips = [t["ipAddresses"][0]["ipAddress"] for t in tasks]
    # each agent's own /24 of 10.77.0.0/16, the first address after its gateway
    assert all(ip.startswith("10.77.") and ip.endswith(".2") for ip in ips) and len(set(ips)) == 2
    assert all(t["ipAddresses"][0]["protocol"] == "IPv4" for t in tasks)

    def get(ip: str) -> str | None:
        try:
            return httpx.get(f"http://{ip}:8080/index.html", timeout=2).text
        except httpx.HTTPError:
            return None  # not listening yet

    for t, ip in zip(tasks, ips, strict=True):
        assert wait_for(lambda ip=ip: get(ip), 30, "the task from the host") == f"{t['host']}\n"
    # From the first task's network namespace to the second task, on another agent.
    netns = f"/proc/{container_pid(cluster, tasks[0]['id'])}/ns/net"
    fetch = ["nsenter", f"--net={netns}", "busybox", "wget", "-q", "-O", "-"]
    done = subprocess.run(
        [*fetch, f"http://{ips[1]}:8080/index.html"], capture_output=True, text=True, timeout=30
    )
    assert (done.returncode, done.stdout) == (0, f"{tasks[1]['host']}\n"), done.stderr
    # Its health checks probe the container port at the task's own address.
    healthy = wait_for(
        lambda: all(
            t.get("healthCheckResults", [{}])[0].get("alive") for t in cluster.app("/cnet")["tasks"]
        ),
        60,
        "both healthy",
    )
    assert healthy
    cluster.delete_app("/cnet")


def test_a_persistent_volume_keeps_its_data_on_its_node_until_the_app_is_deleted(
    cluster: LiveCluster,
) -> None:
    volume = {"containerPath": "data", "mode": "RW", "persistent": {"type": "root", "size": 16}}
    create(
        cluster,
        {
            "id": "/pv",
            "cmd": "echo run >> data/runs; cat data/runs; exec sleep 600",
            "container": {"type": "MESOS", "volumes": [volume]},
        },
    )
    (task,) = wait_for(lambda: cluster.running("/pv", 1), 60, "/pv running")
    assert wait_for(lambda: stdout_of(cluster, task["id"]), 10, "output") == "run\n"
    (directory,) = cluster.state_dir.glob("agent-*/volumes/pv#data#*")
    # Killed (Marathon's kill-and-restart): the next task is on the same node, with the data.
    r = cluster.http.delete(f"/v2/apps/pv/tasks/{task['id']}")
    assert r.status_code == 200, r.text
    (again,) = wait_for(
        lambda: [t for t in cluster.running("/pv", 1) if t["id"] != task["id"]], 60, "relaunch"
    )
    assert again["slaveId"] == task["slaveId"]
    assert wait_for(lambda: stdout_of(cluster, again["id"]), 10, "output") == "run\nrun\n"
    assert list(cluster.state_dir.glob("agent-*/volumes/pv#data#*")) == [directory]
    # Deleting the app destroys the volume on its agent.
    cluster.delete_app("/pv")
    wait_for(lambda: not directory.exists(), 30, "the volume destroyed")


def test_a_pod_with_an_image_container_shares_a_volume_with_its_command_container(
    cluster: LiveCluster, images: PushedImages
) -> None:
    pod = {
        "id": "/duo",
        "volumes": [{"name": "shared"}],
        "containers": [
            {
                "name": "writer",
                "image": {"kind": "DOCKER", "id": images.busybox},
                "exec": {"command": {"shell": "echo $IMAGE wrote > /shared/note; exec sleep 600"}},
                "resources": {"cpus": 0.05, "mem": 32},
                "volumeMounts": [{"name": "shared", "mountPath": "/shared"}],
            },
            {
                "name": "reader",
                "exec": {
                    "command": {
                        "shell": "until [ -s data/note ]; do sleep 0.2; done; "
                        "cat data/note; exec sleep 600"
                    }
                },
                "resources": {"cpus": 0.05, "mem": 32},
                "volumeMounts": [{"name": "shared", "mountPath": "data"}],
            },
        ],
    }
    r = cluster.http.post("/v2/pods", json=pod)
    assert r.status_code == 201, r.text

    def stable() -> str | None:
        status = cluster.http.get("/v2/pods/duo::status").json()
        instances = status["instances"]
        if status["status"] == "STABLE" and len(instances) == 1:
            return str(instances[0]["id"])
        return None

    task_id = wait_for(stable, 60, "the pod stable")

    def read(container: str) -> str:
        r = cluster.http.get(f"/v1/tasks/{task_id}/logs", params={"container": container})
        return str(r.json().get("data", "")) if r.status_code == 200 else ""

    # the image container wrote into the volume; the command container read it through
    # its own mount of the same volume
    assert wait_for(lambda: read("reader"), 30, "the reader's log") == "busybox wrote\n"
    assert (cluster.state_dir.glob(f"agent-*/runc/{task_id}+writer/state.json")).__next__()
    r = cluster.http.delete("/v2/pods/duo")
    assert r.status_code == 202, r.text
    wait_for(lambda: not cluster.http.get("/v2/deployments").json(), 60, "pod deleted")
    wait_for(
        lambda: not list(cluster.state_dir.glob(f"agent-*/runc/{task_id}+*")), 30, "runc state gone"
    )
    assert not list(cluster.state_dir.glob(f"agent-*/containers/{task_id}+*"))
