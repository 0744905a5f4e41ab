"""What agents tell the master: registration, task status updates (with health and
readiness) and their acknowledgements, heartbeats with usage; typed messages with one JSON
encoding each, used by both sides; pure. The master's side of the protocol is
``pallet.model.messages``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from pallet.model.checks import HealthResult, ReadinessResult
from pallet.model.errors import ValidationError
from pallet.model.net import is_ip, network_name_problem
from pallet.model.node import Node, NodeState, node_from_json, node_to_json
from pallet.model.roles import role_messages
from pallet.model.task import Reason, TaskState
from pallet.model.wire import MAX_ITEMS as _MAX_ITEMS
from pallet.model.wire import fields_of as _fields
from pallet.model.wire import read_float as _float
from pallet.model.wire import read_int as _int
from pallet.model.wire import read_list as _list
from pallet.model.wire import read_obj as _obj
from pallet.model.wire import read_str as _str
from pallet.model.wire import read_str_map as _str_map

__all__ = ["Acks", "Heartbeat", "Registration", "StatusBatch", "TaskStatus", "TaskUsage"]

_NODE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$")

# ---------------------------------------------------------------- statuses


@dataclass(frozen=True, slots=True)
class TaskStatus:
    """A task reached ``state`` (Mesos' ``TaskStatus``). ``seq`` rises with every update
    of the task; the master stores by (task id, seq) and acknowledges, and the agent
    sends it again until it does. ``health`` and ``readiness`` are None when this update
    says nothing about them (a state change), else one result per check, in the
    spec's order; ``healthy`` is Mesos' verdict over all health checks."""

    task_id: str
    state: TaskState
    seq: int
    reason: Reason | None = None
    message: str = ""
    exit_code: int | None = None
    signal: int | None = None
    healthy: bool | None = None
    health: tuple[HealthResult, ...] | None = None
    readiness: tuple[ReadinessResult, ...] | None = None
    ip_addresses: tuple[str, ...] | None = None
    """The task's own addresses on its container network (Mesos'
    ``container_status.network_infos``); None when this update says nothing of them."""

    def to_json(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "state": self.state.value,
            "seq": self.seq,
            "reason": None if self.reason is None else self.reason.value,
            "message": self.message,
            "exit_code": self.exit_code,
            "signal": self.signal,
            "healthy": self.healthy,
            "health": None if self.health is None else [h.to_json() for h in self.health],
            "readiness": (
                None if self.readiness is None else [r.to_json() for r in self.readiness]
            ),
            "ip_addresses": None if self.ip_addresses is None else list(self.ip_addresses),
        }

    @classmethod
    def from_json(cls, raw: object, path: str = "") -> Self:
        doc = _obj(raw, path, _fields(cls))
        try:
            state = TaskState(_str(doc.get("state"), f"{path}/state", 100))
        except ValueError:
            raise ValidationError(f"{path}/state", "is not a task state") from None
        reason = doc.get("reason")
        try:
            reason = None if reason is None else Reason(reason)
        except ValueError:
            raise ValidationError(f"{path}/reason", "is not a known reason") from None
        healthy = doc.get("healthy")
        if healthy is not None and not isinstance(healthy, bool):
            raise ValidationError(f"{path}/healthy", "must be true, false or null")
        health = doc.get("health")
        readiness = doc.get("readiness")
        code, sig = doc.get("exit_code"), doc.get("signal")
        addresses = doc.get("ip_addresses")
        if addresses is not None:
            addresses = tuple(
                _str(a, f"{path}/ip_addresses/{i}", 64)
                for i, a in enumerate(_list(addresses, f"{path}/ip_addresses", 16))
            )
            for i, a in enumerate(addresses):
                if not is_ip(a):
                    raise ValidationError(f"{path}/ip_addresses/{i}", "is not an IP address")
        return cls(
            task_id=_str(doc.get("task_id"), f"{path}/task_id", 200),
            state=state,
            seq=_int(doc.get("seq"), f"{path}/seq", 1, 2**63),
            reason=reason,
            message=_str(doc.get("message", ""), f"{path}/message", 64 * 1024),
            exit_code=None if code is None else _int(code, f"{path}/exit_code", -(2**31), 2**31),
            signal=None if sig is None else _int(sig, f"{path}/signal", 0, 255),
            healthy=healthy,
            health=(
                None
                if health is None
                else tuple(
                    HealthResult.from_json(h, f"{path}/health/{i}")
                    for i, h in enumerate(_list(health, f"{path}/health", 64))
                )
            ),
            readiness=(
                None
                if readiness is None
                else tuple(
                    ReadinessResult.from_json(r, f"{path}/readiness/{i}")
                    for i, r in enumerate(_list(readiness, f"{path}/readiness", 64))
                )
            ),
            ip_addresses=addresses,
        )


@dataclass(frozen=True, slots=True)
class StatusBatch:
    """Statuses an agent posts at once, in the order they happened."""

    statuses: tuple[TaskStatus, ...]

    def to_json(self) -> dict[str, Any]:
        return {"statuses": [s.to_json() for s in self.statuses]}

    @classmethod
    def from_json(cls, raw: object) -> StatusBatch:
        doc = _obj(raw, "", frozenset({"statuses"}))
        items = _list(doc.get("statuses"), "/statuses")
        return cls(tuple(TaskStatus.from_json(s, f"/statuses/{i}") for i, s in enumerate(items)))


@dataclass(frozen=True, slots=True)
class Acks:
    """What the master stored: every (task id, seq) it will never need again."""

    acks: tuple[tuple[str, int], ...]

    def to_json(self) -> dict[str, Any]:
        return {"acks": [[t, s] for t, s in self.acks]}

    @classmethod
    def from_json(cls, raw: object) -> Acks:
        doc = _obj(raw, "", frozenset({"acks"}))
        out = []
        for i, pair in enumerate(_list(doc.get("acks"), "/acks")):
            item = _list(pair, f"/acks/{i}", 2)
            if len(item) != 2:
                raise ValidationError(f"/acks/{i}", "must be [task id, seq]")
            out.append(
                (_str(item[0], f"/acks/{i}/0", 200), _int(item[1], f"/acks/{i}/1", 1, 2**63))
            )
        return cls(tuple(out))


# ---------------------------------------------------------------- nodes


@dataclass(frozen=True, slots=True)
class Registration:
    """An agent joining: its fingerprinted node, where it serves task logs, and the id of
    its run (a new one means the tasks of the old run are gone)."""

    node: Node
    address: str = ""
    boot_id: str = ""
    """The agent run's id (``agent.daemon._agent_run_id``), not the kernel's boot id: it
    changes when the agent's work directory is new or the host rebooted. The wire name
    is kept."""

    def to_json(self) -> dict[str, Any]:
        return {"node": node_to_json(self.node), "address": self.address, "boot_id": self.boot_id}

    @classmethod
    def from_json(cls, raw: object) -> Registration:
        doc = _obj(raw, "", frozenset({"node", "address", "boot_id"}))
        node = _obj(
            doc.get("node"),
            "/node",
            frozenset(
                {"id", "hostname", "capacity", "gpu_count", "gpu_model", "ports", "attributes"}
                | {"state", "role", "networks", "disks"}
            ),
        )
        node_id = node.get("id")
        if not isinstance(node_id, str) or not _NODE_ID.match(node_id):
            raise ValidationError("/node/id", "must be 1-200 letters, digits, '_', '.', ':', '-'")
        hostname = _str(node.get("hostname"), "/node/hostname", 255)
        if not hostname:
            raise ValidationError("/node/hostname", "must not be empty")
        capacity = _list(node.get("capacity"), "/node/capacity", 4)
        if len(capacity) != 4:
            raise ValidationError("/node/capacity", "must be [millicpus, MiB, MiB, milli-GPUs]")
        for i, value in enumerate(capacity):
            _int(value, f"/node/capacity/{i}", 0, 10**15)
        _int(node.get("gpu_count", 0), "/node/gpu_count", 0, 10**6)
        _str(node.get("gpu_model", ""), "/node/gpu_model", 255)
        for i, r in enumerate(_list(node.get("ports", []), "/node/ports", 10_000)):
            _str(r, f"/node/ports/{i}", 100)
        _str_map(node.get("attributes", {}), "/node/attributes")
        for i, disk in enumerate(_list(node.get("disks", []), "/node/disks", 64)):
            d = _obj(disk, f"/node/disks/{i}", frozenset({"type", "root", "size"}))
            _str(d.get("type"), f"/node/disks/{i}/type", 10)
            _str(d.get("root"), f"/node/disks/{i}/root", 4096)
            _int(d.get("size"), f"/node/disks/{i}/size", 1, 10**12)
        for i, name in enumerate(_list(node.get("networks", []), "/node/networks", 64)):
            problem = network_name_problem(name)
            if problem:
                raise ValidationError(f"/node/networks/{i}", problem)
        problems = role_messages(_str(node.get("role", "*"), "/node/role", 255))
        if problems:
            raise ValidationError("/node/role", " ".join(problems))
        try:
            parsed = node_from_json({**node, "state": NodeState.ACTIVE.value})
        except ValidationError as e:
            raise ValidationError("/node" + e.field, e.message) from None
        except ValueError as e:
            raise ValidationError("/node/ports", str(e)) from None
        return cls(
            node=parsed,
            address=_str(doc.get("address", ""), "/address", 1000),
            boot_id=_str(doc.get("boot_id", ""), "/boot_id", 200),
        )


@dataclass(frozen=True, slots=True)
class TaskUsage:
    """What one task used, as measured on its node."""

    cpu_seconds: float = 0.0
    rss_bytes: int = 0
    disk_bytes: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "cpu_seconds": self.cpu_seconds,
            "rss_bytes": self.rss_bytes,
            "disk_bytes": self.disk_bytes,
        }

    @classmethod
    def from_json(cls, raw: object, path: str) -> TaskUsage:
        doc = _obj(raw, path, _fields(cls))
        return cls(
            cpu_seconds=_float(doc.get("cpu_seconds", 0.0), f"{path}/cpu_seconds", 0.0, 1e15),
            rss_bytes=_int(doc.get("rss_bytes", 0), f"{path}/rss_bytes", 0, 2**63),
            disk_bytes=_int(doc.get("disk_bytes", 0), f"{path}/disk_bytes", 0, 2**63),
        )


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """An agent is alive; what each of its tasks used."""

    usage: Mapping[str, TaskUsage] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"usage": {tid: u.to_json() for tid, u in self.usage.items()}}

    @classmethod
    def from_json(cls, raw: object) -> Heartbeat:
        doc = _obj(raw, "", frozenset({"usage"}))
        usage = _obj(doc.get("usage", {}), "/usage")
        if len(usage) > _MAX_ITEMS:
            raise ValidationError("/usage", f"must have at most {_MAX_ITEMS} tasks")
        return cls({tid: TaskUsage.from_json(u, f"/usage/{tid}") for tid, u in usage.items()})
