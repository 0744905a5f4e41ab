"""End to end on a real cluster (``pallet up``, three agents on loopback): scaling,
replacement with backoff, OOM, unreachable nodes, a command that does not exist."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest

from .conftest import GRACE, LiveCluster, wait_for

pytestmark = pytest.mark.slow


def create(cluster: LiveCluster, app: dict[str, Any]) -> None:
    r = cluster.http.post("/v2/apps", json={"cpus": 0.05, "mem": 32, **app})
    assert r.status_code == 201, r.text


def test_up_is_ready_quickly_and_lists_its_nodes(cluster: LiveCluster) -> None:
    # The goal is under 5 s (about 3 s on an idle 2-core machine); tests do not fail on a
    # time a busy machine can stretch, only on one that says something is broken.
    assert cluster.ready_in < 15.0  # type: ignore[attr-defined]
    nodes = cluster.http.get("/v1/nodes").json()["nodes"]
    assert sorted(n["hostname"] for n in nodes) == ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    assert all(n["state"] == "ACTIVE" and n["last_heartbeat"] for n in nodes)


def test_scale_up_and_down(cluster: LiveCluster) -> None:
    create(
        cluster,
        {
            "id": "/scale",
            "cmd": "sleep 600",
            "instances": 3,
            "constraints": [["hostname", "UNIQUE"]],
        },
    )
    tasks = wait_for(lambda: cluster.running("/scale", 3), what="3 running")
    assert len({t["host"] for t in tasks}) == 3
    for t in tasks:
        proc = cluster.main_process(t["id"])
        env = proc.environ()
        assert env["MESOS_TASK_ID"] == t["id"]
        assert env["HOST"] == t["host"] and env["PORT0"] == str(t["ports"][0])
    # The deployment ends at the controller's next pass after the last task runs; until
    # then a change is refused with 409, as Marathon does (without ?force=true).
    wait_for(lambda: not cluster.http.get("/v2/deployments").json(), what="deployment done")
    r = cluster.http.put("/v2/apps/scale", json={"instances": 1})
    assert r.status_code == 200
    (kept,) = wait_for(lambda: cluster.running("/scale", 1), what="1 left")
    # YOUNGEST_FIRST: the survivor is the one that started first
    assert kept["startedAt"] == min(t["startedAt"] for t in tasks)
    gone = [t["id"] for t in tasks if t["id"] != kept["id"]]
    wait_for(
        lambda: not any(cluster.task_processes(t) for t in gone), 10, "killed tasks' processes gone"
    )
    wait_for(lambda: not cluster.http.get("/v2/deployments").json(), what="deployment done")
    cluster.delete_app("/scale")
    assert not cluster.task_processes(kept["id"])


def test_killed_task_is_replaced_with_backoff(cluster: LiveCluster) -> None:
    create(cluster, {"id": "/crashy", "cmd": "sleep 600"})
    (first,) = wait_for(lambda: cluster.running("/crashy", 1), what="running")
    proc = cluster.main_process(first["id"])
    killed_at = time.time()
    proc.send_signal(signal.SIGKILL)
    (second,) = wait_for(
        lambda: [t for t in cluster.running("/crashy", 1) if t["id"] != first["id"]],
        what="replacement",
    )
    app = cluster.app("/crashy")
    failure = app["lastTaskFailure"]
    assert failure["taskId"] == first["id"] and failure["state"] == "TASK_FAILED"
    assert "SIGKILL" in failure["message"]
    staged = _seconds(second["stagedAt"])
    assert staged - killed_at >= 0.9  # backoffSeconds 1
    proc = cluster.main_process(second["id"])
    killed_at = time.time()
    proc.send_signal(signal.SIGKILL)
    (third,) = wait_for(
        lambda: [t for t in cluster.running("/crashy", 1) if t["id"] != second["id"]], what="again"
    )
    assert _seconds(third["stagedAt"]) - killed_at >= 1.1  # 1 x backoffFactor 1.15
    cluster.delete_app("/crashy")


def _seconds(timestamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(timestamp).timestamp()


def test_nonexistent_command_fails_clearly_and_backs_off(cluster: LiveCluster) -> None:
    create(cluster, {"id": "/typo", "cmd": "nosuchcommand-pallet --now"})
    failure = wait_for(lambda: cluster.app("/typo").get("lastTaskFailure"), what="a failure")
    assert failure["state"] == "TASK_FAILED"
    assert "not found" in failure["message"]
    failed = {failure["taskId"]}
    end = time.monotonic() + 4.0
    while time.monotonic() < end:
        f = cluster.app("/typo").get("lastTaskFailure")
        if f:
            failed.add(f["taskId"])
        time.sleep(0.1)
    # backoff 1, 1.15, 1.32, 1.52 s ...: a handful of attempts in 4 s, not a spin
    assert 2 <= len(failed) <= 5, failed
    queue = cluster.http.get("/v2/queue").json()["queue"]
    assert any(q["app"]["id"] == "/typo" for q in queue) or cluster.app("/typo")["tasks"]
    cluster.delete_app("/typo")


@pytest.mark.root
def test_task_over_its_memory_limit_is_oom_killed(cluster: LiveCluster) -> None:
    hog = "python3 -c 'b = bytearray(256 << 20); import time; time.sleep(60)'"
    create(cluster, {"id": "/hog", "cmd": hog, "mem": 48, "backoffSeconds": 60})
    failure = wait_for(lambda: cluster.app("/hog").get("lastTaskFailure"), 30, "an OOM failure")
    assert failure["state"] == "TASK_FAILED"
    assert "Memory limit exceeded" in failure["message"]
    cluster.delete_app("/hog")


def test_dead_agent_goes_unreachable_and_its_tasks_are_replaced(cluster: LiveCluster) -> None:
    create(
        cluster,
        {
            "id": "/spread",
            "cmd": "sleep 600",
            "instances": 2,
            "constraints": [["hostname", "UNIQUE"]],
        },
    )
    tasks = wait_for(lambda: cluster.running("/spread", 2), what="2 running")
    victim = tasks[0]
    agent = next(a for a in cluster.agents() if a["address"] == victim["host"])
    old_proc = cluster.main_process(victim["id"])
    os.kill(agent["pid"], signal.SIGSTOP)  # the agent stops answering; its tasks run on
    try:
        node = wait_for(
            lambda: [
                n
                for n in cluster.http.get("/v1/nodes").json()["nodes"]
                if n["hostname"] == victim["host"] and n["state"] == "UNREACHABLE"
            ],
            GRACE + 10,
            "node UNREACHABLE",
        )
        assert node

        def replaced() -> list[dict[str, object]]:
            tasks = cluster.app("/spread")["tasks"]
            running = [t for t in tasks if t["state"] == "TASK_RUNNING"]
            kept = [t for t in tasks if t["id"] == victim["id"]]
            # the lost task stays listed, UNREACHABLE, beside its replacement
            if len(running) == 2 and kept and kept[0]["state"] == "TASK_UNREACHABLE":
                return running
            return []

        now_running = wait_for(replaced, what="replacement on the third node")
        assert victim["host"] not in {t["host"] for t in now_running}
        assert old_proc.is_running()  # the partitioned node still runs it
    finally:
        os.kill(agent["pid"], signal.SIGCONT)
    wait_for(
        lambda: [
            n
            for n in cluster.http.get("/v1/nodes").json()["nodes"]
            if n["hostname"] == victim["host"] and n["state"] == "ACTIVE"
        ],
        what="node back",
    )
    # reconciliation: what was replaced is killed on the returning node
    wait_for(lambda: not cluster.task_processes(victim["id"]), 15, "replaced task killed")
    # ... and its record goes once the returning agent reports it killed
    wait_for(lambda: cluster.running("/spread", 2), 30, "2 running, the lost one gone")
    cluster.delete_app("/spread")


def test_killed_agent_is_started_again_and_adopts_its_tasks(cluster: LiveCluster) -> None:
    # `pallet up` restarts an agent that dies (kill -9); the new agent process takes back
    # the task it left running: same task id, same process, nothing replaced.
    # Not replaced while its node is silent for a minute: the agent's restart may take
    # longer than the cluster's 3 s heartbeat grace on a busy machine, and replacing the
    # task then would be right, but is not what this test looks at.
    patient = {"inactiveAfterSeconds": 60, "expungeAfterSeconds": 120}
    create(
        cluster,
        {"id": "/adopt", "cmd": "sleep 600", "instances": 1, "unreachableStrategy": patient},
    )
    (task,) = wait_for(lambda: cluster.running("/adopt", 1), what="1 running")
    agent = next(a for a in cluster.agents() if a["address"] == task["host"])
    proc = cluster.main_process(task["id"])
    log = cluster.state_dir / f"agent-{cluster.agents().index(agent)}" / "agent.log"
    registered = log.read_text().count("registered as")
    os.kill(agent["pid"], signal.SIGKILL)
    wait_for(
        lambda: (
            next(a for a in cluster.agents() if a["address"] == task["host"])["pid"] != agent["pid"]
        ),
        what="the agent started again",
    )
    wait_for(lambda: log.read_text().count("registered as") > registered, what="re-registered")
    assert "adopted 1 tasks" in log.read_text()
    assert proc.is_running()
    (again,) = wait_for(lambda: cluster.running("/adopt", 1), what="still 1 running")
    assert again["id"] == task["id"]
    cluster.delete_app("/adopt")
