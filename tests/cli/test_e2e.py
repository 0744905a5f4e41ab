"""The CLI end to end: ``pallet up --agents 2`` as a subprocess (stopped with SIGINT), then
``pallet app|task|node ...`` as a user types them, against real agents running real tasks."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow

READY_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pallet(master: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PALLET_MASTER": master, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "pallet.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def ok(master: str, *args: str) -> str:
    done = pallet(master, *args)
    assert done.returncode == 0, f"pallet {' '.join(args)}: {done.stderr}"
    assert "Traceback" not in done.stderr
    return done.stdout


def listing(master: str, *args: str) -> Any:
    return json.loads(ok(master, *args, "--json"))


def eventually(check: Any, seconds: float = 20.0) -> Any:
    """``check()``'s first truthy answer, polled for up to ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        answer = check()
        if answer or time.monotonic() > deadline:
            return answer
        time.sleep(0.1)


@pytest.fixture
def master(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "up.log").open("w")
    up = subprocess.Popen(
        [sys.executable, "-m", "pallet.cli.main", "up", "--agents", "2", "--port", str(port),
         "--agent-port", "0", "--state-dir", str(tmp_path / "state")],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip

    def two_nodes() -> bool:
        try:
            return len(httpx.get(f"{url}/v1/nodes", timeout=1).json()["nodes"]) == 2
        except (httpx.HTTPError, ValueError, KeyError):
            return up.poll() is not None  # stop polling a cluster that died

    try:
        ready = eventually(two_nodes, READY_SECONDS) and up.poll() is None
        assert ready, f"pallet up did not get ready:\n{(tmp_path / 'up.log').read_text()}"
        yield url
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)  # our own session: pallet up and its children
            up.wait()
        log.close()


def test_an_app_from_file_to_removal(master: str, tmp_path: Path) -> None:
    web = tmp_path / "web.json"
    web.write_text(
        json.dumps(
            {
                "id": "/e2e/hello",
                "cmd": "echo hello from $MESOS_TASK_ID; exec sleep 600",
                "cpus": 0.05,
                "mem": 32,
                "instances": 1,
            }
        )
    )
    out = ok(master, "app", "add", str(web), "--wait", "--timeout", "60")
    assert "Created /e2e/hello" in out and "✓ /e2e/hello: 1 of 1 instances running" in out

    (app,) = listing(master, "app", "list")
    assert app["id"] == "/e2e/hello" and app["tasksRunning"] == 1

    out = ok(master, "app", "scale", "e2e/hello", "2", "--wait", "--timeout", "60")
    assert "✓ /e2e/hello: 2 of 2 instances running" in out
    tasks = listing(master, "task", "list", "/e2e/hello")
    assert len(tasks) == 2 and {t["state"] for t in tasks} == {"TASK_RUNNING"}
    table = ok(master, "task", "list")
    assert all(t["id"] in table for t in tasks)

    task_id = tasks[0]["id"]
    logged = eventually(lambda: f"hello from {task_id}" in ok(master, "task", "logs", task_id))
    assert logged, ok(master, "task", "logs", task_id)

    nodes = listing(master, "node", "list")
    assert len(nodes) == 2 and {n["state"] for n in nodes} == {"ACTIVE"}
    assert sorted(t for n in nodes for t in n["tasks"]) == sorted(t["id"] for t in tasks)

    out = ok(master, "app", "remove", "/e2e/hello", "--wait", "--timeout", "60")
    assert "✓ /e2e/hello removed" in out
    assert listing(master, "app", "list") == []
    assert listing(master, "task", "list") == []


def test_follow_a_log_and_bad_input(master: str, tmp_path: Path) -> None:
    count = tmp_path / "count.yaml"
    count.write_text(
        "id: /e2e/count\n"
        "cmd: for i in 1 2 3; do echo line $i; sleep 0.3; done\n"
        "cpus: 0.05\nmem: 32\n"
    )
    ok(master, "app", "add", str(count))
    # Its tasks live about a second between restarts: look for one over HTTP, which is
    # quick (each CLI call costs an interpreter start, seconds on a loaded machine).
    tasks = eventually(
        lambda: httpx.get(f"{master}/v2/apps/e2e/count/tasks", timeout=5).json()["tasks"],
        seconds=60,
    )
    assert tasks, "no task of /e2e/count appeared"
    followed = pallet(master, "task", "logs", tasks[0]["id"], "--follow", timeout=60)
    assert followed.returncode == 0, followed.stderr
    assert followed.stdout == "line 1\nline 2\nline 3\n"

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"id": "/e2e/bad", "cmd": "true", "cpus": -1}))
    refused = pallet(master, "app", "add", str(bad))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert f"app file {bad}: the master rejected it" in refused.stderr
    assert "\n  cpus: " in refused.stderr
