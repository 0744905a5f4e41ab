"""Where jobs live in the store, and how their tasks name their run; pure.

    /pallet/jobs/<job id>                 the job (``JobSpec``, schedules included)
    /pallet/jobruns/<job id>/<run id>     an active run (``JobRun``); deleted when it ends
    /pallet/jobhistory/<job id>           its finished runs (``JobHistory``)
    /pallet/jobtriggers/<job id>          the instants and dependency keys handled
    /pallet/jobended/<job id>/<run id>/<task id>
                                          a job task's end its run has not yet taken in

A finished run is deleted and added to its job's history in one transaction; a run
created by a schedule is written with the instant it handles in one transaction. A job
task's end is stored with the deletion of its task record and deleted with the run
update that takes it in, so a master that takes over between the two still sees it.

Job ids (``prod.backup``) have no ``/``, so one job's runs never share a prefix with
another's. A job task's owner (the task record's ``app_id``) is ``job:<job id>/<run id>``:
it cannot be a Marathon app id (those start with ``/``), so the app controller leaves
job tasks alone.
"""

from __future__ import annotations

__all__ = [
    "ENDED",
    "HISTORY",
    "JOBS",
    "OWNER_PREFIX",
    "RUNS",
    "TRIGGERS",
    "ended_key",
    "ended_prefix",
    "history_key",
    "is_job_owner",
    "job_key",
    "job_task_id",
    "owner_of",
    "run_key",
    "run_of_owner",
    "runs_prefix",
    "triggers_key",
]

JOBS = "/pallet/jobs/"
RUNS = "/pallet/jobruns/"
HISTORY = "/pallet/jobhistory/"
TRIGGERS = "/pallet/jobtriggers/"
ENDED = "/pallet/jobended/"
OWNER_PREFIX = "job:"


def job_key(job_id: str) -> str:
    return JOBS + job_id


def runs_prefix(job_id: str) -> str:
    return f"{RUNS}{job_id}/"


def run_key(job_id: str, run_id: str) -> str:
    return runs_prefix(job_id) + run_id


def history_key(job_id: str) -> str:
    return HISTORY + job_id


def triggers_key(job_id: str) -> str:
    return TRIGGERS + job_id


def ended_prefix(job_id: str, run_id: str | None = None) -> str:
    """Where the unfolded task ends of one run (or of every run of the job) are."""
    return f"{ENDED}{job_id}/" if run_id is None else f"{ENDED}{job_id}/{run_id}/"


def ended_key(job_id: str, run_id: str, task_id: str) -> str:
    return ended_prefix(job_id, run_id) + task_id


def owner_of(job_id: str, run_id: str) -> str:
    return f"{OWNER_PREFIX}{job_id}/{run_id}"


def is_job_owner(app_id: str) -> bool:
    return app_id.startswith(OWNER_PREFIX)


def run_of_owner(owner: str) -> tuple[str, str]:
    """``(job id, run id)`` of a job task's owner."""
    job_id, _, run_id = owner[len(OWNER_PREFIX) :].partition("/")
    return job_id, run_id


def job_task_id(job_id: str, run_id: str, unique: str) -> str:
    """Metronome's task id shape: ``prod_backup_20160715130259A34HX.<unique>``."""
    return f"{job_id.replace('.', '_')}_{run_id}.{unique}"
