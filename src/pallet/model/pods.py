"""The containers of a pod instance as the agent runs them, and the supervisor that runs them
together; pure data.

A Marathon pod instance is one task to Pallet: one placement (the sum of its containers'
resources and the executor's, on one node), one cgroup holding every container (as Mesos
accounts nested containers to their executor's container, or Marathon's
``legacySharedCgroups``), one network (the host's: endpoints get host ports). Its main
process is a small bash supervisor, the pod's executor, which starts each container as a
process of its own and watches them: when one ends, the others get SIGTERM, then SIGKILL
after the grace period, and the supervisor exits with the status of the one that ended
(a line on stderr names it), so the instance ends as one unit. A kill of the instance
reaches every container through the task's process group and cgroup; the supervisor
then waits for them all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pallet.model.errors import ValidationError

__all__ = ["CONTAINER_NAME", "PodContainer", "endpoint_env_name", "pod_argv"]

CONTAINER_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
"""Marathon's ``strings.Name`` for containers and endpoints (a DNS label)."""

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# The pod's executor. Arguments: the kill grace in seconds, the container count, then per
# container its name, its word count and its words (``env K=V ... program args``).
# ``wait -n -p`` (bash 5.1) says which child ended; a trapped SIGTERM interrupts it.
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
  "${@:1:count}" &
  pids+=("$!")
  names+=("$name")
  shift "$count"
done
ended="" rc=143
while [ -z "$ended" ] && [ "$stopping" = 0 ]; do
  done_pid=""
  wait -n -p done_pid
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
( sleep "$grace"; kill -KILL "${pids[@]}" 2>/dev/null ) &
timer=$!
for p in "${pids[@]}"; do
  while kill -0 "$p" 2>/dev/null; do wait "$p"; done
done
kill "$timer" 2>/dev/null
exit "$rc"
"""


@dataclass(frozen=True, slots=True)
class PodContainer:
    """One container of a pod: Marathon's ``name``, ``exec.command`` (``shell`` or
    ``argv``), its own ``environment`` over the pod's, and its ``resources`` in Pallet's
    integers (they add up to the instance's; the pod's cgroup enforces the sum)."""

    name: str
    shell: str | None = None
    argv: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cpus: int = 1000
    mem: int = 128
    disk: int = 0
    endpoints: tuple[str, ...] = ()
    """The names of the pod's host ports this container declared (for its status)."""
    health_checked: bool = False
    """It has a health check: the instance's checks are its containers', in order."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "argv", tuple(self.argv))
        object.__setattr__(self, "endpoints", tuple(self.endpoints))
        object.__setattr__(self, "env", dict(self.env))
        if not isinstance(self.name, str) or not CONTAINER_NAME.match(self.name):
            raise ValidationError("/name", f"container name {self.name!r} is not a DNS label")
        if (self.shell is None) == (not self.argv):
            raise ValidationError(
                "/exec/command", f"container {self.name}: set exactly one of shell and argv"
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
        for key, low in (("cpus", 1), ("mem", 1), ("disk", 0)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
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
            "cpus": self.cpus,
            "mem": self.mem,
            "disk": self.disk,
            "endpoints": list(self.endpoints),
            "health_checked": self.health_checked,
        }

    @classmethod
    def from_json(cls, raw: object, path: str = "") -> PodContainer:
        if not isinstance(raw, Mapping):
            raise ValidationError(path or "/", "must be a JSON object")
        extra = sorted(set(raw) - set(cls.__dataclass_fields__))
        if extra:
            raise ValidationError(f"{path}/{extra[0]}", "is not a field of a container")
        doc = dict(raw)
        doc["argv"] = tuple(doc.get("argv") or ())
        doc["env"] = dict(doc.get("env") or {})
        doc["endpoints"] = tuple(doc.get("endpoints") or ())
        try:
            return cls(**doc)
        except ValidationError as e:
            raise ValidationError(f"{path}{e.field}", e.message) from None
        except TypeError as e:
            raise ValidationError(path or "/", str(e)) from None


def endpoint_env_name(endpoint: str) -> str:
    """``ENDPOINT_<NAME>``, as Marathon names a pod endpoint's host port for its containers."""
    return "ENDPOINT_" + re.sub(r"[^A-Z0-9_]", "_", endpoint.upper())


def pod_argv(containers: Sequence[PodContainer], kill_grace_seconds: float) -> tuple[str, ...]:
    """The pod's main process: the supervisor with every container's words."""
    args: list[str] = [f"{max(0.0, kill_grace_seconds):g}", str(len(containers))]
    for c in containers:
        words = c.words
        args += [c.name, str(len(words)), *words]
    return ("/bin/bash", "-c", _SUPERVISOR, "pallet-pod", *args)
