"""Bodies in ``/v1/openapi.json`` that routes read themselves (``api.openapi``,
``api.openapi_bodies``): every route the master serves to agents is listed with its
parameters and body, and so are Metronome's job bodies; what agents and Metronome
clients write validates against the schemas, and bodies generated from the schemas are
read or refused with the field named (a 422), never anything else."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import httpx
import pytest

from pallet.api.marathon import MarathonApiError
from pallet.api.metronome.jobspec import JobSpecError, job_from_json, schedule_from_json
from pallet.api.pod_spec import parse_pod
from pallet.api.routes_agent import ROUTES
from pallet.model import (
    HealthResult,
    Heartbeat,
    HttpResponse,
    Node,
    ReadinessResult,
    Reason,
    Registration,
    StatusBatch,
    TaskState,
    TaskStatus,
    TaskUsage,
    ValidationError,
    parse_port_ranges,
)
from pallet.model.node import NodeDisk

jsonschema_rs = pytest.importorskip("jsonschema_rs", reason="the test extra installs it")

pytestmark = pytest.mark.anyio

NODE = replace(
    Node.build(
        "node-1",
        cpu_milli=2000,
        mem_mib=1024,
        disk_mib=100,
        gpus=2,
        gpu_model="A100",
        hostname="127.0.0.2",
        ports=parse_port_ranges("[31000-31099,32000]"),
        attributes={"rack": "r1"},
        role="slave_public",
        networks=("dcos",),
    ),
    disks=(NodeDisk("mount", "/mnt/disk0", 500),),
)
STATUSES = StatusBatch(
    (
        TaskStatus(
            "web.1",
            TaskState.RUNNING,
            7,
            reason=Reason.CONTAINER_LIMITATION_MEMORY,
            message="m",
            signal=9,
            healthy=False,
            health=(HealthResult(False, 2, 1.0, 2.0, 3.0, "HTTP 503"),),
            readiness=(ReadinessResult("ready", True, HttpResponse(200, "text/plain", "ok")),),
            ip_addresses=("9.0.0.2", "fd00::2"),
        ),
        TaskStatus("web.2", TaskState.FINISHED, 1, exit_code=0),
    )
)
WRITTEN: list[tuple[str, Any, Any]] = [
    ("AgentRegistration", Registration(NODE, "127.0.0.2:5051", "run-1"), Registration.from_json),
    (
        "AgentRegistration",
        Registration(Node.build("n", cpu_milli=1, mem_mib=1)),
        Registration.from_json,
    ),
    ("AgentStatusBatch", STATUSES, StatusBatch.from_json),
    ("AgentHeartbeat", Heartbeat({"web.1": TaskUsage(1.5, 10, 20)}), Heartbeat.from_json),
    ("AgentHeartbeat", Heartbeat(), Heartbeat.from_json),
]


@pytest.fixture
async def doc(api: httpx.AsyncClient) -> dict[str, Any]:
    r = await api.get("/v1/openapi.json")
    assert r.status_code == 200, r.text
    return dict(r.json())


def _validator(doc: dict[str, Any], name: str) -> Any:
    root = {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
    return jsonschema_rs.validator_for(root)


async def test_every_agent_route_is_listed_with_its_body(doc: dict[str, Any]) -> None:
    listed = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
    assert set(ROUTES) <= listed
    bodies = {
        p: op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        for m, p in ROUTES
        if "requestBody" in (op := doc["paths"][p][m.lower()])
    }
    assert bodies == {
        "/v1/agent/register": "#/components/schemas/AgentRegistration",
        "/v1/agent/nodes/{node_id}/status": "#/components/schemas/AgentStatusBatch",
        "/v1/agent/nodes/{node_id}/heartbeat": "#/components/schemas/AgentHeartbeat",
    }
    desired = doc["paths"]["/v1/agent/nodes/{node_id}/desired"]["get"]
    assert {p["name"] for p in desired["parameters"]} == {"node_id", "after", "wait"}


@pytest.mark.parametrize(("name", "message", "read"), WRITTEN, ids=lambda x: str(x)[:20])
async def test_what_an_agent_writes_fits_its_schema(
    doc: dict[str, Any], name: str, message: Any, read: Any
) -> None:
    wire = json.loads(json.dumps(message.to_json()))
    _validator(doc, name).validate(wire)
    assert read(wire) == message


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("AgentStatusBatch", {"statuses": [{"task_id": "a", "state": "BAD", "seq": 1}]}),
        ("AgentStatusBatch", {"statuses": [{"task_id": "a", "state": "TASK_RUNNING", "seq": 0}]}),
        ("AgentStatusBatch", {"statuses": [], "extra": 1}),
        ("AgentHeartbeat", {"usage": {"t": {"cpu_seconds": "x"}}}),
        ("AgentRegistration", {"node": {"id": "n", "hostname": "h", "capacity": [1, 2, 3]}}),
        ("AgentRegistration", {"node": {"id": "-n", "hostname": "h", "capacity": [1, 2, 3, 4]}}),
    ],
)
async def test_what_the_readers_refuse_the_schemas_refuse(
    doc: dict[str, Any], name: str, body: Any
) -> None:
    assert not _validator(doc, name).is_valid(body)
    read = {
        "AgentStatusBatch": StatusBatch.from_json,
        "AgentHeartbeat": Heartbeat.from_json,
        "AgentRegistration": Registration.from_json,
    }[name]
    with pytest.raises(ValidationError):
        read(body)


async def test_bodies_generated_from_the_schemas_are_read_or_named(
    doc: dict[str, Any],
) -> None:
    schemathesis = pytest.importorskip("schemathesis", reason="the test extra installs it")

    readers = {
        "/v1/agent/register": Registration.from_json,
        "/v1/agent/nodes/{node_id}/status": StatusBatch.from_json,
        "/v1/agent/nodes/{node_id}/heartbeat": Heartbeat.from_json,
    }
    schema = schemathesis.openapi.from_dict(doc)
    outcomes: dict[str, list[bool]] = {path: [] for path in readers}
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path in readers and operation.method.upper() == "POST":
            _generate(operation, readers[operation.path], outcomes[operation.path])
    for path, seen in outcomes.items():
        assert len(seen) >= 20, path
        assert any(seen), f"no generated body for {path} was read"


def _generate(
    operation: Any,
    read: Any,
    seen: list[bool],
    refused: type[Exception] | tuple[type[Exception], ...] = ValidationError,
) -> None:
    """Feeds 60 bodies generated for ``operation`` to ``read``; records which were read
    (the others must raise ``refused``, which the routes answer with a 422)."""
    from hypothesis import HealthCheck, Phase, given, settings

    @settings(
        max_examples=60,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate],
    )
    @given(operation.as_strategy())
    def check(case: Any) -> None:
        try:
            read(case.body)
        except refused as e:
            if isinstance(e, ValidationError):
                assert e.field.startswith("/") or e.field == "", e.field
            seen.append(False)
        else:
            seen.append(True)

    check()


JOB = {  # Metronome's job.json example, as tests/api/test_jobs.py sends it
    "description": "Example Application",
    "id": "prod.example.app",
    "labels": {"location": "olympus", "owner": "zeus"},
    "schedules": [{"id": "nightly", "cron": "0 3 * * *", "timezone": "UTC"}],
    "run": {
        "artifacts": [{"uri": "http://foo.example.com/application.zip", "extract": True}],
        "cmd": "nuke --dry --master local",
        "cpus": 1.5,
        "mem": 32,
        "disk": 128,
        "docker": {"image": "foo/bla:test"},
        "env": {"MON": "test", "PASSWORD": {"secret": "pw"}},
        "secrets": {"pw": {"source": "db/password"}},
        "maxLaunchDelay": 3600,
        "placement": {"constraints": [{"attribute": "rack", "operator": "EQ", "value": "r2"}]},
        "restart": {"activeDeadlineSeconds": 120, "policy": "NEVER"},
        "user": "root",
    },
}


def _body_schema(doc: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    body = doc["paths"][path][method]["requestBody"]
    return dict(body["content"]["application/json"]["schema"]) | {"_required": body["required"]}


async def test_metronome_job_bodies_are_listed(doc: dict[str, Any]) -> None:
    job = _body_schema(doc, "/v1/jobs", "post")
    assert job["title"] == "JobIn" and job["_required"]
    for path, method in [("/v1/jobs/{job_id}", "put"), ("/v0/scheduled-jobs", "post")]:
        assert _body_schema(doc, path, method)["title"] == "JobIn"
    assert _body_schema(doc, "/v1/jobs/{job_id}/schedules", "post")["title"] == "ScheduleIn"
    trigger = _body_schema(doc, "/v1/jobs/{job_id}/runs", "post")
    assert trigger["title"] == "TriggerIn" and not trigger["_required"]
    run = doc["components"]["schemas"]["RunIn"]["properties"]
    assert {"maxLaunchDelay", "taskKillGracePeriodSeconds", "cpus", "docker"} <= set(run)


async def test_a_metronome_job_fits_its_schema(doc: dict[str, Any]) -> None:
    schema = _body_schema(doc, "/v1/jobs", "post")
    del schema["_required"]
    validator = jsonschema_rs.validator_for(schema | {"components": doc["components"]})
    validator.validate(JOB)
    job_from_json(JOB)
    bad = {**JOB, "run": {**JOB["run"], "restart": {"policy": "ALWAYS"}}}  # not Metronome's
    assert not validator.is_valid(bad)
    with pytest.raises(JobSpecError):
        job_from_json(bad)


async def test_generated_job_bodies_are_read_or_named(doc: dict[str, Any]) -> None:
    schemathesis = pytest.importorskip("schemathesis", reason="the test extra installs it")
    readers = {"/v1/jobs": job_from_json, "/v1/jobs/{job_id}/schedules": schedule_from_json}
    outcomes: dict[str, list[bool]] = {path: [] for path in readers}
    for result in schemathesis.openapi.from_dict(doc).get_all_operations():
        operation = result.ok()
        if operation.path in readers and operation.method.upper() == "POST":
            _generate(operation, readers[operation.path], outcomes[operation.path], JobSpecError)
    for path, seen in outcomes.items():
        assert len(seen) >= 20, path


async def test_pod_bodies_are_described(doc: dict[str, Any]) -> None:
    from .test_pods import POD
    from .test_reader_fuzz import FULL

    for path, method in [("/v2/pods", "post"), ("/v2/pods/{rest}", "put")]:
        assert _body_schema(doc, path, method)["$ref"] == "#/components/schemas/Pod"
    validator = _validator(doc, "Pod")
    for pod in (POD, FULL):
        validator.validate(pod)
        parse_pod(pod)
    refused = [  # Pallet refuses these; the schema does not offer them
        {**POD, "networks": [{"mode": "container", "name": "dcos"}]},
        {**POD, "secrets": {"s": {"source": "x"}}},
        {**POD, "volumes": [{"name": "v", "persistent": {"size": 10}}]},
        {**POD, "scaling": {"kind": "fixed", "instances": -1}},
    ]
    for body in refused:
        assert not validator.is_valid(body), body
        with pytest.raises(MarathonApiError):
            parse_pod(body)


async def test_generated_pod_bodies_are_read_or_named(doc: dict[str, Any]) -> None:
    schemathesis = pytest.importorskip("schemathesis", reason="the test extra installs it")
    seen: list[bool] = []
    for result in schemathesis.openapi.from_dict(doc).get_all_operations():
        operation = result.ok()
        if operation.path == "/v2/pods" and operation.method.upper() == "POST":
            _generate(operation, parse_pod, seen, (MarathonApiError, ValidationError))
    assert len(seen) >= 20
