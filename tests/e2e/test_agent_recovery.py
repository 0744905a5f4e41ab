"""End to end: an agent killed with SIGKILL or stopped with SIGTERM leaves its tasks
running; started again with the same work directory it adopts them (same task ids,
same pids, nothing replaced), notices when an adopted process dies, and lets the
master's reconciliation kill what was replaced while it was away longer than the
heartbeat grace. Drained with SIGUSR1 it kills its tasks before it exits."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from pallet.agent.checkpoint import JOURNAL
from pallet.auth.ca import write_private
from pallet.auth.secretbox import new_key_line

from .conftest import free_port, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.root]

APP = "/recover"


@dataclass
class OneAgentCluster:
    url: str
    work_dir: Path
    master: subprocess.Popen[bytes]
    http: httpx.Client
    agent: subprocess.Popen[bytes] | None = None

    def start_agent(self) -> None:
        self.agent = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pallet.cli.agent",
                "--master",
                self.url,
                "--work-dir",
                str(self.work_dir),
                "--port",
                "0",
                "--hostname",
                "127.0.0.1",
                "--heartbeat-interval",
                "0.3",
                "--resources",
                "cpus:2;mem:1024;disk:1000;ports:[31000-31100]",
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(self.work_dir.parent / "agent.log", "ab"),  # noqa: SIM115
        )

    def kill_agent(self, sig: signal.Signals = signal.SIGKILL) -> None:
        assert self.agent is not None
        self.agent.send_signal(sig)
        self.agent.wait(30)
        self.agent = None

    def restart_and_adopt(
        self, before: dict[str, dict[str, Any]], pids: dict[str, int]
    ) -> dict[str, dict[str, Any]]:
        """Start the agent again; once it has been heard, the same tasks with the same
        processes are reported RUNNING and nothing is replaced."""
        last_heartbeat = self.node()["last_heartbeat"]
        self.start_agent()
        wait_for(
            lambda: self.node()["last_heartbeat"] != last_heartbeat, 20, "the new agent's heartbeat"
        )
        after = wait_for(lambda: self.running(2), 20, "the adopted tasks running")
        assert set(after) == set(before)
        assert {tid: self.main_pid(tid) for tid in after} == pids
        return after

    def tasks(self) -> list[dict[str, Any]]:
        r = self.http.get(f"/v2/apps{APP}")
        r.raise_for_status()
        return list(r.json()["app"]["tasks"])

    def running(self, count: int) -> dict[str, dict[str, Any]]:
        tasks = self.tasks()
        if len(tasks) == count and all(t["state"] == "TASK_RUNNING" for t in tasks):
            return {t["id"]: t for t in tasks}
        return {}

    def node(self) -> dict[str, Any]:
        (node,) = self.http.get("/v1/nodes").json()["nodes"]
        return dict(node)

    def main_pid(self, task_id: str) -> int:
        """The pid of the task's session leader, found by its sandbox."""
        sandbox = self.work_dir / "sandboxes" / task_id
        for p in psutil.process_iter(["cwd"]):
            with contextlib.suppress(psutil.Error):
                if p.info["cwd"] == str(sandbox) and os.getsid(p.pid) == p.pid:
                    return p.pid
        raise AssertionError(f"no process runs in {sandbox}")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _key_file(tmp_path: Path) -> Path:
    path = tmp_path / "secrets.key"
    write_private(path, (new_key_line() + "\n").encode())
    return path


def _start(tmp_path: Path, grace: float) -> Iterator[OneAgentCluster]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    master = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pallet.cli.master",
            "--port",
            str(port),
            "--store",
            f"sqlite:///{tmp_path / 'master.db'}",
            "--heartbeat-grace",
            str(grace),
            "--secrets-key-file",
            str(_key_file(tmp_path)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "master.log", "ab"),  # noqa: SIM115
    )
    work_dir = tmp_path / "agent"
    with httpx.Client(base_url=url, timeout=10.0) as http:
        cluster = OneAgentCluster(url, work_dir, master, http)
        try:
            wait_for(lambda: http.get("/v2/info").status_code == 200, 30, "master up")
            cluster.start_agent()
            wait_for(lambda: http.get("/v1/nodes").json()["nodes"], 30, "agent registered")
            yield cluster
        finally:
            if cluster.agent is None:  # a test left it down: a new one kills what is left
                cluster.start_agent()
            with contextlib.suppress(Exception):
                http.delete(f"/v2/apps{APP}", params={"force": "true"})
                wait_for(lambda: http.get(f"/v2/apps{APP}").status_code == 404, 20, "app gone")
                wait_for(lambda: not _sandbox_processes(work_dir), 20, "tasks gone")
            assert cluster.agent is not None
            cluster.agent.send_signal(signal.SIGUSR1)  # drain: kill what is left
            cluster.agent.wait(30)
            master.send_signal(signal.SIGTERM)
            master.wait(30)
    assert not _sandbox_processes(work_dir), "task processes left behind"


def _sandbox_processes(work_dir: Path) -> list[int]:
    found = []
    for p in psutil.process_iter(["cwd"]):
        with contextlib.suppress(psutil.Error):
            if p.info["cwd"] and p.info["cwd"].startswith(str(work_dir / "sandboxes")):
                found.append(p.pid)
    return found


@pytest.fixture
def patient(tmp_path: Path) -> Iterator[OneAgentCluster]:
    """A master that waits 60 s before it calls a silent node unreachable."""
    yield from _start(tmp_path, grace=60.0)


@pytest.fixture
def impatient(tmp_path: Path) -> Iterator[OneAgentCluster]:
    """A master that calls a node unreachable after 1.5 s of silence."""
    yield from _start(tmp_path, grace=1.5)


def _checkpointed(journal: Path) -> set[str]:
    """The tasks the agent's checkpoint journal holds (its last line about each)."""
    live: set[str] = set()
    for line in journal.read_bytes().splitlines():
        doc = json.loads(line)
        if "removed" in doc:
            live.discard(doc["removed"])
        else:
            live.add(doc["task_id"])
    return live


def _create_app(cluster: OneAgentCluster) -> dict[str, dict[str, Any]]:
    r = cluster.http.post(
        "/v2/apps", json={"id": APP, "cmd": "sleep 600", "instances": 2, "cpus": 0.1, "mem": 32}
    )
    assert r.status_code == 201, r.text
    return wait_for(lambda: cluster.running(2), 30, "2 tasks running")


def test_a_restarted_agent_adopts_its_running_tasks(patient: OneAgentCluster) -> None:
    cluster = patient
    before = _create_app(cluster)
    pids = {tid: cluster.main_pid(tid) for tid in before}

    cluster.kill_agent()
    assert all(_alive(pid) for pid in pids.values()), "tasks died with their agent"
    journal = cluster.work_dir / "checkpoints" / JOURNAL
    assert [p.name for p in journal.parent.iterdir()] == [JOURNAL]
    assert _checkpointed(journal) == set(before)

    after = cluster.restart_and_adopt(before, pids)
    assert all(after[t]["stagedAt"] == before[t]["stagedAt"] for t in before)

    # An adopted process that dies is seen (it is not the agent's child) and replaced.
    victim, survivor = sorted(before)
    os.kill(pids[victim], signal.SIGKILL)
    now = wait_for(
        lambda: (r := cluster.running(2)) and victim not in r and r, 30, "the victim replaced"
    )
    assert survivor in now and cluster.main_pid(survivor) == pids[survivor]
    failure = cluster.http.get(f"/v2/apps{APP}").json()["app"]["lastTaskFailure"]
    assert failure["taskId"] == victim
    assert "agent restart" in failure["message"], failure
    wait_for(
        lambda: victim not in _checkpointed(journal),
        10,
        "the victim's checkpoint removed once its end was acknowledged",
    )


def test_tasks_replaced_while_the_agent_was_away_are_killed_when_it_returns(
    impatient: OneAgentCluster,
) -> None:
    cluster = impatient
    before = _create_app(cluster)
    pids = {tid: cluster.main_pid(tid) for tid in before}

    cluster.kill_agent()
    wait_for(lambda: cluster.node()["state"] == "UNREACHABLE", 20, "the node unreachable")
    assert all(_alive(pid) for pid in pids.values())

    cluster.start_agent()
    # Reconciliation: the old tasks (adopted by the agent) are killed, two new ones run.
    after = wait_for(
        lambda: (r := cluster.running(2)) and not set(r) & set(before) and r,
        30,
        "two replacements running and the old tasks gone",
    )
    assert len(after) == 2
    wait_for(lambda: not any(_alive(pid) for pid in pids.values()), 20, "the old processes killed")


def test_sigterm_leaves_the_tasks_to_the_next_agent_and_sigusr1_drains(
    patient: OneAgentCluster,
) -> None:
    # As a Mesos agent: stopping it (an upgrade, a restart) does not touch its tasks.
    cluster = patient
    before = _create_app(cluster)
    pids = {tid: cluster.main_pid(tid) for tid in before}

    cluster.kill_agent(signal.SIGTERM)
    assert all(_alive(pid) for pid in pids.values()), "SIGTERM killed the tasks"
    cluster.restart_and_adopt(before, pids)

    # Drained, it leaves (its node takes no new task), kills them and says so, and exits.
    cluster.kill_agent(signal.SIGUSR1)
    assert not any(_alive(pid) for pid in pids.values()), "SIGUSR1 left tasks running"
    wait_for(
        lambda: all(t["id"] not in before or t["state"] != "TASK_RUNNING" for t in cluster.tasks()),
        10,
        "the kills reported to the master",
    )
    assert cluster.node()["state"] == "DRAINING"  # it said it was leaving: offered nothing


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_secrets_survive_an_agent_restart_and_a_relaunch_fetches_them_again(
    patient: OneAgentCluster,
) -> None:
    cluster = patient
    http = cluster.http
    assert http.put("/v1/secrets/db/password", json={"value": "first-value"}).status_code == 201
    app = {
        "id": APP,
        "cmd": "sleep 600",
        "instances": 2,
        "cpus": 0.1,
        "mem": 32,
        "env": {"DB_PASSWORD": {"secret": "pw"}},
        "secrets": {"pw": {"source": "db/password"}},
        "container": {"type": "MESOS", "volumes": [{"containerPath": "pw", "secret": "pw"}]},
    }
    assert http.post("/v2/apps", json=app).status_code == 201
    before = wait_for(lambda: cluster.running(2), 30, "2 tasks with secrets running")
    pids = {tid: cluster.main_pid(tid) for tid in before}
    assert {_environ(pid)["DB_PASSWORD"] for pid in pids.values()} == {"first-value"}

    cluster.kill_agent()
    for checkpoint in (cluster.work_dir / "checkpoints").iterdir():
        text = checkpoint.read_text()
        assert "db/password" in text and "first-value" not in text
    cluster.restart_and_adopt(before, pids)  # same processes, their environment kept
    assert {_environ(pid)["DB_PASSWORD"] for pid in pids.values()} == {"first-value"}

    # a new value reaches the next launch: the replacement fetches again
    assert http.patch("/v1/secrets/db/password", json={"value": "second-value"}).status_code == 204
    victim = sorted(before)[0]
    os.kill(pids[victim], signal.SIGKILL)
    now = wait_for(
        lambda: (r := cluster.running(2)) and victim not in r and r, 30, "the replacement"
    )
    (new,) = set(now) - set(before)
    assert _environ(cluster.main_pid(new))["DB_PASSWORD"] == "second-value"
    assert (cluster.work_dir / "sandboxes" / new / "pw").read_text() == "second-value"
