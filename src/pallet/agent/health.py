"""Health checks of one task: what to check, and the timing and counting of results; pure.

A check's record moves only by ``observe`` (a probe finished at ``now``) and says when
the next probe is due (``next_due``). The rules are Marathon's and Mesos':

- the first probe comes ``delaySeconds`` after the task started for the Mesos protocols
  (``COMMAND``, ``MESOS_*``), at once for Marathon's own (``HTTP``, ``HTTPS``, ``TCP``,
  which Marathon probes on its interval from the start); then every ``intervalSeconds``;
- a failure within ``gracePeriodSeconds`` of the start is ignored, unless a probe has
  already succeeded (the first success ends the grace period);
- every other failure adds one to ``consecutive_failures``; a success resets it;
- ``alive`` is the verdict of the last counted probe, ``None`` before the first one.

The agent reports a record when ``alive`` or ``consecutive_failures`` changes; the
master kills a task whose failures reach ``maxConsecutiveFailures`` (0: never).
Times are whatever clock the caller passes (the agent passes wall-clock seconds, so
the results render as Marathon's timestamps).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

__all__ = [
    "CheckProtocol",
    "HealthCheck",
    "HealthRecord",
    "aggregate",
    "begin",
    "checks_from_json",
    "http_verdict",
    "observe",
    "reportable",
    "should_kill",
]


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


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """One check as the agent runs it: the port is already the task's host port."""

    protocol: CheckProtocol = CheckProtocol.HTTP
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
        # Never refuse a task over its check: a check that cannot run fails when probed
        # (``problem``), which the master sees as an unhealthy task.
        object.__setattr__(self, "protocol", CheckProtocol(self.protocol))
        for name in ("grace_period", "interval", "timeout", "delay"):
            object.__setattr__(self, name, max(0.0, float(getattr(self, name))))

    @property
    def problem(self) -> str | None:
        """Why this check cannot be probed at all, or None."""
        if self.protocol is CheckProtocol.COMMAND:
            return None if self.command else "a COMMAND health check needs command.value"
        if self.port is None or not 0 < self.port <= 65535:
            return f"the {self.protocol} health check has no host port to probe"
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol.value,
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
    def from_json(cls, doc: Mapping[str, Any] | HealthCheck) -> HealthCheck:
        if isinstance(doc, HealthCheck):
            return doc
        known = {k: v for k, v in doc.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass(frozen=True, slots=True)
class HealthRecord:
    """One check's state for one task (Marathon's ``Health``) plus when to probe next."""

    started_at: float
    next_due: float
    alive: bool | None = None
    consecutive_failures: int = 0
    first_success: float | None = None
    last_success: float | None = None
    last_failure: float | None = None
    last_failure_cause: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The agent protocol's shape (times as epoch seconds)."""
        return {
            "alive": bool(self.alive),
            "consecutive_failures": self.consecutive_failures,
            "first_success": self.first_success,
            "last_success": self.last_success,
            "last_failure": self.last_failure,
            "last_failure_cause": self.last_failure_cause,
        }


def record_from_json(doc: Mapping[str, Any]) -> HealthRecord:
    """A record from its protocol shape (``HealthRecord.to_json``), to be sent again; the
    probe schedule (``started_at``, ``next_due``) is not part of it."""
    return HealthRecord(
        started_at=0.0,
        next_due=0.0,
        alive=bool(doc["alive"]),
        consecutive_failures=int(doc["consecutive_failures"]),
        first_success=doc.get("first_success"),
        last_success=doc.get("last_success"),
        last_failure=doc.get("last_failure"),
        last_failure_cause=doc.get("last_failure_cause"),
    )


def begin(check: HealthCheck, started_at: float) -> HealthRecord:
    """The record of a task that started running at ``started_at``."""
    delay = check.delay if check.protocol.is_mesos else 0.0
    return HealthRecord(started_at=started_at, next_due=started_at + delay)


def observe(
    check: HealthCheck, record: HealthRecord, now: float, ok: bool | None, cause: str = ""
) -> HealthRecord:
    """The record after a probe that finished at ``now``: ``ok`` True (healthy), False
    (unhealthy, because of ``cause``) or None (no verdict, e.g. an ignored HTTP 1xx)."""
    after = replace(record, next_due=now + check.interval)
    if ok is None:
        return after
    if ok:
        return replace(
            after,
            alive=True,
            consecutive_failures=0,
            first_success=record.first_success if record.first_success is not None else now,
            last_success=now,
        )
    in_grace = record.first_success is None and now < record.started_at + check.grace_period
    if in_grace:
        return after
    return replace(
        after,
        alive=False,
        consecutive_failures=record.consecutive_failures + 1,
        last_failure=now,
        last_failure_cause=cause or None,
    )


def reportable(before: HealthRecord, after: HealthRecord) -> bool:
    """Whether the change is worth a status update (a verdict or the failure count moved)."""
    return (before.alive, before.consecutive_failures) != (
        after.alive,
        after.consecutive_failures,
    )


def should_kill(max_consecutive_failures: int, consecutive_failures: int) -> bool:
    """Marathon's rule: kill once the failures reach the maximum; 0 never kills."""
    return 0 < max_consecutive_failures <= consecutive_failures


def aggregate(records: Iterable[HealthRecord]) -> bool | None:
    """Mesos' ``TaskStatus.healthy`` over all checks of a task: None until every check
    has a verdict, then whether all are alive."""
    verdicts = [r.alive for r in records]
    if not verdicts or any(v is None for v in verdicts):
        return None
    return all(verdicts)


def http_verdict(status: int, ignore_http1xx: bool) -> bool | None:
    """Marathon's reading of an HTTP status: 2xx and 3xx are healthy, 1xx is no verdict
    when ``ignoreHttp1xx`` (else unhealthy), anything else unhealthy."""
    if 100 <= status < 200 and ignore_http1xx:
        return None
    return 200 <= status < 400


def checks_from_json(docs: Sequence[Mapping[str, Any] | HealthCheck]) -> tuple[HealthCheck, ...]:
    return tuple(HealthCheck.from_json(d) for d in docs)
