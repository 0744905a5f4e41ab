"""Jobs on a real cluster (``pallet up``, three agents, real processes): run now,
parameters, ON_FAILURE restarts, the activeDeadlineSeconds kill, parallelism and
completions with their indices, perNode, stop, and a run in an image from a real
registry, as its user, with an artifact fetched into its sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from httpserve import serve
from oci import PushedImages

from .conftest import LiveCluster, wait_for

pytestmark = pytest.mark.slow


def create(cluster: LiveCluster, job_id: str, **run: Any) -> None:
    body = {"id": job_id, "run": {"cpus": 0.05, "mem": 32, **run}}
    r = cluster.http.post("/v1/jobs", json=body)
    assert r.status_code == 201, r.text


def start(cluster: LiveCluster, job_id: str, body: dict[str, Any] | None = None) -> str:
    r = cluster.http.post(f"/v1/jobs/{job_id}/runs", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def finished(cluster: LiveCluster, job_id: str, run_id: str, timeout: float = 30) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        run: dict[str, Any] = cluster.http.get(f"/v1/jobs/{job_id}/runs/{run_id}").json()
        return run if run["status"] in ("SUCCESS", "FAILED") else None

    return wait_for(done, timeout, f"run {run_id} of {job_id} to finish")


def log_of(cluster: LiveCluster, task_id: str) -> str:
    r = cluster.http.get(f"/v1/tasks/{task_id}/logs", params={"file": "stdout"})
    return str(r.json().get("data", "")) if r.status_code == 200 else ""


def test_run_now_with_parameters_runs_a_real_task(cluster: LiveCluster) -> None:
    create(cluster, "hello", cmd="echo hello $WHO $PALLET_JOB_INDEX", env={"WHO": "job"})
    run_id = start(cluster, "hello", {"env": {"WHO": "trigger"}})
    run = finished(cluster, "hello", run_id)
    assert run["status"] == "SUCCESS", run
    (task,) = run["tasks"]
    assert task["status"] == "TASK_FINISHED" and task["exitCode"] == 0
    assert wait_for(lambda: "hello trigger 0" in log_of(cluster, task["id"]), 10, "its output")
    job = cluster.http.get("/v1/jobs/hello", params={"embed": "historySummary"}).json()
    assert job["historySummary"]["successCount"] == 1


def test_on_failure_restarts_until_the_task_succeeds(cluster: LiveCluster, tmp_path: Path) -> None:
    marker = tmp_path / "tried"
    # fails the first time (no marker yet), succeeds the second
    cmd = f"if [ -e {marker} ]; then exit 0; else touch {marker}; exit 3; fi"
    create(cluster, "flaky", cmd=cmd, restart={"policy": "ON_FAILURE", "activeDeadlineSeconds": 60})
    run = finished(cluster, "flaky", start(cluster, "flaky"))
    assert run["status"] == "SUCCESS", run
    assert [t["status"] for t in run["tasks"]] == ["TASK_FAILED", "TASK_FINISHED"]
    assert run["tasks"][0]["exitCode"] == 3


def test_active_deadline_kills_a_run_that_runs_too_long(cluster: LiveCluster) -> None:
    create(
        cluster, "slow", cmd="sleep 600", restart={"policy": "NEVER", "activeDeadlineSeconds": 2}
    )
    run = finished(cluster, "slow", start(cluster, "slow"), 30)
    assert run["status"] == "FAILED" and "activeDeadlineSeconds" in run["reason"]
    task_id = run["tasks"][0]["id"] if run["tasks"] else None
    wait_for(
        lambda: (
            not [t for t in cluster.http.get("/v2/tasks").json()["tasks"] if t["id"] == task_id]
        ),
        30,
        "the task to be killed",
    )


def test_parallelism_and_completions_run_every_index_once(cluster: LiveCluster) -> None:
    create(cluster, "batch", cmd="echo index=$PALLET_JOB_INDEX", parallelism=4, completions=12)
    run = finished(cluster, "batch", start(cluster, "batch"), 60)
    assert run["status"] == "SUCCESS", run
    assert (run["parallelism"], run["completions"], run["succeeded"]) == (4, 12, 12)
    assert sorted(t["index"] for t in run["tasks"]) == list(range(12))
    assert len({t["id"] for t in run["tasks"]}) == 12


def test_per_node_runs_once_on_every_node(cluster: LiveCluster) -> None:
    create(cluster, "everywhere", cmd="true", placement={"perNode": True})
    run = finished(cluster, "everywhere", start(cluster, "everywhere"), 60)
    assert run["status"] == "SUCCESS", run
    assert len(run["tasks"]) == len(cluster.agents()) == 3


def test_stop_kills_the_runs_tasks(cluster: LiveCluster) -> None:
    create(cluster, "forever", cmd="sleep 600")
    run_id = start(cluster, "forever")

    def running() -> list[dict[str, Any]]:
        run = cluster.http.get(f"/v1/jobs/forever/runs/{run_id}").json()
        return [t for t in run["tasks"] if t["status"] == "TASK_RUNNING"]

    (task,) = wait_for(running, 30, "the task to run")
    r = cluster.http.post(f"/v1/jobs/forever/runs/{run_id}/actions/stop")
    assert r.status_code == 200 and r.json()["status"] == "FAILED"
    wait_for(lambda: not cluster.task_processes(task["id"]), 30, "its process to end")
    r = cluster.http.delete("/v1/jobs/forever")
    assert r.status_code == 200


def test_cli_run_wait_follows_a_parallel_run_to_its_end(cluster: LiveCluster) -> None:
    create(cluster, "cli.batch", cmd="sleep 0.2", parallelism=3, completions=6)
    create(cluster, "cli.fails", cmd="exit 7")
    env = os.environ | {"PALLET_MASTER": cluster.url}

    def pallet(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "pallet.cli.main", *args]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)

    done = pallet("job", "run", "cli.batch", "--wait", "--json")
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    assert (run["status"], run["succeeded"]) == ("SUCCESS", 6)
    assert "SUCCESS" in done.stderr
    failed = pallet("job", "run", "cli.fails", "--wait")
    assert failed.returncode == 2 and "FAILED" in failed.stderr and "exit code 7" in failed.stderr
    assert "Traceback" not in failed.stderr


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A host directory the cluster lets jobs mount (``--allow-host-path``)."""
    directory = tmp_path_factory.mktemp("job-shared")
    directory.chmod(0o755)
    (directory / "note").write_text("from the host\n")
    return directory


@pytest.fixture(scope="module")
def up_args(shared: Path) -> tuple[str, ...]:
    return ("--allow-host-path", str(shared))


@pytest.mark.root
def test_a_run_in_an_image_as_nobody_with_an_artifact_a_volume_and_a_bridge(
    cluster: LiveCluster, images: PushedImages, shared: Path, tmp_path: Path
) -> None:
    """Metronome's ``ucr`` image, ``user``, ``artifacts``, ``volumes`` and ``networks`` on
    the apps' launch path: the artifact is fetched into the sandbox, the command runs in
    the image under runc as the image's ``nobody``, with the host directory mounted
    read-only and an address on its agent's bridge."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "tool").write_text('#!/bin/sh\necho "tool as $(id -un) $(id -u) in $IMAGE"\n')
    with serve(site) as (url, hits):
        create(
            cluster,
            "boxed",
            cmd="$MESOS_SANDBOX/tool; cat /data/note; echo x > /data/note || ip -o -4 addr",
            user="nobody",
            artifacts=[{"uri": f"{url}/tool", "executable": True, "extract": False}],
            ucr={"image": {"id": images.busybox}},
            volumes=[{"containerPath": "/data", "hostPath": str(shared), "mode": "RO"}],
            networks=[{"mode": "container/bridge"}],
        )
        run = finished(cluster, "boxed", start(cluster, "boxed"), 60)
        assert hits["/tool"] == 1
    assert run["status"] == "SUCCESS", run
    (task,) = run["tasks"]
    said = wait_for(lambda: log_of(cluster, task["id"]), 10, "its output").splitlines()
    assert said[:2] == ["tool as nobody 65534 in busybox", "from the host"]  # IMAGE: its Env
    assert any(" inet 10.88." in line for line in said[2:]), said  # its bridge's subnet
    assert (shared / "note").read_text() == "from the host\n"  # read-only
    assert cluster.http.delete("/v1/jobs/boxed").status_code == 200
