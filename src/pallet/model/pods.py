"""The containers of a pod instance as the agent runs them, and the supervisor that runs them
together; pure data.

A Marathon pod instance is one task to Pallet: one placement (the sum of its containers'
resources and the executor's, on one node), one cgroup holding every container (as Mesos
accounts nested containers to their executor's container, or Marathon's
``legacySharedCgroups``), one network (the host's: endpoints get host ports), one sandbox.
Its main process is a small bash supervisor, the pod's executor, which starts each
container as a process of its own (a container with an image: its ``runc run``, which the
agent prepared) and watches them: when one ends, the others get SIGTERM, then SIGKILL
after the grace period, and the supervisor exits with the status of the one that ended
(a line on stderr names it), so the instance ends as one unit. A kill of the instance
reaches every container through the task's process group and cgroup; the supervisor
then waits for them all. Each container writes to its own ``containers/<name>/stdout``
and ``stderr`` in the sandbox (``container_log``); the sandbox's own ``stdout`` and
``stderr`` are the executor's.

A pod's volumes are mounted in its containers by name (``PodMount``): an ephemeral one
is ``volumes/<name>`` in the instance's sandbox (where Marathon's executor keeps it), so
every container of the instance that mounts it shares its files; a host one is a
directory of the node (absolute) or of the sandbox (relative).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pallet.model.errors import ValidationError
from pallet.model.images import parse_image
from pallet.model.wire import RESOURCE_KEYS, renamed

__all__ = [
    "CONTAINER_NAME",
    "PodContainer",
    "PodMount",
    "check_container_name",
    "container_log",
    "endpoint_env_name",
    "pod_argv",
    "volume_source",
]

CONTAINER_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
"""Marathon's ``strings.Name`` for containers and endpoints (a DNS label)."""

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# The pod's executor. Arguments: the kill grace in seconds, the container count, then per
# container its name, its word count and its words (``env K=V ... program args``).
# ``wait -n -p`` (bash 5.1) says which child ended; a trapped SIGTERM interrupts it. The
# grace timer is forked with SIGTERM ignored (inherited, so from its first instruction):
# the agent's kill also TERMs every process of the task's cgroup, the timer too when it
# is already forked, and a container that ignores SIGTERM (a runc container's PID 1 does
# by default) would then be waited for forever.
_SUPERVISOR = r"""
set -u
stopping=0
trap 'stopping=1' TERM INT
grace=$1 n=$2
shift 2
names=() pids=()
for ((i = 0; i < n; i++)); do
  name=$1 count=$2
  shift 2
  mkdir -p "containers/$name"
  "${@:1:count}" >>"containers/$name/stdout" 2>>"containers/$name/stderr" &
  pids+=("$!")
  names+=("$name")
  shift "$count"
done
ended="" rc=143
while [ -z "$ended" ] && [ "$stopping" = 0 ]; do
  done_pid=""
  wait -n -p done_pid 2>/dev/null
  status=$?
  if [ -n "${done_pid:-}" ]; then ended=$done_pid rc=$status; fi
  if [ "$status" = 127 ] && [ -z "${done_pid:-}" ]; then break; fi
done
if [ -n "$ended" ]; then
  for ((i = 0; i < n; i++)); do
    if [ "${pids[i]}" = "$ended" ]; then who=${names[i]}; fi
  done
  if [ "$rc" -gt 128 ]; then
    echo "pod: container ${who} was killed by signal $((rc - 128)); stopping the others" >&2
  else
    echo "pod: container ${who} exited with status ${rc}; stopping the others" >&2
  fi
  kill -TERM "${pids[@]}" 2>/dev/null
fi
trap '' TERM
( sleep "$grace"; kill -KILL "${pids[@]}" 2>/dev/null ) &
timer=$!
trap 'stopping=1' TERM
for p in "${pids[@]}"; do
  while kill -0 "$p" 2>/dev/null; do wait "$p" 2>/dev/null; done
done
kill -KILL "$timer" 2>/dev/null
exit "$rc"
"""


@dataclass(frozen=True, slots=True)
class PodMount:
    """One of a container's ``volumeMounts`` with the pod volume it names: ``host`` None
    for an ephemeral volume, else the volume's ``host`` path."""

    name: str
    path: str
    read_only: bool = False
    host: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not CONTAINER_NAME.match(self.name):
            raise ValidationError("/volumeMounts/name", f"{self.name!r} is not a volume name")
        if not _clean_path(self.path, absolute_ok=True):
            raise ValidationError("/volumeMounts/mountPath", f"{self.path!r} is not a clean path")
        if self.host is not None and not _clean_path(self.host, absolute_ok=True):
            raise ValidationError("/volumeMounts/host", f"{self.host!r} is not a clean path")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "read_only": self.read_only,
            "host": self.host,
        }


def _clean_path(path: object, *, absolute_ok: bool) -> bool:
    """A path without ``..``, NUL or empty segments (``/`` alone is not one)."""
    if not isinstance(path, str) or not path or "\x00" in path:
        return False
    if path.startswith("/") and not absolute_ok:
        return False
    parts = path.strip("/").split("/")
    return path != "/" and all(p not in ("", ".", "..") for p in parts)


def volume_source(mount: PodMount, sandbox: str) -> str:
    """Where ``mount``'s volume is on the node, for an instance whose sandbox is
    ``sandbox``."""
    if mount.host is None:
        return f"{sandbox}/volumes/{mount.name}"
    return mount.host if mount.host.startswith("/") else f"{sandbox}/{mount.host}"


def check_container_name(name: object, field: str = "/container") -> str:
    """``name`` if it can be a pod container's (a DNS label), else ValidationError."""
    if not isinstance(name, str) or not CONTAINER_NAME.match(name):
        raise ValidationError(field, f"{name!r} is not a container name")
    return name


def container_log(name: str, stream: str) -> str:
    """A pod container's log file, relative to the instance's sandbox."""
    return f"containers/{name}/{stream}"


@dataclass(frozen=True, slots=True)
class PodContainer:
    """One container of a pod: Marathon's ``name``, ``exec.command`` (``shell`` or
    ``argv``), its own ``environment`` over the pod's, and its ``resources`` in Pallet's
    integers (they add up to the instance's; the pod's cgroup enforces the sum)."""

    name: str
    shell: str | None = None
    argv: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cpu_milli: int = 1000
    mem_mib: int = 128
    disk_mib: int = 0
    endpoints: tuple[str, ...] = ()
    """The names of the pod's host ports this container declared (for its status)."""
    health_checked: bool = False
    """It has a health check: the instance's checks are its containers', in order."""
    image: str | None = None
    """Marathon's ``image.id`` (kind DOCKER): the container runs in its own root
    filesystem from this image, under runc; None: a process in the node's filesystem."""
    force_pull: bool = False
    override_entrypoint: bool = False
    """Marathon's ``exec.overrideEntrypoint``: ``argv`` replaces the image's entrypoint
    instead of being its arguments."""
    mounts: tuple[PodMount, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "argv", tuple(self.argv))
        object.__setattr__(self, "mounts", tuple(self.mounts))
        object.__setattr__(self, "endpoints", tuple(self.endpoints))
        object.__setattr__(self, "env", dict(self.env))
        if not isinstance(self.name, str) or not CONTAINER_NAME.match(self.name):
            raise ValidationError("/name", f"container name {self.name!r} is not a DNS label")
        if self.shell is not None and self.argv:
            raise ValidationError(
                "/exec/command", f"container {self.name}: set exactly one of shell and argv"
            )
        if self.image is None and self.shell is None and not self.argv:
            raise ValidationError(
                "/exec/command", f"container {self.name}: without an image, set shell or argv"
            )
        if self.image is not None:
            if not isinstance(self.image, str):
                raise ValidationError("/image", "must be an image reference")
            parse_image(self.image, "/image/id")
        for mount in self.mounts:
            if not isinstance(mount, PodMount):
                raise ValidationError("/volumeMounts", "must be volume mounts")
            if self.image is None and (mount.path.startswith("/") or mount.read_only):
                raise ValidationError(
                    "/volumeMounts/mountPath",
                    "a container without an image mounts a volume only read-write, at a "
                    "path relative to its sandbox",
                )
        if self.shell is not None and (not self.shell.strip() or "\x00" in self.shell):
            raise ValidationError("/exec/command/shell", "must be a non-empty shell command")
        for i, word in enumerate(self.argv):
            if not isinstance(word, str) or "\x00" in word:
                raise ValidationError(f"/exec/command/argv/{i}", "must be a string without NUL")
        if self.argv and (not self.argv[0] or "=" in self.argv[0]):
            raise ValidationError("/exec/command/argv/0", "the program must be named, without '='")
        for name, value in self.env.items():
            if not isinstance(name, str) or not _ENV_NAME.match(name):
                raise ValidationError("/environment", f"{name!r} is not an environment name")
            if not isinstance(value, str) or "\x00" in value:
                raise ValidationError(f"/environment/{name}", "must be a string without NUL")
        # (named on the error as in the Marathon pod the container came from)
        for key, amount, low in (
            ("cpus", self.cpu_milli, 1),
            ("mem", self.mem_mib, 1),
            ("disk", self.disk_mib, 0),
        ):
            if isinstance(amount, bool) or not isinstance(amount, int) or amount < low:
                raise ValidationError(f"/resources/{key}", f"must be an integer >= {low}")

    @property
    def words(self) -> tuple[str, ...]:
        """What the supervisor execs for this container: ``env``, its variables, then
        ``/bin/sh -c shell`` or its ``argv``."""
        command = ("/bin/sh", "-c", self.shell) if self.shell is not None else self.argv
        return ("env", *(f"{k}={v}" for k, v in sorted(self.env.items())), *command)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "shell": self.shell,
            "argv": list(self.argv),
            "env": dict(self.env),
            "cpu_milli": self.cpu_milli,
            "mem_mib": self.mem_mib,
            "disk_mib": self.disk_mib,
            "endpoints": list(self.endpoints),
            "health_checked": self.health_checked,
            "image": self.image,
            "force_pull": self.force_pull,
            "override_entrypoint": self.override_entrypoint,
            "mounts": [m.to_json() for m in self.mounts],
        }

    @classmethod
    def from_json(cls, raw: object, path: str = "") -> PodContainer:
        if not isinstance(raw, Mapping):
            raise ValidationError(path or "/", "must be a JSON object")
        doc = renamed(raw, RESOURCE_KEYS)
        extra = sorted(set(doc) - set(cls.__dataclass_fields__))
        if extra:
            raise ValidationError(f"{path}/{extra[0]}", "is not a field of a container")
        doc["argv"] = tuple(doc.get("argv") or ())
        doc["env"] = dict(doc.get("env") or {})
        doc["endpoints"] = tuple(doc.get("endpoints") or ())
        try:
            mounts = doc.get("mounts") or ()
            if not isinstance(mounts, list | tuple):
                raise ValidationError("/mounts", "must be a list")
            doc["mounts"] = tuple(
                m if isinstance(m, PodMount) else PodMount(**m) if isinstance(m, Mapping) else m
                for m in mounts
            )
            return cls(**doc)
        except ValidationError as e:
            raise ValidationError(f"{path}{e.field}", e.message) from None
        except TypeError as e:
            raise ValidationError(path or "/", str(e)) from None


def endpoint_env_name(endpoint: str) -> str:
    """``ENDPOINT_<NAME>``, as Marathon names a pod endpoint's host port for its containers."""
    return "ENDPOINT_" + re.sub(r"[^A-Z0-9_]", "_", endpoint.upper())


def pod_argv(
    containers: Sequence[PodContainer],
    kill_grace_seconds: float,
    words: Mapping[str, Sequence[str]] | None = None,
) -> tuple[str, ...]:
    """The pod's main process: the supervisor with every container's words (``words``:
    what to run instead for some containers, by name: their ``runc run``)."""
    args: list[str] = [f"{max(0.0, kill_grace_seconds):g}", str(len(containers))]
    for c in containers:
        given = (words or {}).get(c.name)
        run = tuple(given) if given is not None else c.words
        args += [c.name, str(len(run)), *run]
    return ("/bin/bash", "-c", _SUPERVISOR, "pallet-pod", *args)
