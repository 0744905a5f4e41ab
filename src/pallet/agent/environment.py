"""The environment a task runs with: Marathon's and Mesos' variables, the app's own; pure.

Precedence, lowest first (a later layer overrides an earlier one):

1. ``base``: what the agent passes through from its own environment (``PATH``, locale).
2. Marathon's task context, built as Marathon 1.x ``TaskBuilder`` does: ``MESOS_TASK_ID``,
   ``MARATHON_APP_ID``, ``MARATHON_APP_VERSION``, ``MARATHON_APP_RESOURCE_*``,
   ``MARATHON_APP_LABELS`` and ``MARATHON_APP_LABEL_<NAME>``, then the ports (``PORT0``..,
   ``PORT``, ``PORTS``, ``PORT_<NAME>``) and ``HOST``.
3. The app's ``env``: as in Marathon, it may override any variable of layer 2; its
   variables taken from secrets (``with_secrets``, added at launch, never in the spec).
4. What Pallet owns and a task cannot fake: ``PALLET_TASK_ID``, ``PALLET_APP_ID``,
   ``PALLET_NODE_ID`` and ``MESOS_SANDBOX`` (set by the agent, as the Mesos agent does).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pallet.model import TaskSpec

__all__ = [
    "OWNED",
    "PASSTHROUGH",
    "label_variables",
    "port_variables",
    "task_environment",
    "with_secrets",
]

PASSTHROUGH = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ")
"""Variables of the agent's environment a task inherits."""

OWNED = ("PALLET_TASK_ID", "PALLET_APP_ID", "PALLET_NODE_ID", "MESOS_SANDBOX")
"""Variables of layer 4: set by the agent, over anything the app asks for."""

_MAX_VARIABLE = 512  # Marathon drops labels whose variable would be longer
_LABEL_PREFIX = "MARATHON_APP_LABEL_"
_NOT_NAME = re.compile(r"[^a-zA-Z0-9_]+")


def _escape(name: str) -> str:
    return _NOT_NAME.sub("_", name).upper()


def label_variables(labels: Mapping[str, str]) -> dict[str, str]:
    """``MARATHON_APP_LABELS`` (the escaped names, space separated) and one
    ``MARATHON_APP_LABEL_<NAME>`` per label, skipping labels too long for Marathon."""
    kept = {
        _escape(k): v
        for k, v in labels.items()
        if len(k) < _MAX_VARIABLE - len(_LABEL_PREFIX) and len(v) < _MAX_VARIABLE
    }
    env = {"MARATHON_APP_LABELS": " ".join(kept)}
    env.update({f"{_LABEL_PREFIX}{k}": v for k, v in kept.items()})
    return env


def port_variables(ports: tuple[int, ...], names: tuple[str, ...] = ()) -> dict[str, str]:
    """``PORT0``..``PORTn``, ``PORT`` (= ``PORT0``), ``PORTS`` and ``PORT_<NAME>``."""
    if not ports:
        return {}
    env = {f"PORT{i}": str(p) for i, p in enumerate(ports)}
    env.update({f"PORT_{_escape(n)}": str(p) for n, p in zip(names, ports, strict=False) if n})
    env["PORT"] = str(ports[0])
    env["PORTS"] = ",".join(map(str, ports))
    return env


def task_environment(
    spec: TaskSpec,
    *,
    node_id: str,
    host: str,
    sandbox: str,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The complete environment of ``spec``'s process (see the module docstring)."""
    env = dict(base or {})
    env.update(
        {
            "MESOS_TASK_ID": spec.task_id,
            "MARATHON_APP_ID": spec.app_id,
            "MARATHON_APP_VERSION": spec.app_version,
            # Marathon prints its doubles with Scala's toString ("0.5", "64.0").
            "MARATHON_APP_RESOURCE_CPUS": str(spec.cpu_milli / 1000),
            "MARATHON_APP_RESOURCE_MEM": str(float(spec.mem_mib)),
            "MARATHON_APP_RESOURCE_DISK": str(float(spec.disk_mib)),
            "MARATHON_APP_RESOURCE_GPUS": f"{spec.gpu_milli / 1000:g}",
        }
    )
    env.update(label_variables(spec.labels))
    env.update(port_variables(spec.ports, spec.port_names))
    env["HOST"] = host
    env.update(spec.env)
    env.update(
        {
            "PALLET_TASK_ID": spec.task_id,
            "PALLET_APP_ID": spec.app_id,
            "PALLET_NODE_ID": node_id,
            "MESOS_SANDBOX": sandbox,
        }
    )
    return env


def with_secrets(env: Mapping[str, str], secrets: Mapping[str, str]) -> dict[str, str]:
    """``env`` with the task's secret variables at layer 3 (under Pallet's own)."""
    out = dict(env)
    out.update((k, v) for k, v in secrets.items() if k not in OWNED)
    return out
