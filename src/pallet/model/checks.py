"""Health and readiness checks as the master hands them to agents, and their results as
agents report them; pure data with one JSON encoding each.

- ``HealthCheckSpec``: one of an app's ``healthChecks`` (Marathon's fields in Pallet's
  units). Stored with ``port_index`` (an index into the task's host ports); the launch
  spec carries the host port itself (``resolved``).
- ``ReadinessCheckSpec``: one of an app's ``readinessChecks``, naming a port by
  ``port_name``; resolved to the task's host port the same way.
- ``HealthResult``: Marathon's ``Health`` of one check of one task (times in epoch
  seconds).
- ``ReadinessResult``: Marathon's ``ReadinessCheckResult`` of one check of one task.

``from_json`` raises ``ValidationError`` naming the field; it never trusts a type.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pallet.model.errors import ValidationError

__all__ = [
    "CheckProtocol",
    "HealthCheckSpec",
    "HealthResult",
    "HttpResponse",
    "ReadinessCheckSpec",
    "ReadinessResult",
]

_EPOCH_MAX = 253_402_300_799.0
"""9999-12-31T23:59:59Z: times past it cannot be rendered as Marathon's timestamps."""
_TEXT_MAX = 1000
_BODY_MAX = 64 * 1024


class CheckProtocol(enum.StrEnum):
    HTTP = "HTTP"
    HTTPS = "HTTPS"
    TCP = "TCP"
    COMMAND = "COMMAND"
    MESOS_HTTP = "MESOS_HTTP"
    MESOS_HTTPS = "MESOS_HTTPS"
    MESOS_TCP = "MESOS_TCP"

    @property
    def is_mesos(self) -> bool:
        """Run "next to the task" in Mesos (delaySeconds applies, probes hit 127.0.0.1)."""
        return self in _MESOS

    @property
    def is_http(self) -> bool:
        return self in _HTTP

    @property
    def is_https(self) -> bool:
        return self in (CheckProtocol.HTTPS, CheckProtocol.MESOS_HTTPS)

    @property
    def is_tcp(self) -> bool:
        return self in (CheckProtocol.TCP, CheckProtocol.MESOS_TCP)


_MESOS = frozenset(
    {
        CheckProtocol.COMMAND,
        CheckProtocol.MESOS_HTTP,
        CheckProtocol.MESOS_HTTPS,
        CheckProtocol.MESOS_TCP,
    }
)
_HTTP = frozenset(
    {CheckProtocol.HTTP, CheckProtocol.HTTPS, CheckProtocol.MESOS_HTTP, CheckProtocol.MESOS_HTTPS}
)


# ---------------------------------------------------------------- reading helpers


def _obj(doc: object, path: str) -> Mapping[str, Any]:
    if not isinstance(doc, Mapping):
        raise ValidationError(path, "must be a JSON object")
    return doc


def _num(doc: Mapping[str, Any], key: str, path: str, default: float) -> float:
    value = doc.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{path}/{key}", "must be a number")
    if not 0 <= value <= 1e9:
        raise ValidationError(f"{path}/{key}", "must be between 0 and 1e9")
    return float(value)


def _int(doc: Mapping[str, Any], key: str, path: str, default: int | None) -> int | None:
    value = doc.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{path}/{key}", "must be an integer")
    if not 0 <= value <= 2**31:
        raise ValidationError(f"{path}/{key}", "must be between 0 and 2^31")
    return value


def _str(
    doc: Mapping[str, Any], key: str, path: str, default: str | None, limit: int = _TEXT_MAX
) -> str | None:
    value = doc.get(key, default)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{path}/{key}", "must be a string")
    if len(value) > limit:
        raise ValidationError(f"{path}/{key}", f"must be at most {limit} characters")
    return value


def _bool(doc: Mapping[str, Any], key: str, path: str, default: bool | None) -> bool | None:
    value = doc.get(key, default)
    if value is not None and not isinstance(value, bool):
        raise ValidationError(f"{path}/{key}", "must be true or false")
    return value


def _time(doc: Mapping[str, Any], key: str, path: str) -> float | None:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{path}/{key}", "must be epoch seconds")
    if not 0 <= value <= _EPOCH_MAX:
        raise ValidationError(f"{path}/{key}", "must be a time between 1970 and 9999")
    return float(value)


def _port(value: int | None, path: str) -> int | None:
    if value is not None and not 0 < value <= 65535:
        raise ValidationError(path, f"port {value} not in 1-65535")
    return value


# ---------------------------------------------------------------- specs


@dataclass(frozen=True, slots=True)
class HealthCheckSpec:
    """One health check: Marathon's fields, seconds as floats. ``port`` is the host port
    to probe once the task is placed; until then ``port_index`` says which of the
    task's host ports it will be (``port`` alone: a fixed port)."""

    protocol: CheckProtocol = CheckProtocol.HTTP
    port_index: int | None = None
    port: int | None = None
    path: str = "/"
    command: str | None = None
    grace_period: float = 300.0
    interval: float = 60.0
    timeout: float = 20.0
    max_consecutive_failures: int = 3
    delay: float = 15.0
    ignore_http1xx: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "protocol", CheckProtocol(self.protocol))

    @property
    def problem(self) -> str | None:
        """Why this check cannot be probed at all, or None. Such a check is never
        refused: it fails when probed, which the master sees as an unhealthy task."""
        if self.protocol is CheckProtocol.COMMAND:
            return None if self.command else "a COMMAND health check needs command.value"
        if self.port is None:
            return f"the {self.protocol} health check has no host port to probe"
        return None

    def resolved(self, ports: Sequence[int]) -> HealthCheckSpec:
        """The check of a task with these host ports: ``port`` set from ``port_index``."""
        if self.port_index is not None and 0 <= self.port_index < len(ports):
            return replace(self, port=ports[self.port_index], port_index=None)
        return replace(self, port_index=None)

    def to_json(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol.value,
            "port_index": self.port_index,
            "port": self.port,
            "path": self.path,
            "command": self.command,
            "grace_period": self.grace_period,
            "interval": self.interval,
            "timeout": self.timeout,
            "max_consecutive_failures": self.max_consecutive_failures,
            "delay": self.delay,
            "ignore_http1xx": self.ignore_http1xx,
        }

    @classmethod
    def from_json(cls, raw: object, path: str = "") -> HealthCheckSpec:
        doc = _obj(raw, path)
        try:
            protocol = CheckProtocol(doc.get("protocol", "HTTP"))
        except ValueError:
            raise ValidationError(f"{path}/protocol", "is not a known protocol") from None
        return cls(
            protocol=protocol,
            port_index=_int(doc, "port_index", path, None),
            port=_port(_int(doc, "port", path, None), f"{path}/port"),
            path=_str(doc, "path", path, "/") or "/",
            command=_str(doc, "command", path, None, limit=_BODY_MAX),
            grace_period=_num(doc, "grace_period", path, 300.0),
            interval=_num(doc, "interval", path, 60.0),
            timeout=_num(doc, "timeout", path, 20.0),
            max_consecutive_failures=_int(doc, "max_consecutive_failures", path, 3) or 0,
            delay=_num(doc, "delay", path, 15.0),
            ignore_http1xx=bool(_bool(doc, "ignore_http1xx", path, False)),
        )


@dataclass(frozen=True, slots=True)
class ReadinessCheckSpec:
    """One readiness check (HTTP or HTTPS ``GET path`` on the port named
    ``port_name``); a task is ready once every check has answered one of
    ``status_codes`` (Marathon probes during deployments until the first success)."""

    name: str = "readinessCheck"
    protocol: CheckProtocol = CheckProtocol.HTTP
    path: str = "/"
    port_name: str = "http-api"
    port: int | None = None
    interval: float = 30.0
    timeout: float = 10.0
    status_codes: tuple[int, ...] = (200,)
    preserve_last_response: bool = False

    def resolved(self, ports: Sequence[int], port_names: Sequence[str]) -> ReadinessCheckSpec:
        """The check of a task with these host ports and port names (a port set already,
        a container port of an app on a container network, stays)."""
        if self.port is not None:
            return self
        for port, name in zip(ports, port_names, strict=False):
            if name == self.port_name:
                return replace(self, port=port)
        return self

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "protocol": self.protocol.value,
            "path": self.path,
            "port_name": self.port_name,
            "port": self.port,
            "interval": self.interval,
            "timeout": self.timeout,
            "status_codes": list(self.status_codes),
            "preserve_last_response": self.preserve_last_response,
        }

    @classmethod
    def from_json(cls, raw: object, path: str = "") -> ReadinessCheckSpec:
        doc = _obj(raw, path)
        protocol = doc.get("protocol", "HTTP")
        if protocol not in ("HTTP", "HTTPS"):
            raise ValidationError(f"{path}/protocol", "must be HTTP or HTTPS")
        codes = doc.get("status_codes", [200])
        if not isinstance(codes, list) or not codes or len(codes) > 100:
            raise ValidationError(f"{path}/status_codes", "must be a list of 1-100 HTTP codes")
        for i, code in enumerate(codes):
            if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 999:
                raise ValidationError(f"{path}/status_codes/{i}", "must be an HTTP status code")
        return cls(
            name=_str(doc, "name", path, "readinessCheck") or "readinessCheck",
            protocol=CheckProtocol(protocol),
            path=_str(doc, "path", path, "/") or "/",
            port_name=_str(doc, "port_name", path, "http-api") or "",
            port=_port(_int(doc, "port", path, None), f"{path}/port"),
            interval=_num(doc, "interval", path, 30.0),
            timeout=_num(doc, "timeout", path, 10.0),
            status_codes=tuple(codes),
            preserve_last_response=bool(_bool(doc, "preserve_last_response", path, False)),
        )


# ---------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class HealthResult:
    """Marathon's ``Health`` of one check: the last verdict and the failure count."""

    alive: bool = False
    consecutive_failures: int = 0
    first_success: float | None = None
    last_success: float | None = None
    last_failure: float | None = None
    last_failure_cause: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "alive": self.alive,
            "consecutive_failures": self.consecutive_failures,
            "first_success": self.first_success,
            "last_success": self.last_success,
            "last_failure": self.last_failure,
            "last_failure_cause": self.last_failure_cause,
        }

    @classmethod
    def from_json(cls, raw: object, path: str = "") -> HealthResult:
        doc = _obj(raw, path)
        alive = doc.get("alive")
        if not isinstance(alive, bool):
            raise ValidationError(f"{path}/alive", "must be true or false")
        return cls(
            alive=alive,
            consecutive_failures=_int(doc, "consecutive_failures", path, 0) or 0,
            first_success=_time(doc, "first_success", path),
            last_success=_time(doc, "last_success", path),
            last_failure=_time(doc, "last_failure", path),
            last_failure_cause=_str(doc, "last_failure_cause", path, None),
        )


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """Marathon's ``HttpResponse`` of a readiness check's last probe."""

    status: int
    content_type: str = ""
    body: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "content_type": self.content_type, "body": self.body}

    @classmethod
    def from_json(cls, raw: object, path: str = "") -> HttpResponse:
        doc = _obj(raw, path)
        return cls(
            status=_int(doc, "status", path, 0) or 0,
            content_type=_str(doc, "content_type", path, "") or "",
            body=_str(doc, "body", path, "", limit=_BODY_MAX) or "",
        )


@dataclass(frozen=True, slots=True)
class ReadinessResult:
    """Marathon's ``ReadinessCheckResult`` of one check of one task."""

    name: str
    ready: bool
    last_response: HttpResponse | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ready": self.ready,
            "last_response": None if self.last_response is None else self.last_response.to_json(),
        }

    @classmethod
    def from_json(cls, raw: object, path: str = "") -> ReadinessResult:
        doc = _obj(raw, path)
        ready = doc.get("ready")
        if not isinstance(ready, bool):
            raise ValidationError(f"{path}/ready", "must be true or false")
        last = doc.get("last_response")
        return cls(
            name=_str(doc, "name", path, "") or "",
            ready=ready,
            last_response=(
                None if last is None else HttpResponse.from_json(last, f"{path}/last_response")
            ),
        )
