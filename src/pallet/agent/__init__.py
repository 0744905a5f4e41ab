"""The node daemon: fingerprints the machine, pulls its desired tasks, runs them isolated, reports status.

Pure: ``spec``, ``status``, ``events``, ``state`` (the task state machine), ``environment``,
``health`` (health-check timing and counting), ``recovery`` (checkpoint records and what
to do with them after a restart), ``ocispec`` (runc's config; how an image's Entrypoint,
Cmd, Env and User combine with the app's), ``exits`` (how a task ended, in words).
I/O: ``cgroups`` and ``cgroup_isolator`` (per-task cgroups behind the ``isolation``
seam), ``executor`` (processes), ``spawning``, ``staging`` (user, sandbox, fetch, image
before a task starts) on ``preparing``'s worker threads, ``users``, ``fetcher`` and
``archives`` (Mesos' fetcher), ``images`` (pull, layers, store, overlay) and
``containers`` (runc), ``diskwatch`` (disk quotas), ``procfs``, ``checkpoint`` (task
checkpoints on disk), ``logs``, ``runtime`` (the state machine driven over the executor;
what the HTTP loop calls), ``checks`` (probes each running task's health checks) and
``fingerprint``.
"""

from pallet.agent.cgroup_isolator import detect_isolator
from pallet.agent.events import (
    DesiredTasks,
    Event,
    ForceKill,
    HealthChanged,
    Instruction,
    Kill,
    KillTimeout,
    Launch,
    SendStatus,
    StatusAcked,
    TaskExited,
    TaskLaunchFailed,
    TaskRecovered,
    TaskStarted,
    TaskVanished,
    Tick,
)
from pallet.agent.executor import Executor, LaunchError, TaskExit
from pallet.agent.fingerprint import fingerprint, parse_attributes, parse_resources
from pallet.agent.isolation import IsolationError, Isolator, NullIsolator, Usage
from pallet.agent.logs import LogChunk, LogNotFound, LogStream, read_log
from pallet.agent.runtime import TaskRuntime
from pallet.agent.state import AgentStateMachine, InvalidTransition, RetryPolicy, TaskView
from pallet.agent.status import TERMINAL, TRANSITIONS, Reason, TaskState
from pallet.model import TaskSpec

__all__ = [
    "TERMINAL",
    "TRANSITIONS",
    "AgentStateMachine",
    "DesiredTasks",
    "Event",
    "Executor",
    "ForceKill",
    "HealthChanged",
    "Instruction",
    "InvalidTransition",
    "IsolationError",
    "Isolator",
    "Kill",
    "KillTimeout",
    "Launch",
    "LaunchError",
    "LogChunk",
    "LogNotFound",
    "LogStream",
    "NullIsolator",
    "Reason",
    "RetryPolicy",
    "SendStatus",
    "StatusAcked",
    "TaskExit",
    "TaskExited",
    "TaskLaunchFailed",
    "TaskRecovered",
    "TaskRuntime",
    "TaskSpec",
    "TaskStarted",
    "TaskState",
    "TaskVanished",
    "TaskView",
    "Tick",
    "Usage",
    "detect_isolator",
    "fingerprint",
    "parse_attributes",
    "parse_resources",
    "read_log",
]
