"""Errors of the job operations, for the API to answer in Metronome's shapes; pure.

PalletError
 └── ControlError
      └── JobError
           ├── JobExists          create of a job id that is taken
           ├── JobNotFound        no job with that id
           ├── ScheduleNotFound   the job has no schedule with that id
           ├── ScheduleExists     the job already has a schedule with that id
           ├── RunNotFound        the job has no run with that id
           ├── JobConflict        the change would break a rule (active runs, dependents)
           └── JobInvalid         the change breaks a rule on a field (path, message)
"""

from __future__ import annotations

from pallet.control.errors import ControlError

__all__ = [
    "JobConflict",
    "JobError",
    "JobExists",
    "JobInvalid",
    "JobNotFound",
    "RunNotFound",
    "ScheduleExists",
    "ScheduleNotFound",
]


class JobError(ControlError):
    """Base of the job operations' errors."""


class JobExists(JobError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"a job with id {job_id} already exists")
        self.job_id = job_id


class JobNotFound(JobError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} does not exist")
        self.job_id = job_id


class ScheduleNotFound(JobError):
    def __init__(self, job_id: str, schedule_id: str) -> None:
        super().__init__(f"job {job_id} has no schedule {schedule_id}")
        self.job_id = job_id
        self.schedule_id = schedule_id


class ScheduleExists(JobError):
    def __init__(self, job_id: str, schedule_id: str) -> None:
        super().__init__(f"A schedule with id {schedule_id} already exists")
        self.job_id = job_id
        self.schedule_id = schedule_id


class RunNotFound(JobError):
    def __init__(self, job_id: str, run_id: str) -> None:
        super().__init__(f"job {job_id} has no run {run_id}")
        self.job_id = job_id
        self.run_id = run_id


class JobConflict(JobError):
    """The change is refused as things stand (Metronome answers 409)."""


class JobInvalid(JobError):
    """The change breaks a rule on a field (Metronome answers 422 with the path)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message
