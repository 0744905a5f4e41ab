"""A node (one machine that runs tasks): its capacity, GPUs, ports and attributes; pure."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pallet.model.errors import ValidationError
from pallet.model.net import network_name_problem
from pallet.model.ports import PortRange, parse_port_ranges
from pallet.model.resources import Resources

__all__ = [
    "GPU_MILLI",
    "Node",
    "NodeDisk",
    "NodeState",
    "field_value",
    "node_from_json",
    "node_to_json",
]

GPU_MILLI = 1000
"""Milli-GPUs in one whole GPU device."""


class NodeState(enum.StrEnum):
    """Where a node stands in its life; only ACTIVE nodes receive new tasks. DOWN: its
    machine is in maintenance (``/machine/down``); it runs nothing until ``/machine/up``."""

    ACTIVE = "ACTIVE"
    DRAINING = "DRAINING"
    UNREACHABLE = "UNREACHABLE"
    GONE = "GONE"
    DOWN = "DOWN"


@dataclass(frozen=True, slots=True)
class NodeDisk:
    """A disk the operator gave an agent besides its own (Mesos' disk resources with a
    ``PATH`` or ``MOUNT`` source): ``size`` MiB at ``root``; persistent volumes of type
    ``path`` share it, one of type ``mount`` takes it whole."""

    type: str
    root: str
    size: int

    def __post_init__(self) -> None:
        if self.type not in ("path", "mount"):
            raise ValidationError("/disks/type", f"disk {self.root}: must be path or mount")
        if not isinstance(self.root, str) or not self.root.startswith("/") or "\x00" in self.root:
            raise ValidationError("/disks/root", f"disk {self.root!r}: must be an absolute path")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1:
            raise ValidationError("/disks/size", f"disk {self.root}: size must be >= 1 MiB")

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "root": self.root, "size": self.size}


@dataclass(frozen=True, slots=True)
class Node:
    """A machine that runs tasks. ``capacity.gpu`` is ``GPU_MILLI * gpu_count``."""

    id: str
    hostname: str
    capacity: Resources
    gpu_count: int = 0
    gpu_model: str = ""
    ports: tuple[PortRange, ...] = ()
    attributes: Mapping[str, str] = field(default_factory=dict)
    state: NodeState = NodeState.ACTIVE
    role: str = "*"
    """The Mesos role its resources are reserved for: ``*`` (unreserved, any app that
    accepts ``*``) or e.g. ``slave_public`` (only apps whose ``acceptedResourceRoles``
    name it, as on DC/OS's public agents)."""
    networks: tuple[str, ...] = ()
    """The named container networks its agent gives tasks an address on (Marathon's
    ``networks: [{mode: container, name}]``; Mesos' CNI networks of the agent)."""
    disks: tuple[NodeDisk, ...] = ()
    """The operator's disks for ``path`` and ``mount`` persistent volumes."""

    def __post_init__(self) -> None:
        if not self.id:
            raise ValidationError("/id", "a node needs a non-empty id")
        if not self.capacity.is_nonnegative():
            raise ValidationError("/capacity", f"node {self.id}: capacity must be >= 0")
        if not self.role:
            raise ValidationError("/role", f"node {self.id}: the role must not be empty")
        for name in self.networks:
            problem = network_name_problem(name)
            if problem:
                raise ValidationError("/networks", f"node {self.id}: network {name!r} {problem}")
        roots = [d.root for d in self.disks]
        if len(set(roots)) != len(roots):
            raise ValidationError("/disks", f"node {self.id}: a disk root is given twice")
        if self.gpu_count < 0:
            raise ValidationError("/gpus", f"node {self.id}: gpu count must be >= 0")
        if self.capacity.gpu_milli != self.gpu_count * GPU_MILLI:
            raise ValidationError(
                "/gpus",
                f"node {self.id}: capacity.gpu_milli ({self.capacity.gpu_milli}) must be "
                f"{GPU_MILLI} x gpu_count ({self.gpu_count})",
            )

    @classmethod
    def build(
        cls,
        id: str,
        *,
        cpu_milli: int,
        mem_mib: int,
        disk_mib: int = 0,
        gpus: int = 0,
        gpu_model: str = "",
        hostname: str | None = None,
        ports: tuple[PortRange, ...] = (),
        attributes: Mapping[str, str] | None = None,
        state: NodeState = NodeState.ACTIVE,
        role: str = "*",
        networks: tuple[str, ...] = (),
    ) -> Node:
        """A node from whole numbers: millicpus, MiB, MiB, whole GPU devices (``gpus``)."""
        return cls(
            id=id,
            hostname=hostname or id,
            capacity=Resources(cpu_milli, mem_mib, disk_mib, gpus * GPU_MILLI),
            gpu_count=gpus,
            gpu_model=gpu_model,
            ports=ports,
            attributes=dict(attributes or {}),
            state=state,
            role=role,
            networks=networks,
        )


def field_value(node: Node, name: str) -> str | None:
    """The value a constraint field names on ``node``, as Marathon reads it:
    ``hostname``/``@hostname`` is the hostname, ``@zone``/``@region`` the fault
    domain attributes, anything else an attribute (None when the node lacks it)."""
    if name in ("hostname", "@hostname"):
        return node.hostname
    if name.startswith("@"):
        return node.attributes.get(name[1:])
    return node.attributes.get(name)


def node_to_json(node: Node) -> dict[str, Any]:
    """A node as the agent protocol and the store write it (``node_from_json`` reads it)."""
    return {
        "id": node.id,
        "hostname": node.hostname,
        "capacity": list(node.capacity.as_tuple()),
        "gpu_count": node.gpu_count,
        "gpu_model": node.gpu_model,
        "ports": [str(r) for r in node.ports],
        "attributes": dict(node.attributes),
        "state": node.state.value,
        "role": node.role,
        "networks": list(node.networks),
        "disks": [d.to_json() for d in node.disks],
    }


def node_from_json(doc: Mapping[str, Any]) -> Node:
    """A ``Node`` from ``node_to_json``'s shape (a missing state is ACTIVE, a missing
    role ``*``)."""
    ports = parse_port_ranges(",".join(doc.get("ports") or [])) if doc.get("ports") else ()
    return Node(
        id=doc["id"],
        hostname=doc["hostname"],
        capacity=Resources(*doc["capacity"]),
        gpu_count=int(doc.get("gpu_count", 0)),
        gpu_model=doc.get("gpu_model", ""),
        ports=ports,
        attributes=dict(doc.get("attributes") or {}),
        state=NodeState(doc.get("state", NodeState.ACTIVE.value)),
        role=str(doc.get("role") or "*"),
        networks=tuple(str(n) for n in doc.get("networks") or ()),
        disks=tuple(
            NodeDisk(str(d["type"]), str(d["root"]), int(d["size"])) for d in doc.get("disks") or ()
        ),
    )
