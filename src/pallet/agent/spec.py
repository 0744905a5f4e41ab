"""What the agent needs to run one task (``TaskSpec``), checked on construction; pure.

A spec arrives from the master already placed: its host ports are assigned and its
resources are whole numbers (millicpus, MiB, MiB, milli-GPUs), as in ``pallet.model``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from pallet.agent.health import HealthCheck, checks_from_json
from pallet.model import Resources, ValidationError

__all__ = ["DEFAULT_KILL_GRACE_SECONDS", "TaskSpec", "check_task_id"]

DEFAULT_KILL_GRACE_SECONDS = 3.0
"""Mesos' default kill grace period when the app sets none."""

_TASK_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,199}$")
_ENV_NAME = re.compile(r"^[^=\x00]+$")


def check_task_id(task_id: str, field_path: str = "/taskId") -> str:
    """Return ``task_id`` if it is safe as a directory and cgroup name, else raise.

    Marathon's ids (``web.1c4f…`` or ``prod_web.instance-…``) pass; slashes, ``..``
    and control characters do not."""
    if not isinstance(task_id, str) or not _TASK_ID.match(task_id):
        raise ValidationError(
            field_path,
            f"task id {task_id!r} must be 1-200 characters of letters, digits, '_', '.', "
            "':' or '-', not starting with '.', '-' or ':'",
        )
    return task_id


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """One task to run on this node.

    Exactly one of ``cmd`` (run with ``/bin/sh -c``) and ``args`` (run directly, the
    first element looked up on ``PATH``) is set, as in Marathon. ``ports`` are the host
    ports the scheduler assigned; ``port_names[i]`` names ``ports[i]`` (``""`` = none).
    Specs hash by ``task_id``: the master never gives two tasks one id.
    """

    task_id: str
    app_id: str = ""
    app_version: str = ""
    cmd: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cpus: int = 100
    mem: int = 32
    disk: int = 0
    gpus: int = 0
    ports: tuple[int, ...] = ()
    port_names: tuple[str, ...] = ()
    kill_grace_seconds: float = DEFAULT_KILL_GRACE_SECONDS
    labels: Mapping[str, str] = field(default_factory=dict)
    health_checks: tuple[HealthCheck, ...] = ()
    """Run next to the task once it runs (JSON dicts are read as ``HealthCheck``)."""

    def __post_init__(self) -> None:
        check_task_id(self.task_id)
        where = f"task {self.task_id}"
        object.__setattr__(self, "health_checks", checks_from_json(self.health_checks))
        object.__setattr__(self, "args", tuple(self.args))
        object.__setattr__(self, "ports", tuple(self.ports))
        object.__setattr__(self, "port_names", tuple(self.port_names))
        object.__setattr__(self, "env", dict(self.env))
        object.__setattr__(self, "labels", dict(self.labels))
        if (self.cmd is None) == (not self.args):
            raise ValidationError("/cmd", f"{where}: set exactly one of cmd and args")
        if self.cmd is not None and (not self.cmd.strip() or "\x00" in self.cmd):
            raise ValidationError("/cmd", f"{where}: cmd must be a non-empty shell command")
        for i, arg in enumerate(self.args):
            if not isinstance(arg, str) or "\x00" in arg:
                raise ValidationError(f"/args/{i}", f"{where}: arguments are strings without NUL")
        if self.args and not self.args[0]:
            raise ValidationError("/args/0", f"{where}: the program to run must not be empty")
        for name, value in self.env.items():
            if not isinstance(name, str) or not _ENV_NAME.match(name):
                raise ValidationError("/env", f"{where}: env name {name!r} is empty or has '='")
            if not isinstance(value, str) or "\x00" in value:
                raise ValidationError(f"/env/{name}", f"{where}: env values are strings")
        for name, limit in (("cpus", 1), ("mem", 1), ("disk", 0), ("gpus", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < limit:
                raise ValidationError(f"/{name}", f"{where}: {name} must be an integer >= {limit}")
        for i, port in enumerate(self.ports):
            if not isinstance(port, int) or not 0 < port <= 65535:
                raise ValidationError(f"/ports/{i}", f"{where}: host port {port!r} not in 1-65535")
        if len(self.port_names) > len(self.ports):
            raise ValidationError(
                "/portNames", f"{where}: {len(self.port_names)} names for {len(self.ports)} ports"
            )
        if not self.kill_grace_seconds >= 0:
            raise ValidationError(
                "/taskKillGracePeriodSeconds", f"{where}: the kill grace period must be >= 0"
            )

    def __hash__(self) -> int:
        return hash(self.task_id)

    @property
    def resources(self) -> Resources:
        return Resources(self.cpus, self.mem, self.disk, self.gpus)

    @property
    def argv(self) -> tuple[str, ...]:
        """The program and arguments to exec."""
        if self.cmd is not None:
            return ("/bin/sh", "-c", self.cmd)
        return self.args
