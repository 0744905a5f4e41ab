"""The README's quick start, line by line as a user types it, and every app of
``examples/``, against one real ``pallet up`` (its agents in zones a, b and c)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from e2e.conftest import LiveCluster, wait_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="module")
def up_args() -> tuple[str, ...]:
    # One GPU declared per agent: this machine has no driver (gpu.yaml's own setup).
    return ("--attributes", "zone=a;zone=b;zone=c", "--resources", "gpus:1")


def pallet(cluster: LiveCluster, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PALLET_MASTER": cluster.url, "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-m", "pallet.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 0, f"pallet {' '.join(args)}:\n{done.stdout}{done.stderr}"
    assert "Traceback" not in done.stderr
    return done


def quick_start() -> list[list[str]]:
    """The ``pallet`` lines of the README's quick start, comments dropped."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "the quick start has no sh block"
    lines = [shlex.split(line, comments=True) for line in block.group(1).splitlines()]
    return [words for words in lines if words]


def tasks_of(cluster: LiveCluster, app_id: str) -> list[dict[str, Any]]:
    return list(cluster.app(app_id)["tasks"])


def test_the_readme_quick_start_runs_as_written(cluster: LiveCluster) -> None:
    lines = quick_start()
    assert all(words[0] == "pallet" for words in lines), lines
    for words in lines:
        pallet(cluster, *words[1:])
    assert httpx.get(f"{cluster.url}/v2/apps/web").status_code == 404  # removed at the end
    assert len(cluster.running("/worker", 3)) == 3
    assert cluster.running("/shop/web", 1) and cluster.running("/shop/cache", 1)
    again = json.loads(pallet(cluster, "app", "apply", "examples/group.yaml", "--json").stdout)
    assert [a["action"] for a in again] == ["unchanged", "unchanged"]
    for app_id in ("/worker", "/shop/web", "/shop/cache"):
        cluster.delete_app(app_id)


def test_web_serves_its_page_and_is_healthy(cluster: LiveCluster) -> None:
    pallet(cluster, "app", "add", "examples/web.yaml", "--wait")
    tasks = wait_for(lambda: cluster.running("/web", 2), 60, "2 running")
    wait_for(lambda: cluster.app("/web")["tasksHealthy"] == 2, 60, "2 healthy")
    for task in tasks:
        host, port = task["host"], task["ports"][0]
        if not _ours(cluster, host, port):
            pytest.skip(f"{host}:{port} is held by another cluster on this shared machine")
        page = httpx.get(f"http://{host}:{port}/", timeout=10).text
        assert f"Hello from {task['id']} on {host}:{port}" in page
    cluster.delete_app("/web")


def _ours(cluster: LiveCluster, host: str, port: int) -> bool:
    """Whether the process listening on host:port works in this cluster's sandboxes (every
    `pallet up` uses 127.0.0.2... and ports 31000-32000: clusters started by others on
    this machine may hold the same address)."""
    for c in psutil.net_connections(kind="tcp"):
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid:
            if c.laddr.ip not in (host, "0.0.0.0", "::"):
                continue
            try:
                return str(cluster.state_dir) in psutil.Process(c.pid).cwd()
            except psutil.Error:
                return False
    return True


def test_constrained_puts_one_instance_on_each_node(cluster: LiveCluster) -> None:
    pallet(cluster, "app", "add", "examples/constrained.yaml", "--wait")
    tasks = wait_for(lambda: cluster.running("/constrained", 3), 60, "3 running")
    assert len({t["host"] for t in tasks}) == 3
    cluster.delete_app("/constrained")


def test_zones_stay_in_zones_a_and_b_evenly(cluster: LiveCluster) -> None:
    pallet(cluster, "app", "add", "examples/zones.yaml", "--wait")
    tasks = wait_for(lambda: cluster.running("/zones", 4), 60, "4 running")
    zones = {a["address"]: z for a, z in zip(cluster.agents(), "abc", strict=True)}
    placed = sorted(zones[t["host"]] for t in tasks)
    assert placed == ["a", "a", "b", "b"]
    cluster.delete_app("/zones")


def test_gpu_is_told_the_device_it_was_given(cluster: LiveCluster) -> None:
    pallet(cluster, "app", "add", "examples/gpu.yaml", "--wait")
    (task,) = wait_for(lambda: cluster.running("/gpu", 1), 60, "1 running")

    def said() -> str:
        r = cluster.http.get(f"/v1/tasks/{task['id']}/logs")
        return str(r.json()["data"]) if r.status_code == 200 else ""

    out = wait_for(lambda: "my GPUs:" in said() and said(), 30, "the task's output")
    assert "my GPUs: 0\n" in out
    node = cluster.http.get(f"/v1/nodes/{task['slaveId']}").json()
    assert node["allocated"]["gpus"] == 1.0
    cluster.delete_app("/gpu")


def test_pod_from_the_cli(cluster: LiveCluster, tmp_path: Path) -> None:
    pallet(cluster, "pod", "add", "examples/pod.json", "--wait")
    (listed,) = json.loads(pallet(cluster, "pod", "list", "--json").stdout)
    assert listed["id"] == "/shop/pod" and listed["status"] == "STABLE"
    assert "/shop/pod" in pallet(cluster, "pod", "list").stdout
    shown = pallet(cluster, "pod", "show", "/shop/pod").stdout
    instances = listed["instances"]
    assert len(instances) == 2
    for inst in instances:
        assert inst["id"] in shown and inst["agentHostname"] in shown
        web = inst["containers"][0]
        port = web["endpoints"][0]["allocatedHostPort"]
        assert httpx.get(f"http://{inst['agentHostname']}:{port}/").status_code == 200
        assert f"http:{port}" in shown

        # the logger writes into the volume the web container serves
        def status(url: str = f"http://{inst['agentHostname']}:{port}/status.txt") -> str:
            r = httpx.get(url)
            return r.text if r.status_code == 200 else ""

        served = wait_for(status, 30, "the logger's file served")
        assert served == f"pod {inst['id']} alive\n"
        logged = pallet(cluster, "task", "logs", inst["id"], "--container", "logger").stdout
        assert logged.startswith(f"pod {inst['id']} alive\n")
    # a bad definition: one line naming the field, exit 2, nothing created
    bad = json.loads((EXAMPLES / "pod.json").read_text())
    bad["id"] = "/shop/bad"
    bad["containers"][0]["image"] = {"kind": "APPC", "id": "nginx"}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    env = os.environ | {"PALLET_MASTER": cluster.url}
    done = subprocess.run(
        [sys.executable, "-m", "pallet.cli.main", "pod", "add", str(tmp_path / "bad.json")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2 and "containers[0].image.kind" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    pallet(cluster, "pod", "remove", "/shop/pod", "--wait")
    assert json.loads(pallet(cluster, "pod", "list", "--json").stdout) == []


def test_every_example_is_run_by_this_suite() -> None:
    covered = {"web.yaml", "worker.yaml", "group.yaml", "constrained.yaml", "zones.yaml"}
    covered |= {"gpu.yaml", "pod.json"}
    assert {p.name for p in EXAMPLES.iterdir() if p.suffix in (".yaml", ".json")} <= covered
