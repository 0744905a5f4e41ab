"""End to end on a real cluster, what a task finds in its sandbox: it runs as its app's
user; its URIs are fetched (extracted, made executable, cached) and a 404 fails it with
the answer; a task that writes more than its disk is killed with the reason."""

from __future__ import annotations

import io
import pwd
import re
import tarfile
from pathlib import Path
from typing import Any

import pytest

from httpserve import serve

from .conftest import LiveCluster, wait_for

pytestmark = pytest.mark.slow


def create(cluster: LiveCluster, app: dict[str, Any]) -> None:
    r = cluster.http.post("/v2/apps", json={"cpus": 0.05, "mem": 32, **app})
    assert r.status_code == 201, r.text


def sandbox_of(cluster: LiveCluster, task_id: str) -> Path:
    (path,) = cluster.state_dir.glob(f"agent-*/sandboxes/{task_id}")
    return path


@pytest.mark.root
def test_a_task_runs_as_its_apps_user_and_an_unknown_user_fails_it(
    cluster: LiveCluster,
) -> None:
    create(cluster, {"id": "/who", "user": "nobody", "cmd": "id -un > whoami; sleep 600"})
    (task,) = wait_for(lambda: cluster.running("/who", 1), what="running as nobody")
    proc = cluster.main_process(task["id"])
    assert proc.uids().real == pwd.getpwnam("nobody").pw_uid
    box = sandbox_of(cluster, task["id"])
    assert wait_for(lambda: (box / "whoami").read_text(), what="whoami") == "nobody\n"
    assert box.stat().st_uid == pwd.getpwnam("nobody").pw_uid
    cluster.delete_app("/who")

    create(cluster, {"id": "/ghost", "user": "no-such-user-pallet", "cmd": "sleep 600"})
    failure = wait_for(lambda: cluster.app("/ghost").get("lastTaskFailure"), what="a failure")
    assert failure["state"] == "TASK_FAILED"
    assert "user 'no-such-user-pallet' does not exist on this node" in failure["message"]
    cluster.delete_app("/ghost")


def test_fetched_uris_are_in_the_sandbox_and_a_404_fails_clearly(
    cluster: LiveCluster, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    with tarfile.open(site / "app.tgz", "w:gz") as tar:
        data = b"#!/bin/sh\necho started > started; exec sleep 600\n"
        info = tarfile.TarInfo("app/run.sh")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
    (site / "tool").write_text("#!/bin/sh\necho tool\n")
    with serve(site) as (url, hits):
        create(
            cluster,
            {
                "id": "/fetched",
                "instances": 2,
                "cmd": "./tool > tool.out && app/run.sh",
                "fetch": [
                    {"uri": f"{url}/app.tgz", "cache": True},
                    {"uri": f"{url}/tool", "executable": True},
                ],
                "constraints": [["hostname", "UNIQUE"]],
            },
        )
        tasks = wait_for(lambda: cluster.running("/fetched", 2), 30, "2 running")
        for t in tasks:
            box = sandbox_of(cluster, t["id"])
            assert wait_for(lambda b=box: (b / "started").exists(), what="run.sh ran")
            assert (box / "tool.out").read_text() == "tool\n"
        assert hits["/tool"] == 2  # one per task: not cached
        cluster.delete_app("/fetched")

        create(cluster, {"id": "/missing", "cmd": "true", "uris": [f"{url}/nope.tgz"]})
        failure = wait_for(lambda: cluster.app("/missing").get("lastTaskFailure"), what="failure")
        assert failure["state"] == "TASK_FAILED"
        assert failure["message"] == f"fetch {url}/nope.tgz: 404 File not found"
        cluster.delete_app("/missing")


def test_a_task_over_its_disk_quota_is_killed_with_the_reason(cluster: LiveCluster) -> None:
    create(
        cluster,
        {
            "id": "/filler",
            "disk": 1,
            "cmd": "head -c 52428800 /dev/zero > blob; sleep 600",
            "backoffSeconds": 60,
        },
    )
    failure = wait_for(lambda: cluster.app("/filler").get("lastTaskFailure"), 30, "a disk kill")
    assert failure["state"] == "TASK_FAILED"
    # measured within seconds of the start, maybe while it still writes
    assert re.match(r"Disk usage \d+\.\d MiB exceeds the quota of 1 MiB", failure["message"])
    cluster.delete_app("/filler")
