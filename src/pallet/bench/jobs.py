"""``pallet bench jobs``: batch throughput of Metronome's API on ``pallet up --agents 4``
against tuned Slurm and plain fork/exec, measured in the same run; spawns processes.

- ``*_jobs_per_s``: jobs over that time; ``*_queue_wait_p50_s``/``p99``: from a job's
  submission (``sbatch``; ``POST .../runs``) to its start on a node (Slurm's StartTime;
  the run's task staged), Slurm's in whole seconds as it records them.
- ``raw_spawn_s``: fork/exec of ``true`` 1,000 times (each in its own session, through
  ``/bin/sh -c`` as a task is), waiting for each: what any launcher pays at least.
- ``slurm_s``: 1,000 ``sbatch --wrap=true`` (one CPU, 16 MiB) from 8 submitters at a
  time to all finished, Slurm started here in its own network namespace (``bench.slurm``);
  null when Slurm cannot start (the reason is printed).
- ``pallet_s``: 1,000 jobs created (``POST /v1/jobs``) and run (``POST .../runs``) from 8
  clients at a time (``true``, 0.01 CPU, 16 MiB) to every run SUCCESS.
- ``parallel_s``: one job with ``parallelism: 50, completions: 1000`` to SUCCESS.
- ``cron_runs``: runs of a job scheduled every minute, counted over ``cron_minutes``
  minutes with the master killed (SIGKILL; ``pallet up`` starts it again) half way; the
  right answer is ``cron_minutes``, each minute once. Null when skipped (0 minutes).

Completion is polled every 0.5 s on both sides.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pallet.bench.cluster import free_port, running_up
from pallet.bench.slurm import POLL_SECONDS, SlurmLab, SlurmUnavailable

__all__ = ["JobsResult", "percentile", "raw_spawn_seconds", "run_jobs_bench"]

CLIENTS = 8
"""Submitters at a time, for Pallet and Slurm alike."""


def percentile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) by nearest rank, or None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def _r(x: float | None, digits: int = 3) -> float | None:
    return None if x is None else round(x, digits)


@dataclass(frozen=True, slots=True)
class JobsResult:
    jobs: int
    pallet_s: float
    slurm_s: float | None
    raw_spawn_s: float
    parallel_s: float | None
    cron_runs: int | None
    slurm_note: str = ""
    cron_note: str = ""
    pallet_waits: tuple[float, ...] = ()
    slurm_waits: tuple[float, ...] = ()

    @property
    def ratio_to_slurm(self) -> float | None:
        return None if not self.slurm_s else self.pallet_s / self.slurm_s

    @property
    def ratio_to_raw(self) -> float:
        return self.pallet_s / self.raw_spawn_s if self.raw_spawn_s else float("inf")

    def to_json(self) -> dict[str, Any]:
        ratio = self.ratio_to_slurm
        pw, sw = list(self.pallet_waits), list(self.slurm_waits)
        return {
            "jobs": self.jobs,
            "pallet_s": round(self.pallet_s, 3),
            "slurm_s": _r(self.slurm_s),
            "raw_spawn_s": round(self.raw_spawn_s, 3),
            "ratio_to_slurm": _r(ratio),
            "parallel_s": _r(self.parallel_s),
            "cron_runs": self.cron_runs,
            "pallet_jobs_per_s": round(self.jobs / self.pallet_s, 1),
            "slurm_jobs_per_s": _r(self.jobs / self.slurm_s, 1) if self.slurm_s else None,
            "pallet_queue_wait_p50_s": _r(percentile(pw, 0.5)),
            "pallet_queue_wait_p99_s": _r(percentile(pw, 0.99)),
            "slurm_queue_wait_p50_s": _r(percentile(sw, 0.5)),
            "slurm_queue_wait_p99_s": _r(percentile(sw, 0.99)),
        }


def raw_spawn_seconds(count: int) -> float:
    """Seconds to run ``true`` ``count`` times, ``CLIENTS`` at a time, each a new session
    and shell as a task is."""
    start = time.perf_counter()

    def one(_: int) -> None:
        subprocess.run(["/bin/sh", "-c", "true"], start_new_session=True, check=True)

    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(one, range(count)))
    return time.perf_counter() - start


class _Http:
    """Keep-alive JSON over ``http.client``, one connection per thread: the benchmark's
    own client costs a fraction of a millisecond per request, so it measures the master."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self._local = threading.local()

    def reset(self) -> None:
        """Forget this thread's connection (the master went away)."""
        self._local.conn = None

    def call(self, method: str, path: str, body: object = None) -> Any:
        data = None if body is None else json.dumps(body)
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            try:
                conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
            except (BrokenPipeError, ConnectionResetError):
                conn = None  # the server closed the idle keep-alive connection: a new one
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
            conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        raw = response.read()
        if response.status >= 400:
            raise RuntimeError(f"{method} {path}: {response.status} {raw[:300]!r}")
        return json.loads(raw) if raw else None


def _wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.perf_counter() + timeout
    while not check():
        if time.perf_counter() > deadline:
            raise RuntimeError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(POLL_SECONDS)


def _finished_runs(api: _Http, prefix: str) -> tuple[int, int]:
    jobs = api.call("GET", "/v1/jobs?embed=historySummary")
    ok = failed = 0
    for job in jobs:
        if job["id"].startswith(prefix):
            ok += job["historySummary"]["successCount"]
            failed += job["historySummary"]["failureCount"]
    return ok, failed


def _iso(stamp: str) -> float:
    """Metronome's ``2026-12-07T02:50:39.123+0000`` as epoch seconds."""
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def pallet_queue_waits(api: _Http, count: int) -> list[float]:
    """Per run of ``bench.one-*``: seconds from its creation to its first task staged."""

    def one(i: int) -> float | None:
        job = api.call("GET", f"/v1/jobs/bench.one-{i}?embed=history")
        runs = job["history"]["successfulFinishedRuns"] + job["history"]["failedFinishedRuns"]
        if not runs:
            return None
        run = api.call("GET", f"/v1/jobs/bench.one-{i}/runs/{runs[0]['id']}")
        starts = [_iso(t["startedAt"]) for t in run["tasks"] if t.get("startedAt")]
        return min(starts) - _iso(run["createdAt"]) if starts else None

    with ThreadPoolExecutor(CLIENTS) as pool:
        return [w for w in pool.map(one, range(count)) if w is not None]


def pallet_jobs_seconds(api: _Http, count: int, timeout: float = 1800.0) -> float:
    """Seconds from the first request to ``count`` one-run jobs all finished."""
    job = {"cmd": "true", "cpus": 0.01, "mem": 16}

    def one(i: int) -> None:
        api.call("POST", "/v1/jobs", {"id": f"bench.one-{i}", "run": job})
        api.call("POST", f"/v1/jobs/bench.one-{i}/runs")

    start = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(one, range(count)))
    _wait(lambda: sum(_finished_runs(api, "bench.one-")) >= count, timeout, "every run")
    elapsed = time.perf_counter() - start
    _, failed = _finished_runs(api, "bench.one-")
    if failed:
        raise RuntimeError(f"{failed} of {count} runs FAILED")
    return elapsed


def pallet_parallel_seconds(
    api: _Http, completions: int, parallelism: int, timeout: float = 1800.0
) -> float:
    """Seconds from creating one job of ``completions`` tasks, ``parallelism`` at a time,
    to its run SUCCESS."""
    job = {"cmd": "true", "cpus": 0.01, "mem": 16}
    job |= {"parallelism": parallelism, "completions": completions}
    start = time.perf_counter()
    api.call("POST", "/v1/jobs", {"id": "bench.parallel", "run": job})
    run = api.call("POST", "/v1/jobs/bench.parallel/runs")
    path = f"/v1/jobs/bench.parallel/runs/{run['id']}"
    _wait(lambda: api.call("GET", path)["status"] in ("SUCCESS", "FAILED"), timeout, "the run")
    elapsed = time.perf_counter() - start
    run = api.call("GET", path)
    if run["status"] != "SUCCESS":
        raise RuntimeError(f"the parallel run ended {run['status']}: {run.get('reason')}")
    return elapsed


def _master_pid(state_dir: Path) -> int:
    doc = json.loads((state_dir / "up.json").read_text())
    return int(doc["master"]["pid"])


def cron_runs(api: _Http, state_dir: Path, minutes: int) -> tuple[int, str]:
    """Runs of an every-minute job over ``minutes`` minutes, the master killed half way;
    and a note (empty when each minute ran exactly once)."""
    api.call(
        "POST",
        "/v1/jobs",
        {
            "id": "bench.cron",
            "run": {"cmd": "true", "cpus": 0.01, "mem": 16},
            "schedules": [{"id": "tick", "cron": "* * * * *"}],
        },
    )
    first = (int(time.time()) // 60 + 1) * 60  # the first instant to come
    last = first + 60 * (minutes - 1)
    _sleep_until(first + 60 * (minutes // 2) - 30)
    os.kill(_master_pid(state_dir), signal.SIGKILL)  # a crash, half way
    _wait(lambda: _answers(api), 120, "the master to come back")
    _sleep_until(last + 15)
    api.call(
        "PUT",
        "/v1/jobs/bench.cron/schedules/tick",
        {"id": "tick", "cron": "* * * * *", "enabled": False},
    )
    _wait(lambda: not api.call("GET", "/v1/jobs/bench.cron/runs"), 120, "the last cron run")
    job = api.call("GET", "/v1/jobs/bench.cron?embed=history")
    history = job["history"]
    runs = history["successfulFinishedRuns"] + history["failedFinishedRuns"]
    count = history["successCount"] + history["failureCount"]
    minutes_seen = [r["createdAt"][:16] for r in runs]
    note = ""
    if len(set(minutes_seen)) != len(minutes_seen):
        note = f"a minute ran twice: {sorted(minutes_seen)}"
    elif history["failureCount"]:
        note = f"{history['failureCount']} runs failed"
    elif count != minutes:
        at = datetime.fromtimestamp(first).strftime("%H:%M")
        note = f"{count} runs for {minutes} instants from {at}"
    return count, note


def _answers(api: _Http) -> bool:
    try:
        api.call("GET", "/v1/jobs/bench.cron")
    except (OSError, http.client.HTTPException):
        api.reset()
        return False
    return True


def _sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.time()))


def run_jobs_bench(
    jobs: int = 1000,
    agents: int = 4,
    parallelism: int = 50,
    cron_minutes: int = 10,
    slurm: bool = True,
    say: Callable[[str], None] = lambda _: None,
) -> JobsResult:
    say(f"fork/exec of `true` x {jobs} ...")
    raw = raw_spawn_seconds(jobs)
    slurm_s: float | None = None
    slurm_waits: list[float] = []
    slurm_note = "skipped (--no-slurm)"
    if slurm:
        say(f"Slurm: {jobs} sbatch in its own network namespace ...")
        try:
            with SlurmLab() as lab:
                slurm_s = lab.run_jobs(jobs, CLIENTS)
                slurm_waits = lab.queue_waits()
            slurm_note = ""
        except (SlurmUnavailable, OSError, subprocess.SubprocessError) as exc:
            slurm_note = f"Slurm could not run here: {exc}"
    with tempfile.TemporaryDirectory(prefix="pallet-bench-jobs-") as tmp:
        state = Path(tmp)
        with running_up(state, agents, "", free_port()) as url:
            api = _Http(url)
            say(f"Pallet: {jobs} jobs on pallet up --agents {agents} ...")
            pallet_s = pallet_jobs_seconds(api, jobs)
            pallet_waits = pallet_queue_waits(api, jobs)
            say(f"Pallet: one job, parallelism {parallelism}, completions {jobs} ...")
            parallel_s = pallet_parallel_seconds(api, jobs, parallelism)
            runs: int | None = None
            cron_note = "skipped (--cron-minutes 0)"
            if cron_minutes > 0:
                say(
                    f"Pallet: a job every minute for {cron_minutes} minutes, master killed "
                    "half way ..."
                )
                runs, cron_note = cron_runs(api, state, cron_minutes)
    return JobsResult(
        jobs,
        pallet_s,
        slurm_s,
        raw,
        parallel_s,
        runs,
        slurm_note,
        cron_note,
        tuple(pallet_waits),
        tuple(slurm_waits),
    )
