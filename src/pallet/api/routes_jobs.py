"""Metronome's API: ``/v1/jobs`` (jobs, schedules, runs), ``/v1/queue`` and the legacy
``/v0/scheduled-jobs``, field for field; does I/O through ``Control.jobs``.

Bad input is 422 ``{"message": "Object is not valid", "details": [{"path", "errors"}]}``
before anything is stored; missing things are Metronome's 404 bodies (``{"id", "message":
"Job not found"}``); conflicts are 409 ``{"message"}``.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from starlette.responses import Response

from pallet.api.context import ApiContext, context
from pallet.api.guard import permissions_of
from pallet.api.http import json_response, read_json
from pallet.api.marathon import MarathonApiError, Violation, not_valid, parse_bool, parse_json_body
from pallet.api.metronome.jobspec import (
    JobSpecError,
    job_from_json,
    schedule_from_json,
    trigger_from_json,
)
from pallet.api.metronome.render import job_json, run_json, schedule_json
from pallet.api.secretrefs import check_job_secrets
from pallet.api.visible import may_read_job
from pallet.control.jobs_book import task_index
from pallet.control.jobs_controller import zone
from pallet.control.jobs_cron import next_instant
from pallet.control.jobs_errors import (
    JobConflict,
    JobError,
    JobExists,
    JobInvalid,
    JobNotFound,
    RunNotFound,
    ScheduleExists,
    ScheduleNotFound,
)
from pallet.control.jobs_layout import owner_of
from pallet.model.jobs import JobRun, JobSpec, ScheduleSpec

__all__ = ["router"]

router = APIRouter()

JOB_BODY_LIMIT = 16 << 20
"""Job bodies may exceed the 1 MiB of app bodies so an oversized ``cmd`` is answered
with its path (``/run/cmd``) rather than a bare 413."""

_EMBEDS = ("activeRuns", "schedules", "history", "historySummary")

T = TypeVar("T")


def _error(exc: JobError) -> MarathonApiError:
    match exc:
        case JobNotFound():
            return MarathonApiError(404, {"id": exc.job_id, "message": "Job not found"})
        case ScheduleNotFound():
            return MarathonApiError(404, {"id": exc.schedule_id, "message": "Schedule not found"})
        case RunNotFound():
            body = {"jobSpec": exc.job_id, "id": exc.run_id, "message": "Job Run not found"}
            return MarathonApiError(404, body)
        case JobExists():
            return MarathonApiError(409, {"message": "Job with this id already exists"})
        case ScheduleExists() | JobConflict():
            return MarathonApiError(409, {"message": str(exc)})
        case JobInvalid():
            return not_valid([Violation(exc.path, exc.message)])
    return MarathonApiError(400, {"message": str(exc)})


async def _do(call: Awaitable[T]) -> T:
    """Await a job operation, answering its errors in Metronome's shapes."""
    try:
        return await call
    except JobError as exc:
        raise _error(exc) from None


def _read(parse: Any, body: object, *args: Any) -> Any:
    try:
        return parse(body, *args)
    except JobSpecError as exc:
        raise not_valid(exc.violations) from None


def _job(ctx: ApiContext, job_id: str) -> JobSpec:
    job = ctx.control.job_book.jobs.get(job_id)
    if job is None:
        raise _error(JobNotFound(job_id))
    return job


def _embeds(request: Request) -> set[str]:
    wanted: set[str] = set()
    for value in request.query_params.getlist("embed"):
        for part in value.split(","):
            if part.strip() not in _EMBEDS:
                message = f"Unknown embed {part.strip()!r}: use one of {', '.join(_EMBEDS)}"
                raise MarathonApiError(400, {"message": message})
            wanted.add(part.strip())
    return wanted


# ------------------------------------------------------------------ rendering


def _next_run(schedule: ScheduleSpec, now: float) -> float | None:
    if not schedule.enabled:
        return None
    try:
        return next_instant(schedule.cron, zone(schedule.timezone), now)
    except Exception:  # a zone removed from the system since: no next instant to show
        return None


def _schedule(ctx: ApiContext, schedule: ScheduleSpec) -> dict[str, Any]:
    return schedule_json(schedule, _next_run(schedule, ctx.control.clock()))


def _run(ctx: ApiContext, run: JobRun) -> dict[str, Any]:
    owner = owner_of(run.job_id, run.id)
    live = [] if run.final else ctx.control.state.app_tasks(owner)
    waiting = ctx.control.job_book.unplaced.get(owner)
    return run_json(run, [(t, task_index(t)) for t in live], waiting)


def _render(ctx: ApiContext, job: JobSpec, embeds: set[str]) -> dict[str, Any]:
    book = ctx.control.job_book
    runs = None
    if "activeRuns" in embeds:
        runs = [_run(ctx, r) for r in book.active_runs(job.id)]
    history = book.history_of(job.id)
    return job_json(
        job,
        [_schedule(ctx, s) for s in job.schedules],
        active_runs=runs,
        history=history if "history" in embeds else None,
        summary=history if "historySummary" in embeds else None,
    )


# ------------------------------------------------------------------ jobs


@router.get("/v1/jobs")
async def list_jobs(request: Request) -> Response:
    ctx = context(request)
    embeds = _embeds(request)
    perms = permissions_of(request.scope)
    jobs = sorted(ctx.control.job_book.jobs.values(), key=lambda j: j.id)
    if not perms.sees_all("job"):  # with auth on: only the jobs the caller may read
        jobs = [j for j in jobs if may_read_job(perms, j.id)]
    return json_response([_render(ctx, j, embeds) for j in jobs])


@router.post("/v1/jobs")
async def create_job(request: Request) -> Response:
    ctx = context(request)
    job = _read(job_from_json, await read_json(request, JOB_BODY_LIMIT), None, ctx.allowances)
    await check_job_secrets(request, job)
    job = await _do(ctx.control.jobs.create(job))
    return json_response(_render(ctx, job, set()), 201)


@router.get("/v1/jobs/{job_id}")
async def get_job(job_id: str, request: Request) -> Response:
    ctx = context(request)
    embeds = _embeds(request)
    return json_response(_render(ctx, _job(ctx, job_id), embeds))


@router.put("/v1/jobs/{job_id}")
async def update_job(job_id: str, request: Request) -> Response:
    """Replace the job; its schedules stay (change them under ``/schedules``). A body
    whose ``schedules`` differ from the job's is refused rather than ignored."""
    ctx = context(request)
    current = _job(ctx, job_id)
    body = await read_json(request, JOB_BODY_LIMIT)
    job = _read(job_from_json, body, job_id, ctx.allowances)
    await check_job_secrets(request, job)
    if isinstance(body, dict) and "schedules" in body and job.schedules != current.schedules:
        message = (
            "PUT /v1/jobs keeps a job's schedules: change them under "
            f"/v1/jobs/{job_id}/schedules, or PUT /v0/scheduled-jobs/{job_id}"
        )
        raise not_valid([Violation("/schedules", message)])
    job = await _do(ctx.control.jobs.update(job, keep_schedules=True))
    return json_response(_render(ctx, job, set()))


@router.delete("/v1/jobs/{job_id}")
async def delete_job(job_id: str, request: Request) -> Response:
    ctx = context(request)
    stop = parse_bool(request.query_params.get("stopCurrentJobRuns"))
    job = await _do(ctx.control.jobs.delete(job_id, stop_runs=stop))
    return json_response(job_json(job, [schedule_json(s, None) for s in job.schedules]))


# ------------------------------------------------------------------ schedules


@router.get("/v1/jobs/{job_id}/schedules")
async def list_schedules(job_id: str, request: Request) -> Response:
    ctx = context(request)
    return json_response([_schedule(ctx, s) for s in _job(ctx, job_id).schedules])


@router.post("/v1/jobs/{job_id}/schedules")
async def create_schedule(job_id: str, request: Request) -> Response:
    ctx = context(request)
    _job(ctx, job_id)
    schedule = _read(schedule_from_json, await read_json(request))
    schedule = await _do(ctx.control.jobs.add_schedule(job_id, schedule))
    return json_response(_schedule(ctx, schedule), 201)


@router.get("/v1/jobs/{job_id}/schedules/{schedule_id}")
async def get_schedule(job_id: str, schedule_id: str, request: Request) -> Response:
    ctx = context(request)
    schedule = _job(ctx, job_id).schedule(schedule_id)
    if schedule is None:
        raise _error(ScheduleNotFound(job_id, schedule_id))
    return json_response(_schedule(ctx, schedule))


@router.put("/v1/jobs/{job_id}/schedules/{schedule_id}")
async def update_schedule(job_id: str, schedule_id: str, request: Request) -> Response:
    ctx = context(request)
    _job(ctx, job_id)
    schedule = _read(schedule_from_json, await read_json(request), schedule_id)
    schedule = await _do(ctx.control.jobs.update_schedule(job_id, schedule))
    return json_response(_schedule(ctx, schedule))


@router.delete("/v1/jobs/{job_id}/schedules/{schedule_id}")
async def delete_schedule(job_id: str, schedule_id: str, request: Request) -> Response:
    ctx = context(request)
    await _do(ctx.control.jobs.delete_schedule(job_id, schedule_id))
    return Response(status_code=200)


# ------------------------------------------------------------------ runs


@router.get("/v1/jobs/{job_id}/runs")
async def list_runs(job_id: str, request: Request) -> Response:
    ctx = context(request)
    _job(ctx, job_id)
    return json_response([_run(ctx, r) for r in ctx.control.job_book.active_runs(job_id)])


@router.post("/v1/jobs/{job_id}/runs")
async def trigger_run(job_id: str, request: Request) -> Response:
    """Run now; Pallet's body ``{"env": {...}, "args": [...]}`` (optional) sets the run's
    parameters over the job's."""
    ctx = context(request)
    _job(ctx, job_id)
    raw = await request.body()
    env, args = None, None
    if raw.strip():
        env, args = _read(trigger_from_json, parse_json_body(raw))
    run = await _do(ctx.control.jobs.trigger(job_id, env, args))
    return json_response(_run(ctx, run), 201)


@router.get("/v1/jobs/{job_id}/runs/{run_id}")
async def get_run(job_id: str, run_id: str, request: Request) -> Response:
    """An active run, or (Pallet) a finished one the job's history keeps whole."""
    ctx = context(request)
    _job(ctx, job_id)
    run = ctx.control.job_book.run(job_id, run_id)
    if run is None:
        raise _error(RunNotFound(job_id, run_id))
    return json_response(_run(ctx, run))


@router.post("/v1/jobs/{job_id}/runs/{run_id}/actions/stop")
async def stop_run(job_id: str, run_id: str, request: Request) -> Response:
    ctx = context(request)
    run = await _do(ctx.control.jobs.stop(job_id, run_id))
    return json_response(_run(ctx, run))


@router.get("/v1/queue")
async def queue(request: Request) -> Response:
    """Runs with tasks waiting to be placed, by job (Metronome's launch queue), of the
    jobs the caller may read."""
    waiting = context(request).control.job_placements.waiting()
    perms = permissions_of(request.scope)
    if not perms.sees_all("job"):
        waiting = {j: runs for j, runs in waiting.items() if may_read_job(perms, j)}
    return json_response(
        [
            {"jobId": job_id, "runs": [{"runId": r} for r in runs]}
            for job_id, runs in sorted(waiting.items())
        ]
    )


# ------------------------------------------------------------------ /v0


@router.post("/v0/scheduled-jobs")
async def create_scheduled_job(request: Request) -> Response:
    ctx = context(request)
    job = _read(job_from_json, await read_json(request, JOB_BODY_LIMIT), None, ctx.allowances)
    await check_job_secrets(request, job)
    job = await _do(ctx.control.jobs.create(job))
    return json_response(_render(ctx, job, set()), 201)


@router.put("/v0/scheduled-jobs/{job_id}")
async def update_scheduled_job(job_id: str, request: Request) -> Response:
    """Replace the job and its schedules together."""
    ctx = context(request)
    _job(ctx, job_id)
    body = await read_json(request, JOB_BODY_LIMIT)
    job = _read(job_from_json, body, job_id, ctx.allowances)
    await check_job_secrets(request, job)
    job = await _do(ctx.control.jobs.update(job, keep_schedules=False))
    return json_response(_render(ctx, job, set()))
