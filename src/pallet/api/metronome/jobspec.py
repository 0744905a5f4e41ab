"""Reading Metronome's job and schedule JSON: the schema (pydantic, unknown fields
refused), Metronome's rules, Pallet's refusals of what it does not run yet, and the
conversion to ``pallet.model.jobs``; pure apart from reading the system's time zone list.

Every problem is a ``Violation`` with Metronome's path (``/run/cpus``,
``/schedules(0)/cron``), answered as one 422 ``{"message": "Object is not valid",
"details": [...]}``; nothing is stored.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from pallet.api.marathon.errors import Violation, render_path
from pallet.api.marathon.support import Allowances
from pallet.api.metronome.jobrun import (
    ArtifactIn,
    DockerIn,
    NetworkIn,
    UcrIn,
    launch_parts,
    launch_violations,
)
from pallet.control.jobs_controller import zone
from pallet.control.jobs_cron import cron_error
from pallet.model.errors import ValidationError
from pallet.model.jobs import (
    ConcurrencyPolicy,
    JobRunSpec,
    JobSpec,
    RestartPolicy,
    ScheduleSpec,
    constraint_from_metronome,
)
from pallet.model.limits import pids_max_of
from pallet.model.paths import dest_path_problem
from pallet.model.secrets import TaskSecret, check_secret_path

__all__ = [
    "MAX_CMD",
    "JobIn",
    "ScheduleIn",
    "TriggerIn",
    "job_from_json",
    "schedule_from_json",
    "trigger_from_json",
]

MAX_CMD = 65_536
"""Characters of ``cmd`` (and of all ``args`` together): Linux passes at most 128 KiB in
one argument to a program, and ``sh -c`` takes the command as one."""
MIN_MEM = 16
"""MiB a job task may ask for at least: what a shell and a small command need. Metronome's
schema says 32 (its Mesos executors ran in that memory); every job it accepts Pallet
accepts too."""
MAX_ID = 100
"""Characters of a job id (Pallet's bound: task ids carry the job id)."""

_ID = re.compile(
    r"^(([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])\.)*([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])$"
)
_SCHEDULE_ID = re.compile(r"^([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])$")
_ID_RULE = (
    "must be names separated by dots, each of lowercase letters, digits and dashes, "
    "not starting or ending with a dash"
)
_NOT_YET = "is not supported by Pallet yet"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)


class DependencyIn(_In):
    id: str


class ConstraintIn(_In):
    attribute: str
    operator: Literal["IS", "EQ", "LIKE", "UNLIKE"]
    value: str | None = None


class PlacementIn(_In):
    constraints: list[ConstraintIn] = []
    per_node: bool = Field(False, alias="perNode")


class RestartIn(_In):
    policy: Literal["NEVER", "ON_FAILURE"]
    active_deadline_seconds: Annotated[int, Field(ge=1)] | None = Field(
        None, alias="activeDeadlineSeconds"
    )


class SecretEnvIn(_In):
    secret: str


class SecretIn(_In):
    source: str


class RunIn(_In):
    cmd: Annotated[str, Field(min_length=1)] | None = None
    args: list[str] | None = None
    cpus: Annotated[float, Field(ge=0.01)] = 1.0
    mem: Annotated[float, Field(ge=MIN_MEM)] = 128.0
    disk: Annotated[float, Field(ge=0)] = 0.0
    gpus: Annotated[int, Field(ge=0)] = 0
    env: dict[str, str | SecretEnvIn] = {}
    secrets: dict[str, SecretIn] = {}
    user: str | None = None
    artifacts: list[ArtifactIn] = []
    docker: DockerIn | None = None
    ucr: UcrIn | None = None
    networks: list[NetworkIn] = []
    placement: PlacementIn = PlacementIn()
    volumes: list[dict[str, Any]] = []
    max_launch_delay: Annotated[int, Field(ge=1)] = Field(3600, alias="maxLaunchDelay")
    task_kill_grace_period_seconds: Annotated[float, Field(ge=0)] | None = Field(
        None, alias="taskKillGracePeriodSeconds"
    )
    restart: RestartIn = RestartIn(policy="NEVER")
    parallelism: Annotated[int, Field(ge=1, le=10_000)] | None = None
    completions: Annotated[int, Field(ge=1, le=10_000)] | None = None


class ScheduleIn(_In):
    id: str
    cron: str
    timezone: str = "UTC"
    starting_deadline_seconds: Annotated[int, Field(ge=60)] = Field(
        900, alias="startingDeadlineSeconds"
    )
    concurrency_policy: Literal["ALLOW", "FORBID", "REPLACE"] = Field(
        "ALLOW", alias="concurrencyPolicy"
    )
    enabled: bool = True
    next_run_at: str | None = Field(None, alias="nextRunAt")
    """Read-only (``GET`` shows it): accepted so a schedule read can be sent back."""


class JobIn(_In):
    id: str
    description: str | None = None
    labels: dict[str, str] = {}
    dependencies: list[DependencyIn] = []
    schedules: list[ScheduleIn] = []
    run: RunIn


class TriggerIn(_In):
    """Pallet's parameters at trigger time (``POST /v1/jobs/{id}/runs``), as Nomad's
    dispatch takes them."""

    env: dict[str, str] | None = None
    args: list[str] | None = None


# ---------------------------------------------------------------- shape errors

_MESSAGES = {
    "missing": "error.path.missing",
    "extra_forbidden": "unknown field: Metronome's specification has no such field",
    "literal_error": "error.unknown.enum.literal",
    "greater_than_equal": "error.min",
    "less_than_equal": "error.max",
    "string_too_short": "error.minLength",
    "string_type": "error.expected.jsstring",
    "int_type": "error.expected.jsnumber",
    "float_type": "error.expected.jsnumber",
    "bool_type": "error.expected.jsboolean",
    "dict_type": "error.expected.jsobject",
    "model_type": "error.expected.jsobject",
    "list_type": "error.expected.jsarray",
}


def _shape_violations(exc: pydantic.ValidationError) -> list[Violation]:
    out = []
    for err in exc.errors(include_url=False):
        # A union (env: a string or {"secret": ...}) reports one error per branch with
        # the branch's type name in the location; Metronome's path has none of that.
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p in ("str", "SecretEnvIn"))]
        kind = err["type"]
        message = _MESSAGES.get(kind, f"error.{kind}")
        if kind in ("greater_than_equal", "less_than_equal"):
            message = f"{message}: {err['msg'].lower()}"
        out.append(Violation(render_path(loc), message))
    return out


def _parse(model: type[_In], body: object) -> Any:
    if not isinstance(body, Mapping):
        raise JobSpecError([Violation("/", "error.expected.jsobject")])
    try:
        return model.model_validate(body)
    except pydantic.ValidationError as exc:
        raise JobSpecError(_shape_violations(exc)) from None


class JobSpecError(Exception):
    """The body breaks Metronome's schema or rules, or asks what Pallet does not run."""

    def __init__(self, violations: list[Violation]) -> None:
        super().__init__("; ".join(f"{v.path}: {v.message}" for v in violations))
        self.violations = violations


# ---------------------------------------------------------------- rules


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) | {"UTC"}


def _schedule_violations(s: ScheduleIn, at: str) -> list[Violation]:
    out = []
    if not _SCHEDULE_ID.match(s.id):
        out.append(
            Violation(
                f"{at}/id",
                "must be lowercase letters, digits and dashes, not starting or ending with a dash",
            )
        )
    if s.timezone not in _zones():
        out.append(Violation(f"{at}/timezone", f"No time zone found with this id: {s.timezone}"))
        return out
    why = cron_error(s.cron, zone(s.timezone))
    if why is not None:
        out.append(Violation(f"{at}/cron", why))
    return out


def _run_violations(run: RunIn, allow: Allowances) -> list[Violation]:
    out: list[Violation] = []
    if run.cmd is None and not run.args and run.docker is None and run.ucr is None:
        out.append(Violation("/run", "Cmd, Docker or UCR image must be specified"))
    if run.cmd is not None and run.args:
        out.append(Violation("/run", "give either cmd or args, not both"))
    if run.cmd is not None and len(run.cmd) > MAX_CMD:
        out.append(Violation("/run/cmd", f"error.maxLength: at most {MAX_CMD} characters"))
    if run.args and sum(len(a) for a in run.args) > MAX_CMD:
        out.append(Violation("/run/args", f"error.maxLength: at most {MAX_CMD} characters"))
    if any("\x00" in a for a in run.args or ()) or "\x00" in (run.cmd or ""):
        out.append(Violation("/run/cmd" if run.cmd else "/run/args", "must not contain NUL"))
    out += launch_violations(
        user=run.user,
        artifacts=run.artifacts,
        docker=run.docker,
        ucr=run.ucr,
        volumes=run.volumes,
        networks=run.networks,
        gpus=run.gpus,
        allow=allow,
    )
    out += _secret_violations(run)
    for key, value in run.env.items():
        if isinstance(value, SecretEnvIn):
            continue
        if not key or "=" in key or "\x00" in key or "\x00" in value:
            out.append(Violation(f"/run/env/{key}", "names have no '=' and values no NUL"))
    for i, c in enumerate(run.placement.constraints):
        if not c.value:
            out.append(
                Violation(f"/run/placement/constraints({i})/value", f"{c.operator} needs a value")
            )
            continue
        try:
            constraint_from_metronome(c.attribute, c.operator, c.value)
        except ValidationError as exc:
            out.append(Violation(f"/run/placement/constraints({i})/value", exc.message))
    if run.parallelism and run.completions and run.completions < run.parallelism:
        out.append(
            Violation("/run/completions", f"must be at least parallelism ({run.parallelism})")
        )
    if run.placement.per_node and (run.parallelism or run.completions):
        out.append(
            Violation(
                "/run/placement/perNode",
                "a perNode run has one task per node: leave out parallelism and completions",
            )
        )
    return out


def _secret_violations(run: RunIn) -> list[Violation]:
    """Each secret's source is a store path, each secret variable and secret volume
    (``{containerPath, secret}``, a file relative to the sandbox) names one, and each is
    used."""
    out = []
    used = {v.secret for v in run.env.values() if isinstance(v, SecretEnvIn)}
    files = []
    for i, volume in enumerate(run.volumes):
        if set(volume) != {"containerPath", "secret"}:
            continue
        at = f"/run/volumes({i})"
        name, target = volume["secret"], volume["containerPath"]
        if not isinstance(name, str) or name not in run.secrets:
            out.append(Violation(f"{at}/secret", "references an undefined secret"))
        else:
            used.add(name)
        if not isinstance(target, str) or dest_path_problem(target):
            out.append(
                Violation(f"{at}/containerPath", "must be a relative path inside the sandbox")
            )
        files.append(target)
    if len(set(map(str, files))) != len(files):
        out.append(Violation("/run/volumes", "two secret volumes share a containerPath"))
    for name, secret in run.secrets.items():
        try:
            check_secret_path(secret.source, f"/run/secrets/{name}/source")
        except ValidationError as exc:
            out.append(Violation(exc.field, exc.message))
        if name not in used:
            out.append(Violation(f"/run/secrets/{name}", "is not used by run.env or run.volumes"))
    for key, value in run.env.items():
        if isinstance(value, SecretEnvIn) and value.secret not in run.secrets:
            out.append(Violation(f"/run/env/{key}/secret", "references an undefined secret"))
        elif isinstance(value, SecretEnvIn) and (not key or "=" in key or "\x00" in key):
            out.append(Violation(f"/run/env/{key}", "names have no '=' or NUL"))
    return out


def _job_violations(job: JobIn, allow: Allowances) -> list[Violation]:
    out = []
    if len(job.id) > MAX_ID:
        out.append(Violation("/id", f"error.maxLength: at most {MAX_ID} characters"))
    elif not _ID.match(job.id):
        out.append(Violation("/id", _ID_RULE))
    for i, dep in enumerate(job.dependencies):
        if not _ID.match(dep.id):
            out.append(Violation(f"/dependencies({i})/id", _ID_RULE))
    seen: set[str] = set()
    for i, s in enumerate(job.schedules):
        out += _schedule_violations(s, f"/schedules({i})")
        if s.id in seen:
            out.append(Violation(f"/schedules({i})/id", "has double entries"))
        seen.add(s.id)
    try:  # a run's tasks carry the job's labels: its process limit, as for apps
        pids_max_of(job.labels)
    except ValidationError as exc:
        out.append(Violation(exc.field, exc.message))
    out += _run_violations(job.run, allow)
    return out


# ---------------------------------------------------------------- conversion


def _schedule(s: ScheduleIn) -> ScheduleSpec:
    return ScheduleSpec(
        id=s.id,
        cron=s.cron,
        timezone=s.timezone,
        starting_deadline_seconds=s.starting_deadline_seconds,
        concurrency_policy=ConcurrencyPolicy(s.concurrency_policy),
        enabled=s.enabled,
    )


def _run(run: RunIn) -> JobRunSpec:
    env = {k: v for k, v in run.env.items() if isinstance(v, str)}
    return JobRunSpec(
        cmd=run.cmd,
        args=tuple(run.args or ()),
        cpus=run.cpus,
        mem=run.mem,
        disk=run.disk,
        gpus=run.gpus,
        env=env,
        constraints=tuple(
            constraint_from_metronome(c.attribute, c.operator, c.value)
            for c in run.placement.constraints
        ),
        max_launch_delay=run.max_launch_delay,
        kill_grace_seconds=run.task_kill_grace_period_seconds,
        restart_policy=RestartPolicy(run.restart.policy),
        active_deadline_seconds=run.restart.active_deadline_seconds,
        parallelism=run.parallelism,
        completions=run.completions,
        per_node=run.placement.per_node,
        **launch_parts(
            user=run.user,
            artifacts=run.artifacts,
            docker=run.docker,
            ucr=run.ucr,
            volumes=run.volumes,
            networks=run.networks,
        ),
        secrets=_task_secrets(run),
    )


def _task_secrets(run: RunIn) -> tuple[TaskSecret, ...]:
    def source(name: str) -> str:
        return check_secret_path(run.secrets[name].source)

    env = [
        TaskSecret(v.secret, source(v.secret), env=k)
        for k, v in run.env.items()
        if isinstance(v, SecretEnvIn)
    ]
    files = [
        TaskSecret(v["secret"], source(v["secret"]), file=v["containerPath"])
        for v in run.volumes
        if set(v) == {"containerPath", "secret"}
    ]
    return (*env, *files)


def job_from_json(
    body: object, path_id: str | None = None, allow: Allowances = Allowances()
) -> JobSpec:
    """A job from Metronome's JSON (``path_id``: the id in the URL of a ``PUT``, which
    the body may leave out but not contradict; ``allow``: what the operator allows
    beyond the defaults, as for apps)."""
    if path_id is not None and isinstance(body, Mapping) and "id" not in body:
        body = {**body, "id": path_id}
    job: JobIn = _parse(JobIn, body)
    violations = _job_violations(job, allow)
    if path_id is not None and job.id != path_id:
        violations.append(Violation("/id", f"does not match the job in the path ({path_id})"))
    if violations:
        raise JobSpecError(violations)
    return JobSpec(
        id=job.id,
        run=_run(job.run),
        description=job.description,
        labels=dict(job.labels),
        dependencies=tuple(d.id for d in job.dependencies),
        schedules=tuple(_schedule(s) for s in job.schedules),
    )


def schedule_from_json(body: object, path_id: str | None = None) -> ScheduleSpec:
    if path_id is not None and isinstance(body, Mapping) and "id" not in body:
        body = {**body, "id": path_id}
    schedule: ScheduleIn = _parse(ScheduleIn, body)
    violations = _schedule_violations(schedule, "")
    if path_id is not None and schedule.id != path_id:
        violations.append(Violation("/id", f"does not match the schedule in the path ({path_id})"))
    if violations:
        raise JobSpecError(violations)
    return _schedule(schedule)


def trigger_from_json(body: object) -> tuple[dict[str, str] | None, tuple[str, ...] | None]:
    """``(env, args)`` of a trigger's body (None: the body left them out)."""
    trigger: TriggerIn = _parse(TriggerIn, body)
    violations = []
    for key, value in (trigger.env or {}).items():
        if not key or "=" in key or "\x00" in key or "\x00" in value:
            violations.append(Violation(f"/env/{key}", "names have no '=' and values no NUL"))
    if trigger.args is not None and not trigger.args:
        violations.append(Violation("/args", "give at least one argument, or leave args out"))
    if trigger.args and sum(len(a) for a in trigger.args) > MAX_CMD:
        violations.append(Violation("/args", f"error.maxLength: at most {MAX_CMD} characters"))
    if violations:
        raise JobSpecError(violations)
    return trigger.env, None if trigger.args is None else tuple(trigger.args)
