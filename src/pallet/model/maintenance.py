"""Mesos's maintenance primitives as data: machines, windows of unavailability, the one
schedule and the machines that are DOWN, read from Mesos's JSON with the rules Mesos
checks (a field path on each refusal); pure.

A machine is ``{hostname, ip}`` (at least one given; the hostname is not case-sensitive).
Pallet matches it to the nodes whose hostname and agent IP equal the fields given: an
omitted field matches any, so ``{"hostname": "h1"}`` names every agent on ``h1``.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from pallet.model.errors import ValidationError

__all__ = [
    "MachineId",
    "MachineMode",
    "Maintenance",
    "Window",
    "machines_from_json",
    "schedule_from_json",
]

_INT64 = (1 << 63) - 1


class MachineMode(enum.StrEnum):
    """Mesos's ``MachineInfo.Mode``: in service, scheduled for maintenance, or in it."""

    UP = "UP"
    DRAINING = "DRAINING"
    DOWN = "DOWN"


@dataclass(frozen=True, slots=True)
class MachineId:
    hostname: str = ""
    ip: str = ""

    @property
    def key(self) -> tuple[str, str]:
        """Equal for the same machine (the hostname in any case)."""
        return (self.hostname.lower(), self.ip)

    def matches(self, hostname: str, ip: str) -> bool:
        """Whether a node with this hostname and agent IP is on this machine."""
        return (not self.hostname or self.hostname.lower() == hostname.lower()) and (
            not self.ip or self.ip == ip
        )

    def to_json(self) -> dict[str, str]:
        doc = {}
        if self.hostname:
            doc["hostname"] = self.hostname
        if self.ip:
            doc["ip"] = self.ip
        return doc

    def __str__(self) -> str:
        return "/".join(p for p in (self.hostname, self.ip) if p)


@dataclass(frozen=True, slots=True)
class Window:
    """Machines that will be unavailable from ``start_ns`` (epoch nanoseconds) for
    ``duration_ns`` (None: indefinitely, as Mesos reads an omitted duration)."""

    machine_ids: tuple[MachineId, ...]
    start_ns: int
    duration_ns: int | None = None

    def phase(self, now: float) -> str:
        """``pending`` before the window, ``active`` in it, ``past`` after it."""
        at = int(now * 1_000_000_000)
        if at < self.start_ns:
            return "pending"
        if self.duration_ns is None or at < self.start_ns + self.duration_ns:
            return "active"
        return "past"

    def to_json(self) -> dict[str, Any]:
        unavailability: dict[str, Any] = {"start": {"nanoseconds": self.start_ns}}
        if self.duration_ns is not None:
            unavailability["duration"] = {"nanoseconds": self.duration_ns}
        return {
            "machine_ids": [m.to_json() for m in self.machine_ids],
            "unavailability": unavailability,
        }


@dataclass(frozen=True, slots=True)
class Maintenance:
    """The cluster's maintenance schedule and which of its machines are DOWN (every DOWN
    machine is in the schedule). The store keeps it as ``to_json``."""

    windows: tuple[Window, ...] = ()
    down: tuple[MachineId, ...] = ()

    def window_of(self, hostname: str, ip: str) -> Window | None:
        for window in self.windows:
            if any(m.matches(hostname, ip) for m in window.machine_ids):
                return window
        return None

    def mode_of(self, hostname: str, ip: str) -> MachineMode:
        """The mode of the machine a node with this hostname and IP is on."""
        if any(m.matches(hostname, ip) for m in self.down):
            return MachineMode.DOWN
        if self.window_of(hostname, ip) is not None:
            return MachineMode.DRAINING
        return MachineMode.UP

    def scheduled(self) -> dict[tuple[str, str], MachineId]:
        return {m.key: m for w in self.windows for m in w.machine_ids}

    def schedule_json(self) -> dict[str, Any]:
        """Mesos's ``maintenance::Schedule`` (``{}`` when empty, as Mesos writes it)."""
        return {"windows": [w.to_json() for w in self.windows]} if self.windows else {}

    def to_json(self) -> dict[str, Any]:
        return {
            "windows": [w.to_json() for w in self.windows],
            "down": [m.to_json() for m in self.down],
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Maintenance:
        windows = schedule_from_json({"windows": doc.get("windows") or []})
        down = tuple(_machine(m, "/down") for m in doc.get("down") or [])
        return cls(windows, down)

    # ------------------------------------------------------------ operator calls

    def with_schedule(self, windows: tuple[Window, ...]) -> Maintenance:
        """``POST /maintenance/schedule``: the new schedule replaces the old one; every
        DOWN machine must stay in it (only ``/machine/up`` brings one back)."""
        keys = {m.key for w in windows for m in w.machine_ids}
        for m in self.down:
            if m.key not in keys:
                raise ValidationError(
                    "/windows",
                    f"machine '{m}' is DOWN and must stay in the schedule; "
                    "bring it up with /machine/up first",
                )
        return replace(self, windows=windows)

    def with_down(self, machines: tuple[MachineId, ...]) -> Maintenance:
        """``POST /machine/down``: scheduled machines go DOWN."""
        scheduled = self.scheduled()
        for i, m in enumerate(machines):
            if m.key not in scheduled:
                raise ValidationError(
                    f"({i})", f"machine '{m}' is not part of a maintenance schedule"
                )
        known = {m.key for m in self.down}
        added = tuple(scheduled[m.key] for m in machines if m.key not in known)
        return replace(self, down=self.down + added)

    def with_up(self, machines: tuple[MachineId, ...]) -> Maintenance:
        """``POST /machine/up``: DOWN machines return to service and leave the schedule."""
        down = {m.key for m in self.down}
        for i, m in enumerate(machines):
            if m.key not in down:
                raise ValidationError(
                    f"({i})", f"machine '{m}' is not in DOWN mode and cannot be brought up"
                )
        gone = {m.key for m in machines}
        windows = []
        for w in self.windows:
            left = tuple(m for m in w.machine_ids if m.key not in gone)
            if left:
                windows.append(replace(w, machine_ids=left))
        return Maintenance(tuple(windows), tuple(m for m in self.down if m.key not in gone))


# ------------------------------------------------------------------ reading Mesos's JSON


def _object(doc: object, path: str, allowed: Iterable[str]) -> Mapping[str, Any]:
    if not isinstance(doc, dict):
        raise ValidationError(path or "/", "must be a JSON object")
    extra = sorted(set(doc) - set(allowed))
    if extra:
        raise ValidationError(f"{path}/{extra[0]}", "is not a field Pallet knows here")
    return doc


def _nanoseconds(doc: object, path: str) -> int:
    value = _object(doc, path, ("nanoseconds",)).get("nanoseconds")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{path}/nanoseconds", "must be a whole number of nanoseconds")
    if not -_INT64 <= value <= _INT64:
        raise ValidationError(f"{path}/nanoseconds", "must fit a signed 64-bit integer")
    return value


def _machine(doc: object, path: str) -> MachineId:
    d = _object(doc, path, ("hostname", "ip"))
    hostname, ip = d.get("hostname", ""), d.get("ip", "")
    for name, value in (("hostname", hostname), ("ip", ip)):
        if not isinstance(value, str):
            raise ValidationError(f"{path}/{name}", "must be a string")
    if not hostname and not ip:
        raise ValidationError(path, "both 'hostname' and 'ip' for a machine are empty")
    if ip:
        try:
            ip = str(ipaddress.ip_address(ip))
        except ValueError:
            raise ValidationError(f"{path}/ip", f"'{ip}' is not an IP address") from None
    return MachineId(hostname, ip)


def machines_from_json(doc: object) -> tuple[MachineId, ...]:
    """The body of ``/machine/down`` and ``/machine/up``: a non-empty list of machines,
    each once."""
    if not isinstance(doc, list):
        raise ValidationError("/", "must be a JSON list of machines")
    if not doc:
        raise ValidationError("/", "list of machines is empty")
    seen: set[tuple[str, str]] = set()
    out = []
    for i, item in enumerate(doc):
        m = _machine(item, f"({i})")
        if m.key in seen:
            raise ValidationError(f"({i})", f"machine '{m}' appears more than once")
        seen.add(m.key)
        out.append(m)
    return tuple(out)


def schedule_from_json(doc: object) -> tuple[Window, ...]:
    """A ``maintenance::Schedule``: windows, each with machines and an unavailability
    whose duration is not negative; a machine appears in one window only, once."""
    d = _object(doc, "", ("windows",))
    windows_doc = d.get("windows", [])
    if not isinstance(windows_doc, list):
        raise ValidationError("/windows", "must be a JSON list")
    seen: dict[tuple[str, str], str] = {}
    windows = []
    for i, w in enumerate(windows_doc):
        at = f"/windows({i})"
        wd = _object(w, at, ("machine_ids", "unavailability"))
        ids = wd.get("machine_ids")
        if not isinstance(ids, list) or not ids:
            raise ValidationError(f"{at}/machine_ids", "list of machines in the window is empty")
        machines = []
        for j, item in enumerate(ids):
            m_at = f"{at}/machine_ids({j})"
            m = _machine(item, m_at)
            if m.key in seen:
                raise ValidationError(
                    m_at, f"machine '{m}' is already in the schedule at {seen[m.key]}"
                )
            seen[m.key] = m_at
            machines.append(m)
        if "unavailability" not in wd:
            raise ValidationError(f"{at}/unavailability", "is required")
        u = _object(wd["unavailability"], f"{at}/unavailability", ("start", "duration"))
        if "start" not in u:
            raise ValidationError(f"{at}/unavailability/start", "is required")
        start = _nanoseconds(u["start"], f"{at}/unavailability/start")
        duration = None
        if "duration" in u:
            duration = _nanoseconds(u["duration"], f"{at}/unavailability/duration")
            if duration < 0:
                raise ValidationError(
                    f"{at}/unavailability/duration/nanoseconds",
                    "unavailability 'duration' is negative",
                )
        windows.append(Window(tuple(machines), start, duration))
    return tuple(windows)
