"""``pallet bench deploy``: rolling upgrades, an automatic rollback and dry runs on a real
``pallet up``, checked against the capacity bounds sample by sample; spawns processes.

- Upgrades: a 10-instance app serving HTTP (``python3 -m http.server $PORT0``, with an
  HTTP health check) is upgraded 20 times in a row under each strategy pair. Every
  100 ms a sampler reads the app's tasks: *ready* (RUNNING and healthy) must never be
  below ``ceil(instances x minimumHealthCapacity)`` and *live* (every task not ended,
  those being killed included) never above ``instances x (1 + maximumOverCapacity)``
  (one more when the two meet, as Marathon allows). A sample outside is a violation,
  unless the only reason is a RUNNING task whose last health probe failed (on a busy
  machine a probe can time out): such samples are counted apart as ``check_dips``, since
  no deployment can keep a task from failing a check; a violation is a sample that is
  outside even counting those tasks, i.e. too few tasks left running or too many live.
- Rollback: the same app changed to a version whose health check never passes, with
  ``progressDeadlineSeconds: 20, autoRollback: true``: seconds until it is back on the
  old version with every instance ready, and the fewest ready old tasks seen meanwhile.
- Dry run: with 1,000 apps in the master, ``PUT /v2/apps/{id}?dryRun=true`` of a config
  change: the store revision (``pallet_store_revision``) and ``/v2/apps`` are unchanged
  after every one; the latency percentiles. The baseline in the same run is a plain
  ``GET /v2/apps/{id}`` of the same apps.
"""

from __future__ import annotations

import contextlib
import math
import re
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from pallet.bench.cluster import free_port, running_up

__all__ = ["STRATEGIES", "DeployResult", "run_deploy_bench"]

STRATEGIES: tuple[tuple[float, float], ...] = ((1.0, 1.0), (0.5, 0.0), (1.0, 0.0), (0.0, 1.0))
"""(minimumHealthCapacity, maximumOverCapacity): Marathon's default first."""

_SERVE = "exec python3 -m http.server $PORT0 --bind 0.0.0.0"
_REVISION = re.compile(r"^pallet_store_revision\s+([0-9.e+]+)$", re.M)


@dataclass
class UpgradeRun:
    strategy: tuple[float, float]
    runs: int
    violations: int = 0
    check_dips: int = 0
    samples: int = 0
    least_ready: int = 0
    most_live: int = 0
    seconds: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "strategy": list(self.strategy),
            "runs": self.runs,
            "violations": self.violations,
            "check_dips": self.check_dips,
            "samples": self.samples,
            "least_ready": self.least_ready,
            "most_live": self.most_live,
            "median_upgrade_s": round(statistics.median(self.seconds), 2) if self.seconds else None,
        }


@dataclass
class DeployResult:
    instances: int
    upgrades: list[UpgradeRun]
    rollback: dict[str, Any]
    dry_run: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "instances": self.instances,
            "upgrades": [u.to_json() for u in self.upgrades],
            "rollback": self.rollback,
            "dry_run": self.dry_run,
        }


def bounds(instances: int, min_health: float, over: float) -> tuple[int, int]:
    """(least ready, most live) a strategy allows, as Pallet and Marathon compute them."""
    least = math.ceil(instances * min_health - 1e-9)
    most = math.floor(instances * (1 + over) + 1e-9)
    if least >= most:
        most = least + 1
    return least, most


def _app(
    app_id: str, instances: int, strategy: tuple[float, float], version: int
) -> dict[str, Any]:
    return {
        "id": app_id,
        "cmd": _SERVE,
        "cpus": 0.02,
        "mem": 48,
        "instances": instances,
        "env": {"BENCH_VERSION": str(version)},
        "portDefinitions": [{"port": 0, "name": "http"}],
        "healthChecks": [
            {
                "protocol": "MESOS_HTTP",
                "portIndex": 0,
                "path": "/",
                "gracePeriodSeconds": 30,
                "intervalSeconds": 1,
                "timeoutSeconds": 2,
                "maxConsecutiveFailures": 3,
                "delaySeconds": 0,
            }
        ],
        "upgradeStrategy": {
            "minimumHealthCapacity": strategy[0],
            "maximumOverCapacity": strategy[1],
        },
    }


def _counts(client: httpx.Client, app_id: str, config: str | None = None) -> tuple[int, int, int]:
    """(ready, live, failing) of the app's tasks: failing are RUNNING tasks that had
    passed their checks and whose last probe failed (``config``: that version only)."""
    tasks = client.get(f"/v2/apps{app_id}/tasks").json()["tasks"]
    ready = failing = 0
    for t in tasks:
        checks = t.get("healthCheckResults") or []
        healthy = bool(checks) and all(c.get("alive") for c in checks)
        current = config is None or t.get("version") == config
        if t["state"] == "TASK_RUNNING" and current:
            if healthy:
                ready += 1
            elif any(c.get("lastSuccess") for c in checks):
                failing += 1
    return ready, len(tasks), failing


class _Sampler:
    """Reads (ready, live) every ``interval`` seconds in a thread until stopped."""

    def __init__(self, url: str, app_id: str, interval: float = 0.1) -> None:
        self.url, self.app_id, self.interval = url, app_id, interval
        self.samples: list[tuple[int, int, int]] = []
        self.config: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10.0) as client:
            while not self._stop.is_set():
                with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                    self.samples.append(_counts(client, self.app_id, self.config))
                self._stop.wait(self.interval)

    def __enter__(self) -> _Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _settled(client: httpx.Client, app_id: str, instances: int, timeout: float) -> float:
    """Seconds until the app has no deployment and ``instances`` ready tasks."""
    start = time.perf_counter()
    while True:
        app = client.get(f"/v2/apps{app_id}").json()["app"]
        ready, live, _ = _counts(client, app_id)
        if not app["deployments"] and ready == instances and live == instances:
            return time.perf_counter() - start
        if time.perf_counter() - start > timeout:
            raise RuntimeError(f"{app_id} did not settle within {timeout:.0f} s: {ready}/{live}")
        time.sleep(0.1)


def _upgrades(
    client: httpx.Client, url: str, instances: int, strategy: tuple[float, float], runs: int
) -> UpgradeRun:
    app_id = f"/bench/deploy-{int(strategy[0] * 100)}-{int(strategy[1] * 100)}"
    client.post("/v2/apps", json=_app(app_id, instances, strategy, 0)).raise_for_status()
    _settled(client, app_id, instances, 300)
    least, most = bounds(instances, *strategy)
    result = UpgradeRun(strategy, runs, least_ready=instances, most_live=0)
    with _Sampler(url, app_id) as sampler:
        for version in range(1, runs + 1):
            change = {"env": {"BENCH_VERSION": str(version)}}
            client.put(f"/v2/apps{app_id}", json=change).raise_for_status()
            result.seconds.append(_settled(client, app_id, instances, 300))
    for ready, live, failing in sampler.samples:
        result.samples += 1
        result.least_ready = min(result.least_ready, ready)
        result.most_live = max(result.most_live, live)
        if live > most or ready + failing < least:
            result.violations += 1
        elif ready < least:
            result.check_dips += 1
    client.delete(f"/v2/apps{app_id}", params={"force": "true"}).raise_for_status()
    return result


def _rollback(client: httpx.Client, url: str, instances: int, deadline: float) -> dict[str, Any]:
    app_id = "/bench/rollback"
    strategy = (0.5, 0.0)
    good = _app(app_id, instances, strategy, 0)
    good["upgradeStrategy"] |= {"progressDeadlineSeconds": deadline, "autoRollback": True}
    client.post("/v2/apps", json=good).raise_for_status()
    _settled(client, app_id, instances, 300)
    old_config = client.get(f"/v2/apps{app_id}").json()["app"]["versionInfo"]["lastConfigChangeAt"]
    least, _ = bounds(instances, *strategy)
    # Serves, but not on the port its health check probes: never healthy, so every ready
    # task the sampler sees is one of the old version's (or its replacement's).
    broken = {"cmd": "exec python3 -m http.server 0", "env": {"BENCH_VERSION": "broken"}}
    with _Sampler(url, app_id) as sampler:
        start = time.perf_counter()
        client.put(f"/v2/apps{app_id}", json=broken).raise_for_status()
        while True:
            time.sleep(0.2)
            app = client.get(f"/v2/apps{app_id}").json()["app"]
            config = (app.get("versionInfo") or {}).get("lastConfigChangeAt")
            back = app["cmd"] == _SERVE and config == old_config and not app["deployments"]
            if back and _counts(client, app_id)[:2] == (instances, instances):
                seconds = time.perf_counter() - start
                break
            if time.perf_counter() - start > deadline + 120:
                raise RuntimeError("the broken version was not rolled back")
    ready = [r for r, _, _ in sampler.samples]
    below = [(r, f) for r, _, f in sampler.samples if r < least]
    client.delete(f"/v2/apps{app_id}", params={"force": "true"}).raise_for_status()
    return {
        "deadline_s": deadline,
        "seconds": round(seconds, 2),
        "within_deadline_plus_10": seconds <= deadline + 10,
        "min_ready_old": min(ready) if ready else None,
        "minimum": least,
        "violations": sum(1 for r, f in below if r + f < least),
        "check_dips": sum(1 for r, f in below if r + f >= least),
    }


def _revision(client: httpx.Client) -> float:
    m = _REVISION.search(client.get("/metrics").text)
    if m is None:
        raise RuntimeError("the master exports no pallet_store_revision")
    return float(m.group(1))


def _quiet(client: httpx.Client, still: float = 2.0, timeout: float = 300.0) -> float:
    """The store revision once nothing is happening: no deployment left (the apps just
    created finish theirs, the rollback app's tasks end) and the revision unchanged for
    ``still`` seconds, so that a change seen afterwards can only be a dry run's."""
    deadline = time.monotonic() + timeout
    revision, since = _revision(client), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = _revision(client)
        if now != revision or client.get("/v2/deployments").json():
            revision, since = now, time.monotonic()
        elif time.monotonic() - since >= still:
            return revision
    raise RuntimeError(f"the master did not settle within {timeout:.0f} s before the dry runs")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _dry_runs(client: httpx.Client, apps: int, runs: int) -> dict[str, Any]:
    for i in range(apps):
        body = {
            "id": f"/bench/many/app-{i}",
            "cmd": "sleep 600",
            "cpus": 0.01,
            "mem": 8,
            "instances": 0,
        }
        client.post("/v2/apps", json=body).raise_for_status()
    before = _quiet(client)
    before_apps = client.get("/v2/apps").content
    plain: list[float] = []
    dry: list[float] = []
    for k in range(runs):
        app_id = f"/bench/many/app-{k % apps}"
        t0 = time.perf_counter()
        client.get(f"/v2/apps{app_id}").raise_for_status()
        plain.append(time.perf_counter() - t0)
        change = {"cmd": f"sleep {601 + k}", "instances": 2}
        t0 = time.perf_counter()
        r = client.put(f"/v2/apps{app_id}", params={"dryRun": "true"}, json=change)
        dry.append(time.perf_counter() - t0)
        r.raise_for_status()
    changed = _revision(client) != before or client.get("/v2/apps").content != before_apps
    return {
        "apps": apps,
        "runs": runs,
        "changed": changed,
        "p50_ms": round(_percentile(dry, 0.5) * 1000, 2),
        "p99_ms": round(_percentile(dry, 0.99) * 1000, 2),
        "get_p99_ms": round(_percentile(plain, 0.99) * 1000, 2),
    }


def run_deploy_bench(
    instances: int = 10,
    upgrades: int = 20,
    strategies: tuple[tuple[float, float], ...] = STRATEGIES,
    agents: int = 4,
    deadline: float = 20.0,
    dry_apps: int = 1000,
    dry_runs: int = 200,
) -> DeployResult:
    cpus = max(1.0, instances * 2 * 0.02 / agents * 2)
    resources = f"cpus:{cpus:.2f};mem:{max(512, instances * 2 * 48 // agents * 2)};disk:1000"
    with (
        tempfile.TemporaryDirectory(prefix="pallet-bench-deploy-") as tmp,
        running_up(Path(tmp), agents, resources, free_port()) as url,
        httpx.Client(base_url=url, timeout=60.0) as client,
    ):
        runs = [_upgrades(client, url, instances, s, upgrades) for s in strategies]
        rollback = _rollback(client, url, instances, deadline)
        dry = _dry_runs(client, dry_apps, dry_runs)
    return DeployResult(instances, runs, rollback, dry)
