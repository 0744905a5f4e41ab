"""Honest start-up and supervision that degrades: an agent stops at once when told to,
even while no master answers; it never joins another cluster's master; under
``pallet up`` one agent that crash-loops is started again with growing delays while the
master, the other agents and their tasks carry on."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from e2e.conftest import LiveCluster, wait_for
from pallet.bench.cluster import free_port, running_master

pytestmark = pytest.mark.slow


def _agent(work: Path, master: str) -> tuple[subprocess.Popen[bytes], Path]:
    log = work.parent / f"{work.name}.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pallet.cli.agent",
                "--master",
                master,
                "--work-dir",
                str(work),
                "--port",
                "0",
                "--resources",
                "cpus:1;mem:256;disk:100",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return process, log


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_an_agent_stops_at_once_while_no_master_answers(tmp_path: Path, sig: int) -> None:
    agent, log = _agent(tmp_path / "work", f"http://127.0.0.1:{free_port()}")
    try:
        wait_for(lambda: "master not reachable yet" in log.read_text(), 60, "retrying")
        agent.send_signal(sig)
        agent.wait(15)  # registration retries are no reason to ignore a stop
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
    assert agent.returncode == 0, log.read_text()


def test_an_agent_never_joins_another_clusters_master(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "cluster-id").write_text("a-cluster-that-is-gone\n")
    with running_master(tmp_path, free_port()) as url:
        agent, log = _agent(work, url)
        agent.wait(60)
        out = log.read_text()
        assert agent.returncode == 2, out
        assert f"the work dir {work} belongs to cluster a-cluster-that-is-gone" in out
        assert "Traceback" not in out
        assert httpx.get(f"{url}/v1/nodes").json()["nodes"] == []
    (work / "cluster-id").unlink()  # a new work dir joins, and remembers the cluster
    (tmp_path / "state.db").unlink()  # a master of a new cluster
    with running_master(tmp_path, free_port()) as url:
        agent, log = _agent(work, url)
        try:
            wait_for(lambda: httpx.get(f"{url}/v1/nodes").json()["nodes"], 60, "registered")
            cluster = httpx.get(f"{url}/v2/info").json()["frameworkId"]
            assert (work / "cluster-id").read_text().strip() == cluster
        finally:
            agent.send_signal(signal.SIGTERM)
            agent.wait(30)


def test_an_agent_on_a_machine_down_for_maintenance_waits_until_it_is_up(
    tmp_path: Path,
) -> None:
    machine = [{"ip": "127.0.0.1"}]  # the agent's address: this machine
    window = {"machine_ids": machine, "unavailability": {"start": {"nanoseconds": 0}}}
    with running_master(tmp_path, free_port()) as url:
        httpx.post(f"{url}/maintenance/schedule", json={"windows": [window]}).raise_for_status()
        httpx.post(f"{url}/machine/down", json=machine).raise_for_status()
        agent, log = _agent(tmp_path / "work", url)
        try:
            wait_for(lambda: "DOWN for maintenance" in log.read_text(), 60, "refused")
            assert httpx.get(f"{url}/v1/nodes").json()["nodes"] == []
            httpx.post(f"{url}/machine/up", json=machine).raise_for_status()
            nodes = wait_for(lambda: httpx.get(f"{url}/v1/nodes").json()["nodes"], 60, "joined")
            assert nodes[0]["state"] == "ACTIVE"
            # Refused, it asked again every few seconds, not four times a second.
            assert log.read_text().count("master refused registration (409)") <= 15
        finally:
            agent.send_signal(signal.SIGTERM)
            try:
                agent.wait(60)
            except subprocess.TimeoutExpired:
                agent.kill()
                agent.wait()
                raise AssertionError(f"the agent did not stop: {log.read_text()[-3000:]}") from None


def test_a_crash_looping_agent_backs_off_and_the_rest_carries_on(cluster: LiveCluster) -> None:
    http = cluster.http
    app = {
        "id": "/steady",
        "cmd": "sleep 600",
        "cpus": 0.01,
        "mem": 8,
        "instances": 2,
        "constraints": [["hostname", "LIKE", "127\\.0\\.0\\.[23]"], ["hostname", "UNIQUE"]],
    }
    http.post("/v2/apps", json=app).raise_for_status()
    before = wait_for(lambda: cluster.running("/steady", 2), 60, "2 running")
    agents = cluster.agents()
    broken = agents[2]
    work = Path(broken["work_dir"])
    node_id = (work / "node-id").read_text()
    # The agent cannot start any more: its node id is unreadable.
    (work / "node-id").unlink()
    (work / "node-id").mkdir()
    os.kill(broken["pid"], signal.SIGKILL)

    def backing_off() -> bool:
        doc = json.loads((cluster.state_dir / "up.json").read_text())
        state = doc["agents"][2]
        return bool(state["backing_off"] and state["exits_in_a_row"] >= 3)

    wait_for(backing_off, 90, "pallet up backing off agent 2")
    assert http.get("/ping").status_code == 200

    def reported() -> dict[str, object] | None:
        nodes = http.get("/v1/nodes").json()["nodes"]
        sup = next(n["supervisor"] for n in nodes if n["id"] == node_id.strip())
        return sup if sup and sup["restarts"] >= 3 and sup["backing_off_until"] else None

    # The master knows it too: /v1/nodes (and so the CLI and the dashboard) say so.
    supervisor = wait_for(reported, 60, "agent 2's restarts in /v1/nodes")
    assert supervisor is not None
    assert supervisor["supervisor"] == "pallet up" and supervisor["last_line"]
    assert [t["id"] for t in cluster.running("/steady", 2)] == [t["id"] for t in before]
    for agent in agents[:2]:
        os.kill(agent["pid"], 0)  # still the same processes

    def node_state() -> str:
        nodes = http.get("/v1/nodes").json()["nodes"]
        return next(str(n["state"]) for n in nodes if n["id"] == node_id.strip())

    # Its node is seen gone (on a busy machine the back-off may come before the grace ends).
    wait_for(lambda: node_state() != "ACTIVE", 60, "agent 2's node not ACTIVE")

    # Repaired, it is started again by itself and its node comes back.
    shutil.rmtree(work / "node-id")
    (work / "node-id").write_text(node_id)
    wait_for(lambda: node_state() == "ACTIVE", 120, "agent 2 back")
    doc = json.loads((cluster.state_dir / "up.json").read_text())
    assert not doc["agents"][2]["backing_off"]
    cluster.delete_app("/steady")


def test_a_drained_node_stays_drained_when_its_agent_restarts(cluster: LiveCluster) -> None:
    http = cluster.http
    agent = cluster.agents()[1]
    node_id = (Path(agent["work_dir"]) / "node-id").read_text().strip()
    assert http.post(f"/v1/nodes/{node_id}/drain").json()["state"] == "DRAINING"
    log = Path(agent["work_dir"]) / "agent.log"
    registered = log.read_text().count("registered as")
    os.kill(agent["pid"], signal.SIGTERM)  # stopped: pallet up starts it again
    wait_for(lambda: log.read_text().count("registered as") > registered, 90, "re-registered")
    # Never ACTIVE again by itself (on a loaded machine the node may be UNREACHABLE for a
    # moment, when a heartbeat comes later than the tests' 3 s grace: it returns DRAINING).
    seen = []

    def drained() -> bool:
        node = http.get(f"/v1/nodes/{node_id}").json()
        seen.append(node["state"])
        return node["state"] == "DRAINING" and node["drain"] is not None

    wait_for(drained, 60, "the node drained again")
    assert "ACTIVE" not in seen, seen
    assert http.post(f"/v1/nodes/{node_id}/undrain").json()["state"] == "ACTIVE"
