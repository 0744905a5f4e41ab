"""Metronome's /v1/jobs through the routes: shapes field for field, Metronome's documented
examples, bad input refused with the path and nothing stored, runs on agents played over
the agent protocol."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

from pallet.control import Control

from .conftest import FakeClock, register

pytestmark = pytest.mark.anyio

# Metronome's own examples (api/v1/examples and the DC/OS jobs documentation).
SIMPLE = {
    "id": "prod.email.summary",
    "description": "Send summary every day",
    "run": {"cmd": "sendSummary", "cpus": 0.1, "mem": 32, "disk": 0},
}
LISTED = {  # the first job of job_list.json: every optional list left empty
    "description": "Send summary every day",
    "id": "prod.email.summary",
    "labels": {},
    "schedules": [],
    "run": {
        "artifacts": [],
        "cmd": "sendSummary",
        "cpus": 0.1,
        "disk": 0,
        "env": {},
        "maxLaunchDelay": 3600,
        "mem": 32,
        "placement": {"constraints": []},
        "restart": {"activeDeadlineSeconds": 120, "policy": "NEVER"},
        "volumes": [],
    },
}
SCHEDULE = {
    "id": "everyminute",
    "cron": "* * * * *",
    "concurrencyPolicy": "ALLOW",
    "enabled": True,
    "startingDeadlineSeconds": 60,
    "timezone": "America/Chicago",
}
FULL = {  # job.json: containers, volumes, artifacts, a user and a CNI network
    "description": "Example Application",
    "id": "prod.example.app",
    "labels": {"location": "olympus", "owner": "zeus"},
    "schedules": [],
    "run": {
        "artifacts": [
            {
                "uri": "http://foo.example.com/application.zip",
                "extract": True,
                "executable": True,
                "cache": False,
            }
        ],
        "cmd": "nuke --dry --master local",
        "cpus": 1.5,
        "mem": 32,
        "disk": 128,
        "docker": {"image": "foo/bla:test"},
        "env": {"MON": "test", "CONNECT": "direct"},
        "maxLaunchDelay": 3600,
        "networks": [{"name": "calico", "mode": "container"}],
        "placement": {"constraints": [{"attribute": "rack", "operator": "EQ", "value": "rack-2"}]},
        "restart": {"activeDeadlineSeconds": 120, "policy": "NEVER"},
        "user": "root",
        "volumes": [{"containerPath": "/mnt/test", "hostPath": "/etc/guest", "mode": "RW"}],
    },
}


def job(job_id: str = "backup", **run: Any) -> dict[str, Any]:
    return {"id": job_id, "run": {"cmd": "true", "cpus": 0.1, "mem": 32, **run}}


def paths(r: httpx.Response) -> dict[str, list[str]]:
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["message"] == "Object is not valid"
    return {d["path"]: d["errors"] for d in body["details"]}


async def test_metronome_examples_are_accepted_unchanged(api: httpx.AsyncClient) -> None:
    r = await api.post("/v1/jobs", json=LISTED)
    assert r.status_code == 201, r.text
    doc = r.json()
    assert doc == {
        "id": "prod.email.summary",
        "description": "Send summary every day",
        "dependencies": [],
        "labels": {},
        "run": {
            "cpus": 0.1,
            "mem": 32.0,
            "disk": 0.0,
            "gpus": 0,
            "cmd": "sendSummary",
            "env": {},
            "placement": {"constraints": []},
            "artifacts": [],
            "maxLaunchDelay": 3600,
            "volumes": [],
            "restart": {"policy": "NEVER", "activeDeadlineSeconds": 120},
            "secrets": {},
            "networks": [],
        },
        "schedules": [],
    }
    r = await api.post("/v1/jobs/prod.email.summary/schedules", json=SCHEDULE)
    assert r.status_code == 201, r.text
    schedule = r.json()
    assert {k: v for k, v in schedule.items() if k != "nextRunAt"} == SCHEDULE
    assert schedule["nextRunAt"].endswith("+0000")
    r = await api.post(
        "/v0/scheduled-jobs", json={**SIMPLE, "id": "other", "schedules": [SCHEDULE]}
    )
    assert r.status_code == 201, r.text
    assert r.json()["schedules"][0]["id"] == "everyminute"


async def test_unhonoured_fields_are_refused_by_path(api: httpx.AsyncClient) -> None:
    """job.json asks for a CNI network (an IP per task) and a host path this cluster
    does not allow: both refused by path; its image, artifact and user are honoured
    (``test_job_launch``)."""
    found = paths(await api.post("/v1/jobs", json=FULL))
    assert set(found) == {"/run/networks(0)/mode", "/run/volumes(0)/hostPath"}
    assert found["/run/networks(0)/mode"] == [
        "unsupported by Pallet: container networks (IP per task)"
    ]
    assert "--allow-host-path" in found["/run/volumes(0)/hostPath"][0]
    secret = copy.deepcopy(SIMPLE)
    secret["run"]["env"] = {"SECRET_ENV": {"secret": "secret1"}}
    secret["run"]["secrets"] = {"secret1": {"source": "/my/../secret"}, "unused": {"source": "u"}}
    assert set(paths(await api.post("/v1/jobs", json=secret))) == {
        "/run/secrets/secret1/source",
        "/run/secrets/unused",
    }
    assert (await api.get("/v1/jobs")).json() == []


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({**job(), "schedules": [{"id": "s", "cron": "61 * * * *"}]}, "/schedules(0)/cron"),
        ({**job(), "schedules": [{"id": "s", "cron": "0 0 30 2 *"}]}, "/schedules(0)/cron"),
        (
            {**job(), "schedules": [{"id": "s", "cron": "* * * * *", "timezone": "Mars/Olympus"}]},
            "/schedules(0)/timezone",
        ),
        (job(parallelism=5, completions=2), "/run/completions"),
        (job(cmd="x" * (10 << 20)), "/run/cmd"),
        (job(unknown=1), "/run/unknown"),
        ({**job(), "color": "red"}, "/color"),
        (job(cpus=0), "/run/cpus"),
        (job(mem="lots"), "/run/mem"),
        ({"id": "Bad_Id", "run": {"cmd": "true"}}, "/id"),
        ({"id": "x", "run": {"cpus": 1}}, "/run"),
        (
            job(placement={"constraints": [{"attribute": "a", "operator": "LIKE", "value": "("}]}),
            "/run/placement/constraints(0)/value",
        ),
        (job(restart={"policy": "SOMETIMES"}), "/run/restart/policy"),
        (job(placement={"perNode": True}, parallelism=2), "/run/placement/perNode"),
        ({**job(), "labels": {"PALLET_PIDS_MAX": "lots"}}, "/labels/PALLET_PIDS_MAX"),
        ({**job(), "labels": {"PALLET_PIDS_MAX": "0"}}, "/labels/PALLET_PIDS_MAX"),
    ],
)
async def test_bad_input_is_refused_with_its_path(
    api: httpx.AsyncClient, body: dict[str, Any], path: str
) -> None:
    assert path in paths(await api.post("/v1/jobs", json=body))
    assert (await api.get("/v1/jobs")).json() == []


async def test_dependencies_are_checked(api: httpx.AsyncClient) -> None:
    assert (await api.post("/v1/jobs", json=job("a"))).status_code == 201
    b = {**job("b"), "dependencies": [{"id": "a"}]}
    assert (await api.post("/v1/jobs", json=b)).status_code == 201
    cycle = {**job("a"), "dependencies": [{"id": "b"}]}
    assert "/dependencies(0)/id" in paths(await api.put("/v1/jobs/a", json=cycle))
    unknown = {**job("c"), "dependencies": [{"id": "nope"}]}
    assert "/dependencies" in paths(await api.post("/v1/jobs", json=unknown))
    assert (await api.get("/v1/jobs/a")).json()["dependencies"] == []
    r = await api.delete("/v1/jobs/a")
    assert r.status_code == 409 and "children=[b]" in r.json()["message"]


async def test_missing_things_and_conflicts_in_metronome_shapes(api: httpx.AsyncClient) -> None:
    r = await api.get("/v1/jobs/nope")
    assert (r.status_code, r.json()) == (404, {"id": "nope", "message": "Job not found"})
    assert (await api.post("/v1/jobs", json=job())).status_code == 201
    r = await api.post("/v1/jobs", json=job())
    assert (r.status_code, r.json()) == (409, {"message": "Job with this id already exists"})
    r = await api.get("/v1/jobs/backup/schedules/nope")
    assert (r.status_code, r.json()) == (404, {"id": "nope", "message": "Schedule not found"})
    r = await api.get("/v1/jobs/backup/runs/nope")
    assert r.status_code == 404
    assert r.json() == {"jobSpec": "backup", "id": "nope", "message": "Job Run not found"}
    r = await api.get("/v1/jobs", params={"embed": "everything"})
    assert r.status_code == 400


async def test_put_v1_keeps_schedules_and_v0_replaces_them(api: httpx.AsyncClient) -> None:
    body = {**job(), "schedules": [SCHEDULE]}
    assert (await api.post("/v0/scheduled-jobs", json=body)).status_code == 201
    changed = job(cmd="echo changed")
    r = await api.put("/v1/jobs/backup", json=changed)
    assert r.status_code == 200, r.text
    assert r.json()["run"]["cmd"] == "echo changed"
    assert [s["id"] for s in r.json()["schedules"]] == ["everyminute"]
    r = await api.put("/v1/jobs/backup", json={**changed, "schedules": []})
    assert "/schedules" in paths(r)  # not silently ignored
    r = await api.put("/v0/scheduled-jobs/backup", json={**changed, "schedules": []})
    assert r.status_code == 200 and r.json()["schedules"] == []
    r = await api.put("/v1/jobs/backup", json=job("other"))
    assert "/id" in paths(r)


async def agents_report(api: httpx.AsyncClient, control: Control, state: str, **extra: Any) -> int:
    """Every agent reports each task it should run as TASK_RUNNING then ``state``."""
    reported = 0
    for node_id in control.state.nodes:
        r = await api.get(f"/v1/agent/nodes/{node_id}/desired", params={"after": 0, "wait": 0})
        statuses = []
        for spec in r.json()["tasks"]:
            seq = control.state.tasks[spec["task_id"]].seq
            statuses.append({"task_id": spec["task_id"], "state": "TASK_RUNNING", "seq": seq + 1})
            statuses.append({"task_id": spec["task_id"], "state": state, "seq": seq + 2, **extra})
        if statuses:
            r = await api.post(f"/v1/agent/nodes/{node_id}/status", json={"statuses": statuses})
            assert r.status_code == 200, r.text
            reported += len(statuses) // 2
    return reported


async def loops(control: Control) -> None:
    for _ in range(2):
        await control.job_controller.reconcile()
        await control.scheduler.run_once()
    await control.job_controller.reconcile()


async def test_run_now_with_parameters_to_success(
    api: httpx.AsyncClient, control: Control, clock: FakeClock
) -> None:
    await register(api, 2)
    assert (await api.post("/v1/jobs", json=job(env={"WHO": "job"}))).status_code == 201
    r = await api.post("/v1/jobs/backup/runs", json={"env": {"WHO": "trigger"}})
    assert r.status_code == 201, r.text
    run = r.json()
    assert set(run) == {"id", "jobId", "status", "createdAt", "completedAt", "tasks"}
    assert (run["jobId"], run["status"], run["tasks"]) == ("backup", "INITIAL", [])
    r = await api.get("/v1/queue")
    assert r.json() == [{"jobId": "backup", "runs": [{"runId": run["id"]}]}]
    await loops(control)
    r = await api.get(f"/v1/jobs/backup/runs/{run['id']}")
    (task,) = r.json()["tasks"]
    assert r.json()["status"] == "STARTING" and task["status"] == "TASK_STAGING"
    tasks = (await api.get("/v2/tasks")).json()["tasks"]
    assert [t["id"] for t in tasks] == [task["id"]]  # job tasks are in the task listing
    spec = control.state.tasks[task["id"]].launch
    assert spec.env["WHO"] == "trigger"
    assert await agents_report(api, control, "TASK_FINISHED", exit_code=0) == 1
    await loops(control)
    assert (await api.get("/v1/jobs/backup/runs")).json() == []
    r = await api.get(f"/v1/jobs/backup/runs/{run['id']}")  # kept whole in the history
    assert r.json()["status"] == "SUCCESS" and r.json()["tasks"][0]["exitCode"] == 0
    r = await api.get("/v1/jobs/backup", params={"embed": ["history", "historySummary"]})
    history = r.json()["history"]
    assert history["successCount"] == 1 and history["failureCount"] == 0
    assert history["successfulFinishedRuns"][0]["id"] == run["id"]
    assert history["successfulFinishedRuns"][0]["tasks"] == [task["id"]]
    assert r.json()["historySummary"]["lastSuccessAt"].endswith("+0000")


async def test_parallel_run_shows_its_progress_and_stop(
    api: httpx.AsyncClient, control: Control
) -> None:
    await register(api, 2)
    body = job(cmd="sleep 600", parallelism=3, completions=6)
    assert (await api.post("/v1/jobs", json=body)).status_code == 201
    assert (await api.get("/v1/jobs/backup")).json()["run"]["parallelism"] == 3
    run = (await api.post("/v1/jobs/backup/runs")).json()
    await loops(control)
    r = await api.get("/v1/jobs/backup", params={"embed": "activeRuns"})
    (active,) = r.json()["activeRuns"]
    assert (active["parallelism"], active["completions"], active["succeeded"]) == (3, 6, 0)
    assert sorted(t["index"] for t in active["tasks"]) == [0, 1, 2]
    r = await api.post(f"/v1/jobs/backup/runs/{run['id']}/actions/stop")
    assert r.status_code == 200 and r.json()["status"] == "FAILED"
    assert r.json()["reason"] == "stopped"
    assert all(t.goal.value == "kill" for t in control.state.tasks.values())
    r = await api.delete("/v1/jobs/backup")
    assert r.status_code == 200 and r.json()["id"] == "backup"
    assert (await api.get("/v1/jobs")).json() == []


async def test_delete_with_active_runs_needs_stop_current_job_runs(
    api: httpx.AsyncClient, control: Control
) -> None:
    await register(api, 1)
    assert (await api.post("/v1/jobs", json=job(cmd="sleep 600"))).status_code == 201
    assert (await api.post("/v1/jobs/backup/runs")).status_code == 201
    await loops(control)
    r = await api.delete("/v1/jobs/backup")
    assert r.status_code == 409
    assert r.json() == {
        "message": "There are active job runs. Override with stopCurrentJobRuns=true"
    }
    r = await api.delete("/v1/jobs/backup", params={"stopCurrentJobRuns": "true"})
    assert r.status_code == 200
    assert all(t.goal.value == "kill" for t in control.state.tasks.values())
    assert (await api.post("/v1/jobs/backup/runs")).status_code == 404


async def test_trigger_body_is_checked(api: httpx.AsyncClient) -> None:
    assert (await api.post("/v1/jobs", json=job())).status_code == 201
    assert "/cpus" in paths(await api.post("/v1/jobs/backup/runs", json={"cpus": 2}))
    assert "/args" in paths(await api.post("/v1/jobs/backup/runs", json={"args": ["x"]}))
    assert (await api.get("/v1/jobs/backup/runs")).json() == []
