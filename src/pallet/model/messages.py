"""The master–agent protocol as typed messages, one JSON encoding each, used by both sides; pure.

Mesos has one ``TaskInfo`` and one ``TaskStatus`` that master and agents share; so does
Pallet::

    agent ── Registration ──────────────▶ master     POST /v1/agent/register
    agent ◀── DesiredSet (TaskSpec, ...) ── master   GET  /v1/agent/nodes/{id}/desired
    agent ── StatusBatch (TaskStatus, ...) ▶ master  POST /v1/agent/nodes/{id}/status
    agent ◀── Acks ──────────────────────── master
    agent ── Heartbeat (TaskUsage, ...) ───▶ master  POST /v1/agent/nodes/{id}/heartbeat

A launch is a task appearing in the desired set; a kill, its leaving it. ``from_json``
checks every field and raises ``ValidationError`` naming it; unknown fields are refused,
so a field one side sends and the other does not understand is an error, never ignored.
This module holds what the master sends (``TaskSpec``, ``DesiredSet``); what agents send
is ``pallet.model.reports``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pallet.model.checks import HealthCheckSpec, ReadinessCheckSpec
from pallet.model.errors import ValidationError
from pallet.model.launch import (
    ContainerPort,
    ContainerSpec,
    FetchUri,
    PersistentVolume,
    VolumeSpec,
)
from pallet.model.pods import PodContainer, pod_argv
from pallet.model.resources import Resources
from pallet.model.secrets import TaskSecret
from pallet.model.wire import RESOURCE_KEYS, renamed
from pallet.model.wire import fields_of as _fields
from pallet.model.wire import read_float as _float
from pallet.model.wire import read_int as _int
from pallet.model.wire import read_list as _list
from pallet.model.wire import read_obj as _obj
from pallet.model.wire import read_str as _str
from pallet.model.wire import read_str_map as _str_map

__all__ = [
    "DEFAULT_KILL_GRACE_SECONDS",
    "ContainerPort",
    "ContainerSpec",
    "DesiredSet",
    "FetchUri",
    "PersistentVolume",
    "TaskSpec",
    "VolumeSpec",
    "check_task_id",
]

DEFAULT_KILL_GRACE_SECONDS = 3.0
"""Mesos' default kill grace period when the app sets none."""

_TASK_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,199}$")
_ENV_NAME = re.compile(r"^[^=\x00]+$")


def check_task_id(task_id: object, field_path: str = "/taskId") -> str:
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


# ---------------------------------------------------------------- launch


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """One task the master wants on a node: what to run, with what, and how to check it.

    At most one of ``cmd`` (run with ``/bin/sh -c``) and ``args`` (run directly, the
    first element looked up on ``PATH``; with an image, after the image's Entrypoint)
    is set, as in Marathon, and one of them unless there is an image, which then runs
    its own Entrypoint and Cmd. ``ports`` are the host
    ports the scheduler assigned; ``port_names[i]`` names ``ports[i]`` (``""`` = none).
    Checks carry the host port they probe. Specs hash by ``task_id``: the master never
    gives two tasks one id.
    """

    task_id: str
    app_id: str = ""
    app_version: str = ""
    cmd: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cpu_milli: int = 100
    mem_mib: int = 32
    disk_mib: int = 0
    gpu_milli: int = 0
    ports: tuple[int, ...] = ()
    port_names: tuple[str, ...] = ()
    kill_grace_seconds: float = DEFAULT_KILL_GRACE_SECONDS
    labels: Mapping[str, str] = field(default_factory=dict)
    health_checks: tuple[HealthCheckSpec, ...] = ()
    readiness_checks: tuple[ReadinessCheckSpec, ...] = ()
    gpu_devices: tuple[int, ...] = ()
    """The node's GPU devices placed for the task (indices): its only ones."""
    user: str | None = None
    """Who the task runs as (Marathon's ``user``); None: the agent's default task user."""
    fetch: tuple[FetchUri, ...] = ()
    """Fetched into the sandbox, in order, before the task starts."""
    container: ContainerSpec | None = None
    """Run in a container of this image; None: a plain command."""
    persistent_volumes: tuple[PersistentVolume, ...] = ()
    """Its instance slot's local persistent volumes (ids set): kept on the node after
    the task ends, mounted at ``<sandbox>/<container_path>``."""
    containers: tuple[PodContainer, ...] = ()
    """A pod instance's containers (then neither ``cmd`` nor ``args``): run together by
    the pod's supervisor (``model.pods``) in the task's one sandbox and cgroup."""
    secrets: tuple[TaskSecret, ...] = ()
    """The secrets it gets, as references: the agent asks the master for their values
    when it starts the task (``model.secrets``); never the values themselves."""

    def __post_init__(self) -> None:
        check_task_id(self.task_id)
        object.__setattr__(
            self,
            "secrets",
            tuple(
                s if isinstance(s, TaskSecret) else TaskSecret.from_json(s) for s in self.secrets
            ),
        )
        files = [s.file for s in self.secrets if s.file is not None]
        if len(set(files)) != len(files):
            raise ValidationError("/secrets", f"task {self.task_id}: two secrets share a file")
        object.__setattr__(
            self,
            "persistent_volumes",
            tuple(
                v if isinstance(v, PersistentVolume) else PersistentVolume.from_json(v)
                for v in self.persistent_volumes
            ),
        )
        for v in self.persistent_volumes:
            if not v.id:
                raise ValidationError(
                    "/persistent_volumes/id", f"task {self.task_id}: a volume without an id"
                )
        where = f"task {self.task_id}"
        object.__setattr__(self, "args", tuple(self.args))
        object.__setattr__(
            self,
            "fetch",
            tuple(f if isinstance(f, FetchUri) else FetchUri.from_json(f) for f in self.fetch),
        )
        if isinstance(self.container, Mapping):
            object.__setattr__(self, "container", ContainerSpec.from_json(self.container))
        object.__setattr__(self, "ports", tuple(self.ports))
        object.__setattr__(self, "port_names", tuple(self.port_names))
        object.__setattr__(self, "env", dict(self.env))
        object.__setattr__(self, "labels", dict(self.labels))
        object.__setattr__(self, "gpu_devices", tuple(self.gpu_devices))
        object.__setattr__(
            self,
            "containers",
            tuple(
                c if isinstance(c, PodContainer) else PodContainer.from_json(c)
                for c in self.containers
            ),
        )
        object.__setattr__(
            self,
            "health_checks",
            tuple(
                c if isinstance(c, HealthCheckSpec) else HealthCheckSpec.from_json(c)
                for c in self.health_checks
            ),
        )
        object.__setattr__(
            self,
            "readiness_checks",
            tuple(
                c if isinstance(c, ReadinessCheckSpec) else ReadinessCheckSpec.from_json(c)
                for c in self.readiness_checks
            ),
        )
        image = self.container is not None and self.container.image is not None
        if self.containers:
            if self.cmd is not None or self.args or self.container is not None:
                raise ValidationError(
                    "/cmd", f"{where}: a pod instance has no cmd, args or container of its own"
                )
            names = [c.name for c in self.containers]
            if len(set(names)) != len(names):
                raise ValidationError("/containers", f"{where}: container names repeat")
        else:
            if self.cmd is not None and self.args:
                raise ValidationError("/cmd", f"{where}: set at most one of cmd and args")
            if self.cmd is None and not self.args and not image:
                raise ValidationError("/cmd", f"{where}: set cmd or args (or run an image)")
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
        for name, limit in (("cpu_milli", 1), ("mem_mib", 1), ("disk_mib", 0), ("gpu_milli", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < limit:
                raise ValidationError(f"/{name}", f"{where}: {name} must be an integer >= {limit}")
        for i, port in enumerate(self.ports):
            if not isinstance(port, int) or not 0 < port <= 65535:
                raise ValidationError(f"/ports/{i}", f"{where}: host port {port!r} not in 1-65535")
        for i, device in enumerate(self.gpu_devices):
            if not isinstance(device, int) or isinstance(device, bool) or device < 0:
                raise ValidationError(f"/gpu_devices/{i}", f"{where}: {device!r} is no device")
        if len(set(self.gpu_devices)) != len(self.gpu_devices):
            raise ValidationError("/gpu_devices", f"{where}: a GPU device is given twice")
        if len(self.port_names) > len(self.ports):
            raise ValidationError(
                "/portNames", f"{where}: {len(self.port_names)} names for {len(self.ports)} ports"
            )
        if not self.kill_grace_seconds >= 0:
            raise ValidationError(
                "/taskKillGracePeriodSeconds", f"{where}: the kill grace period must be >= 0"
            )
        mappings = self.container.port_mappings if self.container is not None else ()
        bridge = self.container is not None and self.container.network != "host"
        if bridge and len(mappings) != len(self.ports):
            raise ValidationError(
                "/container/portMappings",
                f"{where}: {len(mappings)} port mappings for {len(self.ports)} host ports",
            )
        if self.user is not None and (
            not isinstance(self.user, str) or not self.user or "\x00" in self.user
        ):
            raise ValidationError("/user", f"{where}: user must be a non-empty name")

    def __hash__(self) -> int:
        return hash(self.task_id)

    @property
    def resources(self) -> Resources:
        return Resources(self.cpu_milli, self.mem_mib, self.disk_mib, self.gpu_milli)

    @property
    def argv(self) -> tuple[str, ...]:
        """The program and arguments to exec (a pod's: its supervisor)."""
        if self.containers:
            return pod_argv(self.containers, self.kill_grace_seconds)
        if self.cmd is not None:
            return ("/bin/sh", "-c", self.cmd)
        return self.args

    def to_json(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "app_id": self.app_id,
            "app_version": self.app_version,
            "cmd": self.cmd,
            "args": list(self.args),
            "env": dict(self.env),
            "cpu_milli": self.cpu_milli,
            "mem_mib": self.mem_mib,
            "disk_mib": self.disk_mib,
            "gpu_milli": self.gpu_milli,
            "ports": list(self.ports),
            "port_names": list(self.port_names),
            "kill_grace_seconds": self.kill_grace_seconds,
            "labels": dict(self.labels),
            "health_checks": [c.to_json() for c in self.health_checks],
            "readiness_checks": [c.to_json() for c in self.readiness_checks],
            "gpu_devices": list(self.gpu_devices),
            "user": self.user,
            "fetch": [f.to_json() for f in self.fetch],
            "container": None if self.container is None else self.container.to_json(),
            "persistent_volumes": [v.to_json() for v in self.persistent_volumes],
            "containers": [c.to_json() for c in self.containers],
            **({"secrets": [s.to_json() for s in self.secrets]} if self.secrets else {}),
        }

    @classmethod
    def from_json(cls, raw: object, path: str = "") -> TaskSpec:
        doc = _obj(renamed(_obj(raw, path), RESOURCE_KEYS), path, _fields(cls))
        cmd = doc.get("cmd")
        return cls(
            task_id=check_task_id(doc.get("task_id"), f"{path}/task_id"),
            app_id=_str(doc.get("app_id", ""), f"{path}/app_id", 1000),
            app_version=_str(doc.get("app_version", ""), f"{path}/app_version", 100),
            cmd=None if cmd is None else _str(cmd, f"{path}/cmd"),
            args=tuple(
                _str(a, f"{path}/args/{i}") for i, a in enumerate(_list(doc.get("args", []), path))
            ),
            env=_str_map(doc.get("env", {}), f"{path}/env"),
            cpu_milli=_int(doc.get("cpu_milli", 100), f"{path}/cpu_milli", 1, 10**12),
            mem_mib=_int(doc.get("mem_mib", 32), f"{path}/mem_mib", 1, 10**12),
            disk_mib=_int(doc.get("disk_mib", 0), f"{path}/disk_mib", 0, 10**12),
            gpu_milli=_int(doc.get("gpu_milli", 0), f"{path}/gpu_milli", 0, 10**9),
            ports=tuple(
                _int(p, f"{path}/ports/{i}", 1, 65535)
                for i, p in enumerate(_list(doc.get("ports", []), f"{path}/ports"))
            ),
            port_names=tuple(
                _str(n, f"{path}/port_names/{i}", 255)
                for i, n in enumerate(_list(doc.get("port_names", []), f"{path}/port_names"))
            ),
            kill_grace_seconds=_float(
                doc.get("kill_grace_seconds", DEFAULT_KILL_GRACE_SECONDS),
                f"{path}/kill_grace_seconds",
                0.0,
                1e9,
            ),
            labels=_str_map(doc.get("labels", {}), f"{path}/labels"),
            health_checks=tuple(
                HealthCheckSpec.from_json(c, f"{path}/health_checks/{i}")
                for i, c in enumerate(_list(doc.get("health_checks", []), path, 64))
            ),
            readiness_checks=tuple(
                ReadinessCheckSpec.from_json(c, f"{path}/readiness_checks/{i}")
                for i, c in enumerate(_list(doc.get("readiness_checks", []), path, 64))
            ),
            gpu_devices=tuple(
                _int(d, f"{path}/gpu_devices/{i}", 0, 1023)
                for i, d in enumerate(_list(doc.get("gpu_devices", []), path, 1024))
            ),
            user=None if doc.get("user") is None else _str(doc["user"], f"{path}/user", 255),
            fetch=tuple(
                FetchUri.from_json(f, f"{path}/fetch/{i}")
                for i, f in enumerate(_list(doc.get("fetch", []), f"{path}/fetch", 1000))
            ),
            container=(
                None
                if doc.get("container") is None
                else ContainerSpec.from_json(doc["container"], f"{path}/container")
            ),
            persistent_volumes=tuple(
                PersistentVolume.from_json(v, f"{path}/persistent_volumes/{i}")
                for i, v in enumerate(
                    _list(doc.get("persistent_volumes", []), f"{path}/persistent_volumes", 100)
                )
            ),
            containers=tuple(
                PodContainer.from_json(c, f"{path}/containers/{i}")
                for i, c in enumerate(_list(doc.get("containers", []), f"{path}/containers", 64))
            ),
            secrets=tuple(
                TaskSecret.from_json(s, f"{path}/secrets/{i}")
                for i, s in enumerate(_list(doc.get("secrets", []), f"{path}/secrets", 256))
            ),
        )


@dataclass(frozen=True, slots=True)
class DesiredSet:
    """The complete set of tasks the master wants on one node now, at ``revision``, and
    the ids of the persistent volumes it still reserves there (the agent destroys the
    others; None: the master does not say, so nothing is destroyed)."""

    revision: int
    tasks: tuple[TaskSpec, ...]
    volumes: tuple[str, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "revision": self.revision,
            "tasks": [t.to_json() for t in self.tasks],
        }
        if self.volumes is not None:
            doc["volumes"] = list(self.volumes)
        return doc

    @classmethod
    def from_json(cls, raw: object) -> DesiredSet:
        doc = _obj(raw, "", frozenset({"revision", "tasks", "volumes"}))
        volumes = doc.get("volumes")
        return cls(
            revision=_int(doc.get("revision"), "/revision", 0, 2**63),
            tasks=tuple(
                TaskSpec.from_json(t, f"/tasks/{i}")
                for i, t in enumerate(_list(doc.get("tasks", []), "/tasks"))
            ),
            volumes=None
            if volumes is None
            else tuple(
                _str(v, f"/volumes/{i}", 255)
                for i, v in enumerate(_list(volumes, "/volumes", 1_000_000))
            ),
        )
