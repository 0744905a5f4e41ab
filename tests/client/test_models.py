"""Reading the documented JSON shapes into the client's dataclasses, and ``master_url``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from client.fake_master import node_json
from pallet.client import (
    App,
    Deployment,
    DeploymentRef,
    Node,
    NodeDetail,
    QueueItem,
    RejectCount,
    Task,
    master_url,
)
from pallet.model.errors import ValidationError

TASK = {
    "appId": "/prod/web",
    "healthCheckResults": [],
    "host": "10.0.0.5",
    "id": "prod_web.abc",
    "ipAddresses": [],
    "ports": [31001, 31002],
    "servicePorts": [],
    "slaveId": "node-3",
    "state": "TASK_RUNNING",
    "stagedAt": "2026-01-02T03:04:05.678Z",
    "startedAt": "2026-01-02T03:04:06.000Z",
    "version": "2026-01-02T03:04:00.000Z",
    "localVolumes": [],
    "role": "*",
}


def test_an_app_with_every_embed() -> None:
    doc = {
        "id": "/prod/web",
        "cmd": "python3 -m http.server $PORT0",
        "instances": 3,
        "cpus": 0.25,
        "mem": 64,
        "disk": 0,
        "gpus": 0,
        "constraints": [["hostname", "UNIQUE"], ["rack", "GROUP_BY", "2"]],
        "labels": {"tier": "front"},
        "role": "*",
        "version": "2026-01-02T03:04:00.000Z",
        "tasksStaged": 1,
        "tasksRunning": 2,
        "tasksHealthy": 0,
        "tasksUnhealthy": 0,
        "deployments": [{"id": "d-1"}],
        "tasks": [TASK],
        "lastTaskFailure": {
            "appId": "/prod/web",
            "host": "10.0.0.6",
            "message": "Command exited with status 127",
            "state": "TASK_FAILED",
            "taskId": "prod_web.old",
            "timestamp": "2026-01-02T03:04:01.000Z",
            "version": "2026-01-02T03:04:00.000Z",
        },
    }
    app = App.from_json(doc)
    assert (app.id, app.instances, app.cpus, app.mem) == ("/prod/web", 3, 0.25, 64.0)
    assert app.constraints == (("hostname", "UNIQUE"), ("rack", "GROUP_BY", "2"))
    assert (app.tasks_running, app.tasks_staged) == (2, 1)
    assert app.deploying and app.deployment_ids == ("d-1",)
    assert app.tasks == (Task.from_json(TASK),)
    assert app.last_task_failure is not None
    assert app.last_task_failure.message == "Command exited with status 127"
    assert app.raw is doc


def test_an_app_without_embeds_has_no_counts_and_marathons_defaults() -> None:
    app = App.from_json({"id": "/web", "args": ["sleep", "600"]})
    assert app.tasks_running is None and not app.deploying
    assert (app.instances, app.cpus, app.mem, app.disk) == (1, 1.0, 128.0, 0.0)
    assert app.command == "sleep 600"


def test_a_task() -> None:
    task = Task.from_json(TASK)
    assert task.node_id == "node-3" and task.ports == (31001, 31002) and task.live
    assert task.started_at == datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC)
    assert not Task.from_json(TASK | {"state": "TASK_FINISHED"}).live


def test_a_deployment_and_a_deployment_result() -> None:
    deployment = Deployment.from_json(
        {
            "id": "d-1",
            "version": "2026-01-02T03:04:00.000Z",
            "affectedApps": ["/web"],
            "affectedPods": [],
            "steps": [{"actions": [{"action": "ScaleApplication", "app": "/web"}]}],
            "currentActions": [
                {"action": "ScaleApplication", "app": "/web", "readinessCheckResults": []}
            ],
            "currentStep": 1,
            "totalSteps": 1,
        }
    )
    assert deployment.current_actions == (("ScaleApplication", "/web"),)
    assert (deployment.current_step, deployment.total_steps) == (1, 1)
    ref = DeploymentRef.from_json({"deploymentId": "d-1", "version": "v"})
    assert (ref.deployment_id, ref.version) == ("d-1", "v")


def test_a_queue_item_keeps_only_the_reasons_that_declined() -> None:
    item = QueueItem.from_json(
        {
            "app": {"id": "/web"},
            "count": 2,
            "delay": {"timeLeftSeconds": 0, "overdue": True},
            "since": "2026-01-02T03:04:00.000Z",
            "processedOffersSummary": {
                "processedOffersCount": 3,
                "unusedOffersCount": 3,
                "rejectSummaryLastOffers": [
                    {"reason": "UnfulfilledConstraint", "declined": 1, "processed": 3},
                    {"reason": "InsufficientCpus", "declined": 0, "processed": 2},
                    {"reason": "InsufficientMemory", "declined": 2, "processed": 2},
                ],
            },
        }
    )
    assert (item.app_id, item.count, item.nodes_considered) == ("/web", 2, 3)
    assert item.reasons == (
        RejectCount("UnfulfilledConstraint", 1, 3),
        RejectCount("InsufficientMemory", 2, 2),
    )


def test_a_node_and_its_detail() -> None:
    doc = node_json("node-1", ["t.1"], gpus=2)
    node = Node.from_json(doc)
    assert node.capacity.ports == ("31000-32000",) and node.capacity.gpus == 2.0
    assert (node.allocated.cpus, node.used.mem) == (0.5, 40.5)
    assert node.attributes == {"rack": "r1", "zone": "a"} and node.gpu_model == "A100"
    assert node.task_ids == ("t.1",)
    assert node.last_heartbeat == datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    detail = NodeDetail.from_json(doc | {"task_details": [TASK]})
    assert detail.node == node and detail.tasks == (Task.from_json(TASK),)
    silent = Node.from_json(doc | {"last_heartbeat": None, "gpu_model": None, "attributes": {}})
    assert silent.last_heartbeat is None and silent.gpu_model is None


@pytest.mark.parametrize(
    ("given", "url"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("127.0.0.1:9000", "http://127.0.0.1:9000"),
        ("https://master.example/", "https://master.example"),
        ("  master:8080  ", "http://master:8080"),
        ("http://m:1/prefix/", "http://m:1/prefix"),
    ],
)
def test_master_url(given: str, url: str) -> None:
    assert master_url(given) == url


@pytest.mark.parametrize("given", ["http://", "ftp://m:1", "http://a b", "://x"])
def test_master_url_refuses_what_is_not_one(given: str) -> None:
    with pytest.raises(ValidationError, match="is not a master URL; give one like http://"):
        master_url(given)


def test_master_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PALLET_MASTER", "m:7")
    assert master_url() == "http://m:7"
    monkeypatch.delenv("PALLET_MASTER")
    assert master_url() == "http://127.0.0.1:8080"
