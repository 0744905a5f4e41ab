"""The master–agent messages: every one round-trips through its JSON, bad fields are
named, unknown fields are refused, and what the master sends the agent can read."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pallet.model import (
    Acks,
    CheckProtocol,
    ContainerSpec,
    DesiredSet,
    FetchUri,
    HealthCheckSpec,
    HealthResult,
    Heartbeat,
    HttpResponse,
    Node,
    PersistentVolume,
    ReadinessCheckSpec,
    ReadinessResult,
    Reason,
    Registration,
    StatusBatch,
    TaskSpec,
    TaskState,
    TaskStatus,
    TaskUsage,
    ValidationError,
    parse_port_ranges,
)
from pallet.model.pods import PodContainer

SPEC = TaskSpec(
    task_id="prod_web.1",
    app_id="/prod/web",
    app_version="2026-12-06T00:00:00.000Z",
    cmd="python3 -m http.server $PORT0",
    env={"A": "b"},
    cpu_milli=250,
    mem_mib=64,
    disk_mib=10,
    gpu_milli=1000,
    gpu_devices=(1,),
    ports=(31000, 31001),
    port_names=("http", "admin"),
    kill_grace_seconds=5.0,
    labels={"team": "x"},
    health_checks=(
        HealthCheckSpec(protocol=CheckProtocol.HTTP, port=31000, path="/health"),
        HealthCheckSpec(protocol=CheckProtocol.COMMAND, command="true", max_consecutive_failures=0),
    ),
    readiness_checks=(
        ReadinessCheckSpec(
            name="ready", port_name="http", port=31000, status_codes=(200, 204), interval=1.0
        ),
    ),
)

STATUS = TaskStatus(
    task_id="prod_web.1",
    state=TaskState.RUNNING,
    seq=7,
    reason=Reason.CONTAINER_LIMITATION_MEMORY,
    message="m",
    exit_code=None,
    signal=9,
    healthy=False,
    health=(HealthResult(False, 2, 1.0, 2.0, 3.0, "HTTP 503"),),
    readiness=(ReadinessResult("ready", True, HttpResponse(200, "text/plain", "ok")),),
)

NODE = Node.build(
    "node-1",
    cpu_milli=2000,
    mem_mib=1024,
    disk_mib=100,
    gpus=2,
    gpu_model="A100",
    hostname="127.0.0.2",
    ports=parse_port_ranges("[31000-31099]"),
    attributes={"rack": "r1"},
    role="slave_public",
)

MESSAGES: list[Any] = [
    (SPEC, TaskSpec.from_json),
    (
        TaskSpec(
            "img.1",
            cmd="serve",
            user="app",
            fetch=(FetchUri("http://x/a.tgz", cache=True, dest_path="lib/a.tgz"),),
            container=ContainerSpec("DOCKER", "127.0.0.1:5000/app:1", force_pull=True),
        ),
        TaskSpec.from_json,
    ),
    (DesiredSet(42, (SPEC,)), DesiredSet.from_json),
    (
        DesiredSet(
            43,
            (TaskSpec("db.1", cmd="x", persistent_volumes=(PersistentVolume("d", 5, "db#d#s"),)),),
            ("db#d#s",),
        ),
        DesiredSet.from_json,
    ),
    (STATUS, TaskStatus.from_json),
    (TaskStatus("a.1", TaskState.FINISHED, 1, exit_code=0), TaskStatus.from_json),
    (StatusBatch((STATUS,)), StatusBatch.from_json),
    (Acks((("a.1", 3), ("b.2", 1))), Acks.from_json),
    (Registration(NODE, "http://127.0.0.2:5051", "boot"), Registration.from_json),
    (Heartbeat({"a.1": TaskUsage(1.5, 10, 20)}), Heartbeat.from_json),
]


@pytest.mark.parametrize(("message", "read"), MESSAGES, ids=lambda m: type(m).__name__)
def test_every_message_round_trips_through_json(message: Any, read: Any) -> None:
    wire = json.loads(json.dumps(message.to_json()))
    assert read(wire) == message


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ({"task_id": "a/b", "cmd": "x"}, "/task_id"),
        ({"task_id": "a", "cmd": "x", "executor": {"type": "DOCKER"}}, "/executor"),
        ({"task_id": "a", "cmd": "x", "container": {"type": "RKT"}}, "/container/type"),
        ({"task_id": "a", "container": {"image": "Not Valid"}}, "/container/docker/image"),
        (
            {"task_id": "a", "fetch": [{"uri": "http://x/a", "dest_path": "../a"}]},
            "/fetch/destPath",
        ),
        ({"task_id": "a", "cmd": "x", "cpu_milli": "1"}, "/cpu_milli"),
        (
            {
                "task_id": "a",
                "cmd": "x",
                "persistent_volumes": [{"container_path": "a/b", "size": 1}],
            },
            "/container/volumes/containerPath",
        ),
        (
            {
                "task_id": "a",
                "cmd": "x",
                "persistent_volumes": [{"container_path": "d", "size": 1}],
            },
            "/persistent_volumes/id",
        ),
        (
            {
                "task_id": "a",
                "cmd": "x",
                "persistent_volumes": [{"container_path": "d", "size": 1, "id": "../x"}],
            },
            "/container/volumes/persistent/id",
        ),
        ({"task_id": "a", "cmd": "x", "ports": [70000]}, "/ports/0"),
        ({"task_id": "a", "cmd": "x", "env": {"A": 1}}, "/env/A"),
        ({"task_id": "a", "cmd": "x", "gpu_devices": [-1]}, "/gpu_devices/0"),
        ({"task_id": "a", "cmd": "x", "gpu_devices": [1, 1]}, "/gpu_devices"),
        (
            {"task_id": "a", "cmd": "x", "health_checks": [{"protocol": "GOPHER"}]},
            "/health_checks/0/protocol",
        ),
        (
            {"task_id": "a", "cmd": "x", "readiness_checks": [{"status_codes": [42]}]},
            "/readiness_checks/0/status_codes/0",
        ),
    ],
)
def test_a_bad_launch_names_its_field(doc: dict[str, Any], path: str) -> None:
    with pytest.raises(ValidationError) as info:
        TaskSpec.from_json(doc)
    assert info.value.field == path


def test_a_launch_written_with_the_old_resource_keys_still_reads() -> None:
    # Agents' checkpoints and the store's records written before the keys were named
    # by their units say cpus/mem/disk/gpus for millicpus, MiB, MiB and milli-GPUs.
    doc = SPEC.to_json()
    assert {"cpu_milli", "mem_mib", "disk_mib", "gpu_milli"} <= set(doc)
    old = {k: v for k, v in doc.items() if not k.endswith(("_milli", "_mib"))}
    old |= {"cpus": 250, "mem": 64, "disk": 10, "gpus": 1000}
    assert TaskSpec.from_json(old).resources == SPEC.resources
    pod = PodContainer("web", shell="sleep 9", cpu_milli=500, mem_mib=16, disk_mib=2)
    legacy = {k: v for k, v in pod.to_json().items() if not k.endswith(("_milli", "_mib"))}
    legacy |= {"cpus": 500, "mem": 16, "disk": 2}
    assert PodContainer.from_json(legacy) == pod


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ({"statuses": [{"task_id": "a", "state": "TASK_RUNNING", "seq": 0}]}, "/statuses/0/seq"),
        ({"statuses": [{"task_id": "a", "state": "RUNNING", "seq": 1}]}, "/statuses/0/state"),
        (
            {"statuses": [{"task_id": "a", "state": "TASK_RUNNING", "seq": 1, "reason": "X"}]},
            "/statuses/0/reason",
        ),
        (
            {
                "statuses": [
                    {"task_id": "a", "state": "TASK_RUNNING", "seq": 1, "health": [{"alive": 1}]}
                ]
            },
            "/statuses/0/health/0/alive",
        ),
        ({"statuses": [], "extra": 1}, "/extra"),
    ],
)
def test_a_bad_status_names_its_field(doc: dict[str, Any], path: str) -> None:
    with pytest.raises(ValidationError) as info:
        StatusBatch.from_json(doc)
    assert info.value.field == path


def test_checks_resolve_their_ports() -> None:
    health = HealthCheckSpec(port_index=1)
    assert health.resolved((31000, 31001)).port == 31001
    assert health.resolved(()).port is None and health.resolved(()).problem is not None
    ready = ReadinessCheckSpec(port_name="admin")
    assert ready.resolved((31000, 31001), ("http", "admin")).port == 31001
    assert ready.resolved((31000,), ("http",)).port is None
