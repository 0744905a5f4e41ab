"""Several masters on one etcd: one leads, the others redirect to it; an agent that knows
all of them follows the leader; the leader killed, another takes over with every
acknowledged write and no task restarted; a leader paused past its lease and resumed can
write nothing (its fence) and steps down."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from pallet.store.etcd.server import etcd_available, free_ports, running_etcd
from polling import wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(etcd_available() is not None, reason=str(etcd_available())),
]

TTL = 2


@dataclass
class Masters:
    ports: list[int]
    procs: list[subprocess.Popen[bytes]]
    logs: list[Path]

    def url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.ports[i]}"

    def info(self, i: int) -> dict[str, object] | None:
        with contextlib.suppress(httpx.HTTPError):
            return dict(httpx.get(f"{self.url(i)}/v2/info", timeout=3).json())
        return None

    def leader(self, among: list[int] | None = None) -> int | None:
        """The index of the one master that says it leads (None: none, or not agreed)."""
        leading = [
            i
            for i in (among if among is not None else range(len(self.ports)))
            if (self.info(i) or {}).get("elected")
        ]
        return leading[0] if len(leading) == 1 else None


def _one(index: int | None) -> tuple[int] | None:
    """``wait_for`` wants a truthy answer; master 0 is a fine one."""
    return None if index is None else (index,)


def _master(port: int, store: str, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [
                sys.executable, "-m", "pallet.cli.master", "--port", str(port), "--store", store,
                "--leader-ttl", str(TTL), "--heartbeat-grace", "10",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip


@pytest.fixture
def masters(tmp_path: Path) -> Iterator[Masters]:
    with running_etcd(tmp_path / "etcd", 1) as etcd:
        ports = free_ports(3)
        logs = [tmp_path / f"master-{i}.log" for i in range(3)]
        procs = [_master(p, etcd.url, log) for p, log in zip(ports, logs, strict=True)]
        group = Masters(ports, procs, logs)
        try:
            for i in range(3):
                wait_for(
                    lambda i=i: httpx.get(f"{group.url(i)}/ping", timeout=1).status_code == 200,
                    60,
                    f"master {i}",
                )
            wait_for(lambda: group.leader() is not None, 30, "one leader")
            yield group
        finally:
            for p in procs:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGCONT)
                    p.terminate()
            for p in procs:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(20)
                if p.poll() is None:
                    p.kill()


def _agent(masters: Masters, work: Path) -> subprocess.Popen[bytes]:
    urls = ",".join(masters.url(i) for i in range(3))
    with open(work.parent / "agent.log", "ab") as out:
        return subprocess.Popen(
            [
                sys.executable, "-m", "pallet.cli.agent", "--master", urls, "--work-dir",
                str(work), "--port", "0", "--hostname", "127.0.0.1", "--heartbeat-interval",
                "0.5", "--resources", "cpus:2;mem:1024;disk:100;ports:[31000-31010]",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip


def _running(url: str, app: str, count: int) -> list[dict[str, object]]:
    tasks = httpx.get(f"{url}/v2/apps{app}/tasks", follow_redirects=True, timeout=5).json()
    found = [t for t in tasks["tasks"] if t["state"] == "TASK_RUNNING"]
    return found if len(found) == count else []


def _task_pids(work: Path) -> set[int]:
    """The processes running in the sandboxes under an agent's work dir (this test's own,
    never another test's or another engineer's)."""
    found = set()
    for p in psutil.process_iter(["cwd"]):
        cwd = p.info["cwd"]
        if cwd and cwd.startswith(str(work)):
            found.add(p.pid)
    return found


def test_failover_keeps_writes_and_tasks(masters: Masters, tmp_path: Path) -> None:
    lead = masters.leader()
    assert lead is not None
    follower = next(i for i in range(3) if i != lead)
    # a follower answers its own info, and sends the rest to the leader
    assert masters.info(follower)["leader"] == f"127.0.0.1:{masters.ports[lead]}"  # type: ignore[index]
    r = httpx.get(f"{masters.url(follower)}/v2/apps")
    assert r.status_code == 307 and r.headers["location"].startswith(masters.url(lead))
    app = {"id": "/ha/web", "cmd": "sleep 600", "cpus": 0.1, "mem": 16, "instances": 2}
    r = httpx.post(f"{masters.url(follower)}/v2/apps", json=app, follow_redirects=True)
    assert r.status_code == 201, r.text

    agent = _agent(masters, tmp_path / "agent")
    try:
        tasks = wait_for(lambda: _running(masters.url(lead), "/ha/web", 2), 60, "2 running")
        pids = _task_pids(tmp_path / "agent")
        assert len(pids) >= 2
        masters.procs[lead].kill()  # the leader dies
        rest = [i for i in range(3) if i != lead]
        (new,) = wait_for(lambda: _one(masters.leader(rest)), 30, "a new leader")
        # every acknowledged write is there, and the same tasks run (none restarted)
        again = wait_for(lambda: _running(masters.url(new), "/ha/web", 2), 60, "2 running")
        assert {t["id"] for t in again} == {t["id"] for t in tasks}
        assert pids <= _task_pids(tmp_path / "agent")
        r = httpx.put(f"{masters.url(new)}/v2/apps/ha/web", json={"instances": 3})
        assert r.status_code == 200, r.text
        wait_for(lambda: _running(masters.url(new), "/ha/web", 3), 60, "3 running")
        httpx.delete(f"{masters.url(new)}/v2/apps/ha/web", params={"force": "true"})
    finally:
        agent.send_signal(signal.SIGUSR1)  # drain: its tasks end with it
        with contextlib.suppress(subprocess.TimeoutExpired):
            agent.wait(60)
        if agent.poll() is None:
            agent.kill()


def test_a_paused_leader_cannot_write_when_it_resumes(masters: Masters) -> None:
    lead = masters.leader()
    assert lead is not None
    os.kill(masters.procs[lead].pid, signal.SIGSTOP)  # paused past its lease
    rest = [i for i in range(3) if i != lead]
    (new,) = wait_for(lambda: _one(masters.leader(rest)), 30, "a new leader")
    app = {"id": "/ha/kept", "cmd": "sleep 600", "cpus": 0.1, "mem": 16, "instances": 0}
    assert httpx.post(f"{masters.url(new)}/v2/apps", json=app).status_code == 201
    os.kill(masters.procs[lead].pid, signal.SIGCONT)
    # it finds out (its lease is gone, or its first write fails the fence) and follows
    wait_for(
        lambda: (masters.info(lead) or {}).get("elected") is False, 30, "the old leader steps down"
    )
    log = masters.logs[lead].read_text()
    assert "no longer the leader" in log
    # it wrote nothing: the new leader's record stands, and it redirects like any follower
    r = httpx.get(f"{masters.url(lead)}/v2/apps/ha/kept", follow_redirects=True)
    assert r.status_code == 200
    assert masters.leader() == new
    # abdicating hands over to another master
    r = httpx.delete(f"{masters.url(new)}/v2/leader")
    assert r.status_code == 200, r.text
    wait_for(lambda: masters.leader() not in (None, new), 30, "another leader")


def _run_of(url: str, job: str, run_id: str) -> dict[str, object] | None:
    """The run as the leader at ``url`` knows it (active, or finished in the history)."""
    with contextlib.suppress(httpx.HTTPError, ValueError):
        r = httpx.get(f"{url}/v1/jobs/{job}/runs/{run_id}", timeout=5)
        if r.status_code == 200:
            return dict(r.json())
    return None


def test_a_job_run_in_flight_survives_failover(masters: Masters, tmp_path: Path) -> None:
    lead = masters.leader()
    assert lead is not None
    ran = tmp_path / "ran"
    job = {
        "id": "ha.batch",
        "run": {"cmd": f"echo $PALLET_JOB_INDEX >> {ran}; sleep 8", "cpus": 0.1, "mem": 16},
    }
    follower = next(i for i in range(3) if i != lead)
    r = httpx.post(f"{masters.url(follower)}/v1/jobs", json=job, follow_redirects=True)
    assert r.status_code == 201, r.text
    agent = _agent(masters, tmp_path / "agent")
    try:
        r = httpx.post(f"{masters.url(lead)}/v1/jobs/ha.batch/runs", json={})
        assert r.status_code == 201, r.text
        run_id = r.json()["id"]
        wait_for(
            lambda: (
                (_run_of(masters.url(lead), "ha.batch", run_id) or {}).get("status") == "ACTIVE"
            ),
            60,
            "the run ACTIVE",
        )
        masters.procs[lead].kill()  # the leader dies with the run in flight
        rest = [i for i in range(3) if i != lead]
        (new,) = wait_for(lambda: _one(masters.leader(rest)), 30, "a new leader")
        # the new leader knows the same run, and it ends SUCCESS without a second start
        assert (_run_of(masters.url(new), "ha.batch", run_id) or {}).get("status") in (
            "ACTIVE",
            "SUCCESS",
        )
        done = wait_for(
            lambda: (
                (_run_of(masters.url(new), "ha.batch", run_id) or {}).get("status")
                in ("SUCCESS", "FAILED")
            ),
            90,
            "the run to end",
        )
        assert done
        final = _run_of(masters.url(new), "ha.batch", run_id)
        assert final is not None and final["status"] == "SUCCESS", final
        assert ran.read_text().split() == ["0"]  # its task started once
        jobs = httpx.get(f"{masters.url(new)}/v1/jobs/ha.batch?embed=history").json()
        assert jobs["history"]["successCount"] == 1
        assert not httpx.get(f"{masters.url(new)}/v1/jobs/ha.batch/runs").json()
    finally:
        agent.send_signal(signal.SIGUSR1)
        with contextlib.suppress(subprocess.TimeoutExpired):
            agent.wait(60)
        if agent.poll() is None:
            agent.kill()
