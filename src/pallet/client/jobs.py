"""Metronome's job API as calls (``Client.run(job_calls.create(...))``) and the progress
of one run followed until it ends; pure apart from the polling in ``watch_run``.

Answers are the master's JSON as it is (dicts and lists: Metronome's shapes are what
``--json`` prints and what the CLI renders).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from pallet.client.calls import Call, Headers
from pallet.client.errors import ProtocolError, WaitTimeout
from pallet.client.sync import Client

__all__ = ["RunProgress", "job_calls", "run_progress", "watch_run"]

JOB_EMBED = ("activeRuns", "history", "historySummary")


def _object(doc: Any, _headers: Headers) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise ProtocolError("expected a JSON object")
    return doc


def _list(doc: Any, _headers: Headers) -> list[dict[str, Any]]:
    if not isinstance(doc, list) or not all(isinstance(d, dict) for d in doc):
        raise ProtocolError("expected a list of JSON objects")
    return doc


def _nothing(_doc: Any, _headers: Headers) -> None:
    return None


def _job(job_id: str) -> str:
    return "/v1/jobs/" + quote(job_id, safe="")


class _JobCalls:
    """Metronome's routes, one call each."""

    def list_jobs(self, embed: Sequence[str] = ()) -> Call[list[dict[str, Any]]]:
        return Call("GET", "/v1/jobs", _list, {"embed": list(embed)})

    def get(self, job_id: str, embed: Sequence[str] = JOB_EMBED) -> Call[dict[str, Any]]:
        return Call("GET", _job(job_id), _object, {"embed": list(embed)})

    def create(self, job: Mapping[str, Any]) -> Call[dict[str, Any]]:
        return Call("POST", "/v1/jobs", _object, body=dict(job))

    def update(self, job_id: str, job: Mapping[str, Any]) -> Call[dict[str, Any]]:
        """Replace the job, keeping its schedules (``PUT /v1/jobs``)."""
        return Call("PUT", _job(job_id), _object, body=dict(job))

    def replace(self, job_id: str, job: Mapping[str, Any]) -> Call[dict[str, Any]]:
        """Replace the job and its schedules (``PUT /v0/scheduled-jobs``)."""
        return Call("PUT", "/v0/scheduled-jobs/" + quote(job_id, safe=""), _object, body=dict(job))

    def delete(self, job_id: str, stop_runs: bool = False) -> Call[dict[str, Any]]:
        params = {"stopCurrentJobRuns": "true" if stop_runs else "false"}
        return Call("DELETE", _job(job_id), _object, params)

    def run(
        self, job_id: str, env: Mapping[str, str] | None = None, args: Sequence[str] | None = None
    ) -> Call[dict[str, Any]]:
        body: dict[str, Any] = {}
        if env:
            body["env"] = dict(env)
        if args:
            body["args"] = list(args)
        return Call("POST", _job(job_id) + "/runs", _object, body=body or None)

    def runs(self, job_id: str) -> Call[list[dict[str, Any]]]:
        return Call("GET", _job(job_id) + "/runs", _list)

    def get_run(self, job_id: str, run_id: str) -> Call[dict[str, Any]]:
        return Call("GET", f"{_job(job_id)}/runs/{quote(run_id, safe='')}", _object)

    def stop(self, job_id: str, run_id: str) -> Call[dict[str, Any]]:
        path = f"{_job(job_id)}/runs/{quote(run_id, safe='')}/actions/stop"
        return Call("POST", path, _object)

    def schedules(self, job_id: str) -> Call[list[dict[str, Any]]]:
        return Call("GET", _job(job_id) + "/schedules", _list)

    def add_schedule(self, job_id: str, schedule: Mapping[str, Any]) -> Call[dict[str, Any]]:
        return Call("POST", _job(job_id) + "/schedules", _object, body=dict(schedule))

    def update_schedule(self, job_id: str, schedule: Mapping[str, Any]) -> Call[dict[str, Any]]:
        path = f"{_job(job_id)}/schedules/{quote(str(schedule['id']), safe='')}"
        return Call("PUT", path, _object, body=dict(schedule))

    def remove_schedule(self, job_id: str, schedule_id: str) -> Call[None]:
        path = f"{_job(job_id)}/schedules/{quote(schedule_id, safe='')}"
        return Call("DELETE", path, _nothing, raw=True)

    def queue(self) -> Call[list[dict[str, Any]]]:
        return Call("GET", "/v1/queue", _list)


job_calls = _JobCalls()


@dataclass(frozen=True, slots=True)
class RunProgress:
    """How far a run is: ``done`` of ``total`` indices succeeded (tasks for ``perNode``),
    ``running`` tasks now, and the run's JSON."""

    status: str
    done: int
    total: int
    running: int
    run: dict[str, Any]

    @property
    def final(self) -> bool:
        return self.status in ("SUCCESS", "FAILED")


def run_progress(run: Mapping[str, Any]) -> RunProgress:
    tasks = [t for t in run.get("tasks") or () if isinstance(t, dict)]
    finished = sum(1 for t in tasks if t.get("status") == "TASK_FINISHED")
    running = sum(1 for t in tasks if t.get("completedAt") is None)
    done = int(run.get("succeeded", finished))
    if run.get("perNode"):
        total = max(len({t.get("index") for t in tasks}), done, 1)
    else:
        total = int(run.get("completions", 1))
    return RunProgress(str(run.get("status")), done, total, running, dict(run))


def watch_run(
    client: Client,
    job_id: str,
    run_id: str,
    *,
    timeout: float = 300.0,
    interval: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[RunProgress]:
    """Each change of the run's progress until it ends; ``WaitTimeout`` after
    ``timeout`` seconds."""
    deadline = clock() + timeout
    last: tuple[str, int, int, int] | None = None
    while True:
        doc: dict[str, Any] = client.run(job_calls.get_run(job_id, run_id))
        progress = run_progress(doc)
        key = (progress.status, progress.done, progress.total, progress.running)
        if key != last:
            last = key
            yield progress
        if progress.final:
            return
        if clock() > deadline:
            raise WaitTimeout(
                f"run {run_id} of job {job_id} is still {progress.status} after {timeout:g} s "
                f"({progress.done} of {progress.total} completed)"
            )
        sleep(interval)
