"""Jobs (Metronome's job specs), their schedules, runs and history, and their JSON; pure.

A job is a batch workload: each *run* launches one task (Metronome), or ``parallelism``
tasks at a time until ``completions`` indices succeeded (Kubernetes Jobs), or one task on
every node (``perNode``). ``to_json`` writes Metronome's field names (Pallet's additions
only when set); ``from_json`` reads what ``to_json`` wrote (the store's records), so it
trusts its input: user input is checked at the API edge first.

Times are epoch seconds (floats); the API renders them as Metronome does.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pallet.model.constraints import Constraint, Operator
from pallet.model.launch import ContainerSpec, FetchUri, VolumeSpec
from pallet.model.resources import Resources
from pallet.model.secrets import TaskSecret

__all__ = [
    "DEFAULT_HISTORY",
    "ConcurrencyPolicy",
    "JobHistory",
    "JobImage",
    "JobNetwork",
    "JobRun",
    "JobRunSpec",
    "JobSpec",
    "JobTriggers",
    "RestartPolicy",
    "RunInfo",
    "RunStatus",
    "RunTask",
    "ScheduleSpec",
    "constraint_from_metronome",
    "constraint_to_metronome",
]

DEFAULT_HISTORY = 10
"""Finished runs kept whole per job, and per outcome in the history lists."""


class RestartPolicy(enum.StrEnum):
    NEVER = "NEVER"
    ON_FAILURE = "ON_FAILURE"


class ConcurrencyPolicy(enum.StrEnum):
    """What a schedule does when its instant comes while the job has an active run.
    ``REPLACE`` (Kubernetes' CronJob) is Pallet's addition to Metronome's two."""

    ALLOW = "ALLOW"
    FORBID = "FORBID"
    REPLACE = "REPLACE"


class RunStatus(enum.StrEnum):
    """Metronome's run statuses: INITIAL (stored, nothing queued yet), STARTING (tasks
    queued or staging), ACTIVE (a task started), then SUCCESS or FAILED."""

    INITIAL = "INITIAL"
    STARTING = "STARTING"
    ACTIVE = "ACTIVE"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"

    @property
    def is_final(self) -> bool:
        return self in (RunStatus.SUCCESS, RunStatus.FAILED)


# Metronome's operators: IS (EQ is its old name), LIKE, UNLIKE.
_OPERATORS = {
    "IS": Operator.IS,
    "EQ": Operator.IS,
    "LIKE": Operator.LIKE,
    "UNLIKE": Operator.UNLIKE,
}


def constraint_from_metronome(attribute: str, operator: str, value: str | None) -> Constraint:
    """``{"attribute", "operator", "value"}`` as the scheduler's constraint."""
    return Constraint(attribute, _OPERATORS[operator], value or "")


def constraint_to_metronome(c: Constraint) -> dict[str, Any]:
    doc: dict[str, Any] = {"attribute": c.field, "operator": c.operator.value}
    if c.value:
        doc["value"] = c.value
    return doc


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """One cron schedule of a job (Metronome's defaults)."""

    id: str
    cron: str
    timezone: str = "UTC"
    starting_deadline_seconds: int = 900
    concurrency_policy: ConcurrencyPolicy = ConcurrencyPolicy.ALLOW
    enabled: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "cron": self.cron,
            "timezone": self.timezone,
            "startingDeadlineSeconds": self.starting_deadline_seconds,
            "concurrencyPolicy": self.concurrency_policy.value,
            "enabled": self.enabled,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ScheduleSpec:
        return cls(
            id=doc["id"],
            cron=doc["cron"],
            timezone=doc.get("timezone", "UTC"),
            starting_deadline_seconds=int(doc.get("startingDeadlineSeconds", 900)),
            concurrency_policy=ConcurrencyPolicy(doc.get("concurrencyPolicy", "ALLOW")),
            enabled=bool(doc.get("enabled", True)),
        )


@dataclass(frozen=True, slots=True)
class JobImage:
    """The image a job's tasks run in: Metronome's ``run.docker`` or (``ucr``) its
    ``run.ucr``. Both run under runc from the agent's image store, as apps' images do."""

    id: str
    ucr: bool = False
    force_pull: bool = False
    privileged: bool = False

    def to_json(self) -> dict[str, Any]:
        """Metronome's ``docker`` object, or its ``ucr`` one (``ucr`` True)."""
        if self.ucr:
            image = {"id": self.id, "kind": "docker", "forcePull": self.force_pull}
            return {"image": image, "privileged": self.privileged}
        return {
            "image": self.id,
            "privileged": self.privileged,
            "parameters": [],
            "forcePullImage": self.force_pull,
        }


@dataclass(frozen=True, slots=True)
class JobNetwork:
    """One of Metronome's ``run.networks``: ``host`` or ``container/bridge`` (the labels
    are kept for other tools, as an app's network labels are)."""

    mode: str
    labels: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"mode": self.mode}
        if self.labels:
            doc["labels"] = dict(self.labels)
        return doc


def _artifact_json(f: FetchUri) -> dict[str, Any]:
    return {"uri": f.uri, "extract": f.extract, "executable": f.executable, "cache": f.cache}


def _volume_json(v: VolumeSpec) -> dict[str, Any]:
    return {"containerPath": v.container_path, "hostPath": v.host_path, "mode": v.mode}


def _image_from_json(doc: Mapping[str, Any]) -> JobImage | None:
    if (docker := doc.get("docker")) is not None:
        return JobImage(
            docker["image"],
            force_pull=bool(docker.get("forcePullImage", False)),
            privileged=bool(docker.get("privileged", False)),
        )
    if (ucr := doc.get("ucr")) is not None:
        image = ucr["image"]
        return JobImage(
            image["id"],
            ucr=True,
            force_pull=bool(image.get("forcePull", False)),
            privileged=bool(ucr.get("privileged", False)),
        )
    return None


@dataclass(frozen=True, slots=True)
class JobRunSpec:
    """What each run of a job launches. ``cpus``/``mem``/``disk`` are Metronome's floats
    (kept to render them as given); ``resources`` is what the scheduler places.

    Pallet's additions: ``parallelism`` tasks at once until ``completions`` indices
    succeeded (each task gets ``$PALLET_JOB_INDEX``), or ``per_node``: one task on every
    node the constraints allow, nodes that join during the run included."""

    cmd: str | None = None
    args: tuple[str, ...] = ()
    cpus: float = 1.0
    mem: float = 128.0
    disk: float = 0.0
    gpus: int = 0
    env: Mapping[str, str] = field(default_factory=dict)
    constraints: tuple[Constraint, ...] = ()
    max_launch_delay: int = 3600
    kill_grace_seconds: float | None = None
    restart_policy: RestartPolicy = RestartPolicy.NEVER
    active_deadline_seconds: int | None = None
    parallelism: int | None = None
    completions: int | None = None
    per_node: bool = False
    user: str | None = None
    """Who the tasks run as (None: the agent's task user), as an app's ``user``."""
    artifacts: tuple[FetchUri, ...] = ()
    """Fetched into each task's sandbox before it starts, as an app's ``fetch``."""
    image: JobImage | None = None
    volumes: tuple[VolumeSpec, ...] = ()
    """Host directories mounted into the container (only with an image)."""
    networks: tuple[JobNetwork, ...] = ()

    @property
    def container(self) -> ContainerSpec | None:
        """The container the agent runs each task in, as for an app's image (None: a
        plain command on the host)."""
        if self.image is None:
            return None
        bridged = any(n.mode == "container/bridge" for n in self.networks)
        return ContainerSpec(
            type="MESOS" if self.image.ucr else "DOCKER",
            image=self.image.id,
            force_pull=self.image.force_pull,
            privileged=self.image.privileged,
            volumes=self.volumes,
            network="bridge" if bridged else "host",
        )

    secrets: tuple[TaskSecret, ...] = ()
    """Metronome's ``secrets`` as each task gets them (``env: {VAR: {secret: name}}``):
    references to the store's paths, never values."""

    @property
    def resources(self) -> Resources:
        return Resources.from_marathon(self.cpus, self.mem, self.disk, self.gpus)

    @property
    def width(self) -> int:
        """Tasks that may run at once (1 for Metronome's jobs)."""
        return self.parallelism or 1

    @property
    def needed(self) -> int:
        """Indices that must succeed (for ``per_node``: decided per run by its nodes)."""
        if self.completions is not None:
            return self.completions
        return self.parallelism or 1

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "cpus": self.cpus,
            "mem": self.mem,
            "disk": self.disk,
            "gpus": self.gpus,
        }
        if self.cmd is not None:
            doc["cmd"] = self.cmd
        if self.args:
            doc["args"] = list(self.args)
        if self.user is not None:
            doc["user"] = self.user
        if self.image is not None:
            doc["ucr" if self.image.ucr else "docker"] = self.image.to_json()
        placement: dict[str, Any] = {
            "constraints": [constraint_to_metronome(c) for c in self.constraints]
        }
        if self.per_node:
            placement["perNode"] = True
        restart: dict[str, Any] = {"policy": self.restart_policy.value}
        if self.active_deadline_seconds is not None:
            restart["activeDeadlineSeconds"] = self.active_deadline_seconds
        doc.update(
            {
                "env": {
                    **self.env,
                    **{r.env: {"secret": r.name} for r in self.secrets if r.env is not None},
                },
                "placement": placement,
                "artifacts": [_artifact_json(f) for f in self.artifacts],
                "maxLaunchDelay": self.max_launch_delay,
                "volumes": [_volume_json(v) for v in self.volumes]
                + [{"containerPath": r.file, "secret": r.name} for r in self.secrets if r.file],
                "restart": restart,
                "secrets": {r.name: {"source": r.source} for r in self.secrets},
                "networks": [n.to_json() for n in self.networks],
            }
        )
        if self.kill_grace_seconds is not None:
            doc["taskKillGracePeriodSeconds"] = _number(self.kill_grace_seconds)
        if self.parallelism is not None:
            doc["parallelism"] = self.parallelism
        if self.completions is not None:
            doc["completions"] = self.completions
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> JobRunSpec:
        placement = doc.get("placement") or {}
        restart = doc.get("restart") or {}
        grace = doc.get("taskKillGracePeriodSeconds")
        return cls(
            cmd=doc.get("cmd"),
            args=tuple(doc.get("args") or ()),
            cpus=float(doc.get("cpus", 1.0)),
            mem=float(doc.get("mem", 128.0)),
            disk=float(doc.get("disk", 0.0)),
            gpus=int(doc.get("gpus", 0)),
            env={k: v for k, v in (doc.get("env") or {}).items() if isinstance(v, str)},
            constraints=tuple(
                constraint_from_metronome(c["attribute"], c["operator"], c.get("value"))
                for c in placement.get("constraints") or ()
            ),
            max_launch_delay=int(doc.get("maxLaunchDelay", 3600)),
            kill_grace_seconds=None if grace is None else float(grace),
            restart_policy=RestartPolicy(restart.get("policy", "NEVER")),
            active_deadline_seconds=restart.get("activeDeadlineSeconds"),
            parallelism=doc.get("parallelism"),
            completions=doc.get("completions"),
            per_node=bool(placement.get("perNode", False)),
            user=doc.get("user"),
            artifacts=tuple(
                FetchUri(
                    a["uri"],
                    extract=bool(a.get("extract", True)),
                    executable=bool(a.get("executable", False)),
                    cache=bool(a.get("cache", False)),
                )
                for a in doc.get("artifacts") or ()
            ),
            image=_image_from_json(doc),
            volumes=tuple(
                VolumeSpec(v["containerPath"], v["hostPath"], v.get("mode", "RW"))
                for v in doc.get("volumes") or ()
                if "hostPath" in v
            ),
            networks=tuple(
                JobNetwork(n["mode"], dict(n.get("labels") or {}))
                for n in doc.get("networks") or ()
            ),
            secrets=_secrets_from_json(doc),
        )

    def overridden(self, env: Mapping[str, str] | None, args: tuple[str, ...] | None) -> JobRunSpec:
        """The spec with a trigger's parameters: ``env`` over the job's, ``args`` instead."""
        changes: dict[str, Any] = {}
        if env:
            changes["env"] = {**self.env, **env}
        if args is not None:
            changes["args"] = args
        return replace(self, **changes) if changes else self


def _secrets_from_json(doc: Mapping[str, Any]) -> tuple[TaskSecret, ...]:
    """The secret variables and files of a run as ``to_json`` wrote them."""
    sources = {name: d["source"] for name, d in (doc.get("secrets") or {}).items()}
    env = [
        TaskSecret(v["secret"], sources[v["secret"]], env=k)
        for k, v in (doc.get("env") or {}).items()
        if isinstance(v, Mapping)
    ]
    files = [
        TaskSecret(v["secret"], sources[v["secret"]], file=v["containerPath"])
        for v in doc.get("volumes") or ()
        if "secret" in v
    ]
    return (*env, *files)


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


@dataclass(frozen=True, slots=True)
class JobSpec:
    """A Metronome job: its id (``prod.backup``), metadata, what a run launches, and its
    schedules. ``dependencies`` name jobs whose successful runs trigger this one."""

    id: str
    run: JobRunSpec
    description: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    dependencies: tuple[str, ...] = ()
    schedules: tuple[ScheduleSpec, ...] = ()

    def schedule(self, schedule_id: str) -> ScheduleSpec | None:
        return next((s for s in self.schedules if s.id == schedule_id), None)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"id": self.id}
        if self.description is not None:
            doc["description"] = self.description
        doc["dependencies"] = [{"id": d} for d in self.dependencies]
        doc["labels"] = dict(self.labels)
        doc["run"] = self.run.to_json()
        doc["schedules"] = [s.to_json() for s in self.schedules]
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> JobSpec:
        return cls(
            id=doc["id"],
            run=JobRunSpec.from_json(doc["run"]),
            description=doc.get("description"),
            labels=dict(doc.get("labels") or {}),
            dependencies=tuple(d["id"] for d in doc.get("dependencies") or ()),
            schedules=tuple(ScheduleSpec.from_json(s) for s in doc.get("schedules") or ()),
        )


@dataclass(frozen=True, slots=True)
class RunTask:
    """One task of a run as the run remembers it (Metronome's ``JobRunTask``, plus the
    index, node, exit code and message Pallet knows)."""

    id: str
    index: int
    status: str
    """A Mesos task state name: ``TASK_STAGING`` ... ``TASK_FINISHED``."""
    started_at: float
    completed_at: float | None = None
    node_id: str = ""
    host: str = ""
    exit_code: int | None = None
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "index": self.index,
            "status": self.status,
            "started_at": self.started_at,
            "completed_at": self.completed_at,
            "node_id": self.node_id,
            "host": self.host,
            "exit_code": self.exit_code,
            "message": self.message,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> RunTask:
        return cls(**doc)


@dataclass(frozen=True, slots=True)
class JobRun:
    """One run of a job: the spec it runs (the job's at trigger time, with the trigger's
    parameters), its status, and its tasks.

    ``tasks`` holds the tasks that ended (the most recent ones when there were many);
    live tasks are the master's task records, whose owner is this run. ``succeeded``
    lists the indices that finished successfully; ``failures`` counts failed tasks.
    ``key`` is what dependencies match on: the schedule instant (ISO) for a scheduled
    run, else the run id."""

    id: str
    job_id: str
    spec: JobRunSpec
    status: RunStatus
    created_at: float
    key: str
    completed_at: float | None = None
    schedule_id: str | None = None
    instant: float | None = None
    starting_deadline: float | None = None
    """Seconds after ``instant`` (or ``created_at``) by which a task must be ACTIVE."""
    tasks: tuple[RunTask, ...] = ()
    succeeded: tuple[int, ...] = ()
    failures: int = 0
    launch_after: float = 0.0
    """No task is launched before this (the backoff after a failed task)."""
    reason: str | None = None
    nodes: tuple[str, ...] = ()
    """``per_node`` runs: the nodes a task was launched on, index by index."""

    @property
    def final(self) -> bool:
        return self.status.is_final

    def with_(self, **changes: Any) -> JobRun:
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "job_id": self.job_id,
            "spec": self.spec.to_json(),
            "status": self.status.value,
            "created_at": self.created_at,
            "key": self.key,
            "completed_at": self.completed_at,
            "schedule_id": self.schedule_id,
            "instant": self.instant,
            "starting_deadline": self.starting_deadline,
            "tasks": [t.to_json() for t in self.tasks],
            "succeeded": _ranges(self.succeeded),
            "failures": self.failures,
            "launch_after": self.launch_after,
            "reason": self.reason,
            "nodes": list(self.nodes),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> JobRun:
        d = dict(doc)
        d["spec"] = JobRunSpec.from_json(d["spec"])
        d["status"] = RunStatus(d["status"])
        d["tasks"] = tuple(RunTask.from_json(t) for t in d.get("tasks") or ())
        d["succeeded"] = _from_ranges(d.get("succeeded") or [])
        d["nodes"] = tuple(d.get("nodes") or ())
        return cls(**d)


def _ranges(values: tuple[int, ...]) -> list[list[int]]:
    """Sorted integers as ``[first, last]`` runs: 1,000 indices of a finished parallel run
    are one pair, not a thousand numbers."""
    out: list[list[int]] = []
    for v in sorted(set(values)):
        if out and out[-1][1] == v - 1:
            out[-1][1] = v
        else:
            out.append([v, v])
    return out


def _from_ranges(pairs: list[list[int]]) -> tuple[int, ...]:
    return tuple(v for first, last in pairs for v in range(first, last + 1))


@dataclass(frozen=True, slots=True)
class RunInfo:
    """A finished run in Metronome's history lists."""

    id: str
    created_at: float
    finished_at: float
    tasks: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "tasks": list(self.tasks),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> RunInfo:
        return cls(doc["id"], doc["created_at"], doc["finished_at"], tuple(doc["tasks"]))


@dataclass(frozen=True, slots=True)
class JobHistory:
    """What a job's finished runs left: counts, last times, the last runs of each outcome
    (Metronome's ``successfulFinishedRuns``/``failedFinishedRuns``) and the last runs
    whole (``runs``, newest first)."""

    job_id: str
    success_count: int = 0
    failure_count: int = 0
    last_success_at: float | None = None
    last_failure_at: float | None = None
    successful: tuple[RunInfo, ...] = ()
    failed: tuple[RunInfo, ...] = ()
    runs: tuple[JobRun, ...] = ()

    def with_finished(self, run: JobRun, limit: int = DEFAULT_HISTORY) -> JobHistory:
        """The history once ``run`` (final) is added; each list keeps ``limit`` runs."""
        assert run.final and run.completed_at is not None
        info = RunInfo(run.id, run.created_at, run.completed_at, tuple(t.id for t in run.tasks))
        runs = (run, *self.runs)[:limit]
        if run.status is RunStatus.SUCCESS:
            return replace(
                self,
                success_count=self.success_count + 1,
                last_success_at=run.completed_at,
                successful=(info, *self.successful)[:limit],
                runs=runs,
            )
        return replace(
            self,
            failure_count=self.failure_count + 1,
            last_failure_at=run.completed_at,
            failed=(info, *self.failed)[:limit],
            runs=runs,
        )

    def run(self, run_id: str) -> JobRun | None:
        return next((r for r in self.runs if r.id == run_id), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "success_count": self.success_count,
            "failure_count": self.failure_count,
            "last_success_at": self.last_success_at,
            "last_failure_at": self.last_failure_at,
            "successful": [r.to_json() for r in self.successful],
            "failed": [r.to_json() for r in self.failed],
            "runs": [r.to_json() for r in self.runs],
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> JobHistory:
        return cls(
            job_id=doc["job_id"],
            success_count=doc["success_count"],
            failure_count=doc["failure_count"],
            last_success_at=doc.get("last_success_at"),
            last_failure_at=doc.get("last_failure_at"),
            successful=tuple(RunInfo.from_json(r) for r in doc.get("successful") or ()),
            failed=tuple(RunInfo.from_json(r) for r in doc.get("failed") or ()),
            runs=tuple(JobRun.from_json(r) for r in doc.get("runs") or ()),
        )


@dataclass(frozen=True, slots=True)
class JobTriggers:
    """What has triggered a job's runs, so nothing triggers twice across restarts:
    per schedule the last instant handled (run, skipped or missed), and the dependency
    keys already run. ``since``: parent runs that finished before it trigger nothing
    (a job created after its parents ran does not replay their history)."""

    job_id: str
    since: float
    instants: Mapping[str, float] = field(default_factory=dict)
    fired: tuple[str, ...] = ()

    def with_instant(self, schedule_id: str, instant: float) -> JobTriggers:
        return replace(self, instants={**self.instants, schedule_id: instant})

    def with_fired(self, key: str, limit: int = 100) -> JobTriggers:
        return replace(self, fired=(*self.fired, key)[-limit:])

    def to_json(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "since": self.since,
            "instants": dict(self.instants),
            "fired": list(self.fired),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> JobTriggers:
        instants = {k: float(v) for k, v in (doc.get("instants") or {}).items()}
        return cls(doc["job_id"], float(doc["since"]), instants, tuple(doc.get("fired") or ()))
