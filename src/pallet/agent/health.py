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

from collections.abc import Iterable
from dataclasses import dataclass, replace

from pallet.model import (
    CheckProtocol,
    HealthCheckSpec,
    HealthResult,
    HttpResponse,
    ReadinessCheckSpec,
    ReadinessResult,
)

__all__ = [
    "CheckProtocol",
    "HealthRecord",
    "aggregate",
    "begin",
    "http_verdict",
    "observe",
    "readiness_verdict",
    "reportable",
    "should_kill",
]


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

    def result(self) -> HealthResult:
        """What the master is told (Marathon's ``Health``; times as epoch seconds)."""
        return HealthResult(
            alive=bool(self.alive),
            consecutive_failures=self.consecutive_failures,
            first_success=self.first_success,
            last_success=self.last_success,
            last_failure=self.last_failure,
            last_failure_cause=self.last_failure_cause,
        )


def begin(check: HealthCheckSpec, started_at: float) -> HealthRecord:
    """The record of a task that started running at ``started_at``."""
    delay = check.delay if check.protocol.is_mesos else 0.0
    return HealthRecord(started_at=started_at, next_due=started_at + delay)


def observe(
    check: HealthCheckSpec, record: HealthRecord, now: float, ok: bool | None, cause: str = ""
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


_BODY_KEPT = 4096
"""How much of a readiness response body ``preserveLastResponse`` keeps."""


def readiness_verdict(
    check: ReadinessCheckSpec, status: int | None, content_type: str = "", body: str = ""
) -> ReadinessResult:
    """Marathon's reading of a readiness probe: ready when the HTTP status is one of
    ``httpStatusCodesForReady``; ``status`` None when no answer came. The response is
    kept (shortened) only with ``preserveLastResponse``."""
    ready = status is not None and status in check.status_codes
    last = None
    if check.preserve_last_response and status is not None:
        last = HttpResponse(status, content_type, body[:_BODY_KEPT])
    return ReadinessResult(check.name, ready, last)
