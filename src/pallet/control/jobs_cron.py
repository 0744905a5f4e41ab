"""Cron schedules in a named time zone: checking an expression, the next instant, the
instants due since the last one handled; pure (croniter does the cron arithmetic; the
time zone is given as a ``tzinfo``, never read from a clock).

Daylight saving time follows Vixie cron, which is what people expect of cron:

- a wall-clock time that does not exist (02:30 on the spring-forward night) runs at the
  first instant after the jump (03:00 local), once;
- a wall-clock time that happens twice (01:30 on the fall-back night) runs once, at
  its first occurrence, when the hour field names hours (``30 1 * * *``); schedules
  whose hour field is a wildcard (``*/15 * * * *``, ``0 * * * *``) follow the clock and
  run in both copies of the repeated hour.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, tzinfo

from croniter import CroniterBadCronError, CroniterBadDateError, croniter

__all__ = ["cron_error", "due_instants", "instants_after", "next_instant"]

_MAX_DUE = 10_000
"""At most this many due instants are listed (a job every minute down for a week)."""


def cron_error(expression: str, zone: tzinfo = UTC) -> str | None:
    """Why ``expression`` is not a schedule Pallet runs, or None when it is one: five
    fields (minute hour day-of-month month day-of-week), valid ranges, and at least one
    instant to come (``0 0 30 2 *`` never comes)."""
    fields = expression.split()
    if len(fields) != 5:
        return (
            f"a cron expression has five fields (minute hour day-of-month month "
            f"day-of-week), not {len(fields)}"
        )
    if not croniter.is_valid(expression):
        return f"{expression!r} is not a valid cron expression"
    try:
        next_instant(expression, zone, 0.0)
    except (CroniterBadDateError, CroniterBadCronError):
        return f"{expression!r} never fires (no such day in any month)"
    return None


def _fixed_hours(expression: str) -> bool:
    return not expression.split()[1].startswith("*")


def _second_copy(moment: datetime) -> bool:
    """Whether ``moment`` is the second occurrence of a repeated wall-clock time."""
    zone = moment.tzinfo
    assert zone is not None
    wall = moment.replace(tzinfo=None)
    first = wall.replace(fold=0, tzinfo=zone).utcoffset()
    second = wall.replace(fold=1, tzinfo=zone).utcoffset()
    return first != second and moment.utcoffset() == second


def instants_after(expression: str, zone: tzinfo, after: float) -> Iterator[float]:
    """The schedule's instants (epoch seconds) strictly after ``after``, in order."""
    start = datetime.fromtimestamp(after, zone)
    it = croniter(expression, start)
    fixed = _fixed_hours(expression)
    previous: float | None = None
    while True:
        moment: datetime = it.get_next(datetime)
        instant = moment.timestamp()
        if previous is not None and instant <= previous:
            continue  # croniter may land on the same instant twice around a jump
        previous = instant
        if fixed and _second_copy(moment):
            continue
        if instant > after:
            yield instant


def next_instant(expression: str, zone: tzinfo, after: float) -> float:
    """The first instant of the schedule strictly after ``after``."""
    return next(instants_after(expression, zone, after))


def due_instants(expression: str, zone: tzinfo, after: float, now: float) -> list[float]:
    """The instants in ``(after, now]``, oldest first (at most the newest 10,000)."""
    out: list[float] = []
    for instant in instants_after(expression, zone, after):
        if instant > now:
            break
        out.append(instant)
        if len(out) > _MAX_DUE:
            out.pop(0)
    return out
