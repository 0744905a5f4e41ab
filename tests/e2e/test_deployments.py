"""Deployments on a real ``pallet up`` with real HTTP tasks: a rolling upgrade that waits
for readiness and never goes below the minimum, a broken version rolled back by the
progress deadline, canaries promoted from the CLI, and a group started in dependency
order. One cluster for the module."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from polling import wait_for

from .conftest import LiveCluster

pytestmark = [pytest.mark.slow]

SERVE = "exec python3 -m http.server $PORT0 --bind 0.0.0.0"


def _http_app(app_id: str, instances: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": app_id,
        "cmd": SERVE,
        "cpus": 0.05,
        "mem": 48,
        "instances": instances,
        "portDefinitions": [{"port": 0, "name": "http"}],
        "healthChecks": [
            {
                "protocol": "MESOS_HTTP",
                "portIndex": 0,
                "path": "/",
                "gracePeriodSeconds": 20,
                "intervalSeconds": 1,
                "timeoutSeconds": 2,
                "maxConsecutiveFailures": 3,
                "delaySeconds": 0,
            }
        ],
        **extra,
    }


def _ready(cluster: LiveCluster, app_id: str) -> int:
    tasks = cluster.http.get(f"/v2/apps{app_id}/tasks").json()["tasks"]
    return sum(
        1
        for t in tasks
        if t["state"] == "TASK_RUNNING"
        and t.get("healthCheckResults")
        and all(h["alive"] for h in t["healthCheckResults"])
    )


def _settled(cluster: LiveCluster, app_id: str, instances: int, timeout: float = 90) -> None:
    def done() -> bool:
        app = cluster.app(app_id)
        return not app["deployments"] and _ready(cluster, app_id) == instances

    wait_for(done, timeout, f"{app_id}: {instances} ready, no deployment")


class _Sampler:
    """The least number of ready tasks seen, every 100 ms, in a thread."""

    def __init__(self, cluster: LiveCluster, app_id: str) -> None:
        self.cluster, self.app_id = cluster, app_id
        self.least: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import httpx

        with httpx.Client(base_url=self.cluster.url, timeout=10) as http:
            while not self._stop.is_set():
                tasks = http.get(f"/v2/apps{self.app_id}/tasks").json()["tasks"]
                ready = sum(
                    1
                    for t in tasks
                    if t["state"] == "TASK_RUNNING"
                    and t.get("healthCheckResults")
                    and all(h["alive"] for h in t["healthCheckResults"])
                )
                self.least = ready if self.least is None else min(self.least, ready)
                self._stop.wait(0.1)

    def __enter__(self) -> _Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def pallet(cluster: LiveCluster) -> Iterator[Any]:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        env = os.environ | {"PALLET_MASTER": cluster.url}
        return subprocess.run(
            [sys.executable, "-m", "pallet.cli.main", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )

    yield run


def test_an_upgrade_waits_for_readiness_and_keeps_every_instance(cluster: LiveCluster) -> None:
    check = {
        "name": "ready",
        "portName": "http",
        "path": "/",
        "intervalSeconds": 2,
        "timeoutSeconds": 1,
    }
    app = _http_app("/dep/web", 3, readinessChecks=[check])
    cluster.http.post("/v2/apps", json=app).raise_for_status()
    _settled(cluster, "/dep/web", 3)
    with _Sampler(cluster, "/dep/web") as sampler:
        r = cluster.http.put("/v2/apps/dep/web", json={"env": {"V": "2"}})
        r.raise_for_status()
        seen_readiness = wait_for(
            lambda: [
                result
                for d in cluster.http.get("/v2/deployments").json()
                for a in d["currentActions"]
                for result in a.get("readinessCheckResults", [])
            ],
            30,
            "readiness results in /v2/deployments",
        )
        _settled(cluster, "/dep/web", 3)
    assert seen_readiness[0]["name"] == "ready"
    assert sampler.least is not None and sampler.least >= 3  # minimumHealthCapacity 1
    tasks = cluster.app("/dep/web")["tasks"]
    assert len(tasks) == 3 and len({t["version"] for t in tasks}) == 1
    cluster.delete_app("/dep/web")


def test_a_broken_version_is_rolled_back_by_its_deadline(cluster: LiveCluster) -> None:
    strategy = {
        "minimumHealthCapacity": 0.5,
        "maximumOverCapacity": 0,
        "progressDeadlineSeconds": 8,
        "autoRollback": True,
    }
    cluster.http.post("/v2/apps", json=_http_app("/dep/api", 2, upgradeStrategy=strategy))
    _settled(cluster, "/dep/api", 2)
    with _Sampler(cluster, "/dep/api") as sampler:
        start = time.monotonic()
        # listens, but not on the port its health check probes: never healthy
        cluster.http.put("/v2/apps/dep/api", json={"cmd": "exec python3 -m http.server 0"})
        wait_for(lambda: cluster.app("/dep/api")["cmd"] == SERVE, 40, "the rollback to the old cmd")
        _settled(cluster, "/dep/api", 2)
        seconds = time.monotonic() - start
    assert seconds < 8 + 30
    assert sampler.least is not None and sampler.least >= 1  # ceil(2 x 0.5)
    cluster.delete_app("/dep/api")


def test_canaries_wait_for_a_promotion(cluster: LiveCluster, pallet: Any) -> None:
    strategy = {"minimumHealthCapacity": 1, "maximumOverCapacity": 1, "canaryInstances": 1}
    cluster.http.post("/v2/apps", json=_http_app("/dep/canary", 2, upgradeStrategy=strategy))
    _settled(cluster, "/dep/canary", 2)
    cluster.http.put("/v2/apps/dep/canary", json={"env": {"V": "2"}}).raise_for_status()
    paused = wait_for(
        lambda: [
            d
            for d in cluster.http.get("/v2/deployments").json()
            if d.get("canary", {}).get("paused")
        ],
        60,
        "the canary ready and the deployment paused",
    )
    assert len(cluster.app("/dep/canary")["tasks"]) == 3  # one canary beside two old
    listed = pallet("deployment", "list")
    assert listed.returncode == 0 and "promote" in listed.stdout
    promoted = pallet("deployment", "promote", paused[0]["id"])
    assert promoted.returncode == 0, promoted.stderr
    _settled(cluster, "/dep/canary", 2)
    cluster.delete_app("/dep/canary")


def test_a_group_starts_its_dependencies_first(cluster: LiveCluster) -> None:
    group = {
        "id": "/dep/shop",
        "apps": [
            _http_app("db", 1),
            _http_app("web", 1, dependencies=["db"]),
        ],
    }
    r = cluster.http.post("/v2/groups", json=group)
    assert r.status_code == 201, r.text
    wait_for(lambda: _ready(cluster, "/dep/shop/web") == 1, 90, "web ready")
    db = cluster.app("/dep/shop/db")["tasks"][0]
    web = cluster.app("/dep/shop/web")["tasks"][0]
    db_healthy = db["healthCheckResults"][0]["firstSuccess"]
    assert web["stagedAt"] >= db_healthy  # web was placed only once db was ready
    cluster.http.delete("/v2/groups/dep/shop", params={"force": "true"}).raise_for_status()
    wait_for(lambda: not cluster.http.get("/v2/deployments").json(), 60, "group deleted")
