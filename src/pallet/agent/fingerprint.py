"""What this machine offers, as a ``pallet.model.Node``: measured with psutil, then
overridden by ``--resources`` and ``--attributes`` in the Mesos agent's syntax. The
parsers are pure; ``measure`` and ``fingerprint`` read the machine.

    --resources "cpus:8;mem:16384;disk:10000;gpus:0;ports:[31000-32000]"
    --attributes "rack:r1;zone:a"

Measured defaults follow the Mesos agent: all CPUs; memory less 1 GiB for the system
when there is more than 1 GiB; the sandbox root's filesystem less 5 GiB when it holds
more than 10 GiB; ports 31000-32000; the NVIDIA (else AMD) GPUs ``agent.gpus.detect_gpus`` found
(none without a driver), with the first one's model as the node's GPU model and the
attributes ``gpu.model`` and ``gpu.memory`` (MiB) for constraints. ``gpus:N`` in
``--resources`` offers N devices whatever was found.
"""

from __future__ import annotations

import math
import re
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import psutil

from pallet.agent.gpus import Gpu
from pallet.model import Node, PortRange, ValidationError, parse_port_ranges

__all__ = [
    "DEFAULT_PORTS",
    "Offered",
    "fingerprint",
    "measure",
    "parse_attributes",
    "parse_resources",
]

DEFAULT_PORTS = "[31000-32000]"
_NAME = re.compile(r"^[A-Za-z0-9_.\-/]+$")
_SCALAR = re.compile(r"^\d+(\.\d+)?$")
_RESOURCES = ("cpus", "mem", "disk", "gpus", "ports")


@dataclass(frozen=True, slots=True)
class Offered:
    """The resources a node offers: millicpus, MiB, MiB, whole GPUs, host port ranges."""

    cpu_milli: int
    mem_mib: int
    disk_mib: int
    gpus: int = 0
    ports: tuple[PortRange, ...] = ()


def _items(text: str, flag: str) -> list[tuple[str, str, str]]:
    """``name:value`` items separated by ``;`` as (item, name, value)."""
    out = []
    for item in (part.strip() for part in text.split(";")):
        if not item:
            continue
        name, sep, value = item.partition(":")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise ValidationError(flag, f"cannot read {item!r}; write name:value")
        out.append((item, name, value))
    return out


def _scalar(item: str, value: str, flag: str) -> float:
    if not _SCALAR.match(value):
        raise ValidationError(flag, f"{item!r}: {value!r} is not a non-negative number")
    number = float(value)
    if math.isinf(number):
        raise ValidationError(flag, f"{item!r}: the value must be finite")
    return number


def parse_resources(text: str, flag: str = "--resources") -> dict[str, int | tuple[PortRange, ...]]:
    """``cpus:8;mem:16384;disk:10000;gpus:0;ports:[31000-32000]`` as
    ``{"cpus": 8000, "mem": 16384, "disk": 10000, "gpus": 0, "ports": (...)}``
    (cpus in millicpus). Errors name the item at fault."""
    parsed: dict[str, int | tuple[PortRange, ...]] = {}
    for item, name, value in _items(text, flag):
        if "(" in name:
            raise ValidationError(flag, f"{item!r}: roles on agent resources are not supported")
        if name not in _RESOURCES:
            raise ValidationError(
                flag, f"{item!r}: unknown resource {name!r}; use one of {', '.join(_RESOURCES)}"
            )
        if name in parsed:
            raise ValidationError(flag, f"{item!r}: {name} is given twice")
        if name == "ports":
            parsed[name] = parse_port_ranges(value, field=f"{flag} {item!r}")
            continue
        number = _scalar(item, value, flag)
        if name == "cpus":
            parsed[name] = round(number * 1000)
        elif name == "gpus":
            if number != int(number):
                raise ValidationError(flag, f"{item!r}: gpus counts whole devices")
            parsed[name] = int(number)
        else:
            parsed[name] = int(number)  # MiB; a fraction of one is not offered
    return parsed


def parse_attributes(text: str, flag: str = "--attributes") -> dict[str, str]:
    """``rack:r1;zone:a`` as ``{"rack": "r1", "zone": "a"}``."""
    attributes: dict[str, str] = {}
    for item, name, value in _items(text, flag):
        if not _NAME.match(name):
            raise ValidationError(flag, f"{item!r}: attribute name {name!r} has odd characters")
        if name in attributes:
            raise ValidationError(flag, f"{item!r}: attribute {name} is given twice")
        attributes[name] = value
    return attributes


def measure(sandbox_root: str | Path) -> Offered:
    """What the machine has, less what the Mesos agent leaves to the system."""
    mib = 1024 * 1024
    cpus = (psutil.cpu_count(logical=True) or 1) * 1000
    mem = psutil.virtual_memory().total // mib
    if mem > 1024:
        mem -= 1024
    disk = psutil.disk_usage(str(sandbox_root)).total // mib
    if disk > 10 * 1024:
        disk -= 5 * 1024
    return Offered(cpus, mem, disk, 0, parse_port_ranges(DEFAULT_PORTS))


def fingerprint(
    node_id: str,
    *,
    sandbox_root: str | Path,
    hostname: str | None = None,
    resources: str | None = None,
    attributes: str | None = None,
    gpu_model: str = "",
    measured: Offered | None = None,
    role: str = "*",
    gpus: Sequence[Gpu] = (),
) -> Node:
    """This machine as a Node: ``measured`` (default: ``measure(sandbox_root)``) and the
    detected ``gpus``, with the ``--resources`` items replacing what they name, plus the
    ``--attributes`` (which win over the GPU attributes)."""
    offered = measured if measured is not None else measure(sandbox_root)
    offered = replace(offered, gpus=len(gpus)) if gpus else offered
    overrides: Mapping[str, object] = parse_resources(resources) if resources else {}
    fields = {"cpus": "cpu_milli", "mem": "mem_mib", "disk": "disk_mib"}
    offered = replace(offered, **{fields.get(k, k): v for k, v in overrides.items()})  # type: ignore[arg-type]
    found: dict[str, str] = {}
    if gpus and offered.gpus:
        gpu_model = gpu_model or gpus[0].name
        found = {"gpu.model": gpus[0].name, "gpu.memory": str(gpus[0].memory_mib)}
    given = parse_attributes(attributes) if attributes else {}
    return Node.build(
        node_id,
        cpu_milli=offered.cpu_milli,
        mem_mib=offered.mem_mib,
        disk_mib=offered.disk_mib,
        gpus=offered.gpus,
        gpu_model=gpu_model,
        hostname=hostname or socket.gethostname(),
        ports=offered.ports,
        attributes={**found, **given},
        role=role,
    )
