"""The pure schedule logic on a fake clock: cron instants across DST in a named zone,
startingDeadlineSeconds and missed instants, FORBID / ALLOW / REPLACE, dependencies."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from pallet.control.jobs_cron import cron_error, due_instants, next_instant
from pallet.control.jobs_triggers import (
    dependency_keys,
    dependency_violation,
    instant_key,
    run_id,
    schedule_step,
)
from pallet.model.jobs import (
    ConcurrencyPolicy,
    JobHistory,
    JobRun,
    JobRunSpec,
    JobSpec,
    JobTriggers,
    RunStatus,
    ScheduleSpec,
)

NEW_YORK = ZoneInfo("America/New_York")


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def local(text: str) -> str:
    return datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M")


def walls(expression: str, start_utc: str, count: int) -> list[str]:
    """The next ``count`` instants after ``start_utc`` as New York wall-clock times with
    their UTC offset."""
    out, after = [], utc(start_utc)
    for _ in range(count):
        after = next_instant(expression, NEW_YORK, after)
        moment = datetime.fromtimestamp(after, NEW_YORK)
        out.append(f"{moment:%m-%d %H:%M}{moment:%z}")
    return out


@pytest.mark.parametrize(
    ("expression", "start", "expected"),
    [
        # spring forward, 2024-03-10 02:00 EST -> 03:00 EDT: 02:30 does not exist that
        # night, so the daily 02:30 runs once at 03:00, then at 02:30 again.
        ("30 2 * * *", "2024-03-09T12:00", ["03-10 03:00-0400", "03-11 02:30-0400"]),
        # an interval schedule just skips the missing hour
        ("*/30 * * * *", "2024-03-10T06:10", ["03-10 01:30-0500", "03-10 03:00-0400"]),
        # fall back, 2024-11-03 02:00 EDT -> 01:00 EST: 01:30 happens twice; a schedule
        # naming the hour runs once (the first), as Vixie cron does ...
        ("30 1 * * *", "2024-11-02T12:00", ["11-03 01:30-0400", "11-04 01:30-0500"]),
        # ... while an hourly one follows the clock through both copies of the hour
        (
            "0 * * * *",
            "2024-11-03T04:30",
            ["11-03 01:00-0400", "11-03 01:00-0500", "11-03 02:00-0500"],
        ),
        # plain days: every Monday at 09:00 local, EST then EDT
        ("0 9 * * 1", "2024-03-01T00:00", ["03-04 09:00-0500", "03-11 09:00-0400"]),
    ],
)
def test_next_instants_across_dst(expression: str, start: str, expected: list[str]) -> None:
    assert walls(expression, start, len(expected)) == expected


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("61 * * * *", "not a valid cron"),
        ("* * * *", "five fields"),
        ("0 * * * * *", "five fields"),
        ("0 0 30 2 *", "never fires"),
        ("@every 5s", "five fields"),
    ],
)
def test_bad_cron_expressions(expression: str, problem: str) -> None:
    why = cron_error(expression)
    assert why is not None and problem in why


def test_good_cron_expressions() -> None:
    for expression in ("* * * * *", "*/5 1-3 * * MON-FRI", "0 0 29 2 *", "0 0 L * *"):
        assert cron_error(expression) is None, expression


def test_due_instants_are_the_window() -> None:
    # every 10 minutes, from 12:05 (exclusive) to 12:40 (inclusive): 12:10 ... 12:40
    due = due_instants("*/10 * * * *", UTC, utc("2024-05-01T12:05"), utc("2024-05-01T12:40"))
    assert [instant_key(i) for i in due] == [
        "2024-05-01T12:10:00Z",
        "2024-05-01T12:20:00Z",
        "2024-05-01T12:30:00Z",
        "2024-05-01T12:40:00Z",
    ]


EVERY_MINUTE = ScheduleSpec("s", "* * * * *", starting_deadline_seconds=120)


@pytest.mark.parametrize(
    ("last", "now", "active", "policy", "run", "handled", "replace"),
    [
        # nothing due yet: the last instant handled is 12:00, it is 12:00:59
        ("12:00:00", "12:00:59", 0, "ALLOW", None, None, False),
        # 12:01 is due: it runs and is recorded
        ("12:00:00", "12:01:00", 0, "ALLOW", "12:01:00", "12:01:00", False),
        # the master was down 12:01-12:04: 12:02 .. 12:04 are within the 120 s deadline,
        # only the newest (12:04) runs, the others are missed
        ("12:01:00", "12:04:30", 0, "ALLOW", "12:04:00", "12:04:00", False),
        # down for an hour: everything is older than the deadline except 12:59, 13:00
        ("12:00:00", "13:00:10", 0, "ALLOW", "13:00:00", "13:00:00", False),
        # ALLOW starts beside an active run; FORBID skips (and records) the instant;
        # REPLACE stops the active run and starts
        ("12:00:00", "12:01:00", 1, "ALLOW", "12:01:00", "12:01:00", False),
        ("12:00:00", "12:01:00", 1, "FORBID", None, "12:01:00", False),
        ("12:00:00", "12:01:00", 1, "REPLACE", "12:01:00", "12:01:00", True),
        # REPLACE without an active run replaces nothing
        ("12:00:00", "12:01:00", 0, "REPLACE", "12:01:00", "12:01:00", False),
    ],
)
def test_schedule_step(
    last: str,
    now: str,
    active: int,
    policy: str,
    run: str | None,
    handled: str | None,
    replace: bool,
) -> None:
    schedule = ScheduleSpec(
        "s",
        "* * * * *",
        starting_deadline_seconds=120,
        concurrency_policy=ConcurrencyPolicy(policy),
    )
    day = "2024-05-01T"
    step = schedule_step(schedule, UTC, utc(day + last), active, utc(day + now))
    if handled is None:
        assert step is None
        return
    assert step is not None
    assert step.run == (None if run is None else utc(day + run))
    assert step.handled == utc(day + handled)
    assert step.replace is replace


def test_only_missed_instants_are_recorded_and_nothing_runs() -> None:
    # daily at 03:00 with a 60 s deadline; the master was down 02:59-03:05
    daily = ScheduleSpec("d", "0 3 * * *", starting_deadline_seconds=60)
    step = schedule_step(daily, UTC, utc("2024-05-01T02:59"), 0, utc("2024-05-01T03:05"))
    assert step is not None and step.run is None
    assert step.handled == utc("2024-05-01T03:04")  # now - deadline: nothing before runs
    # the next pass finds nothing due
    assert schedule_step(daily, UTC, step.handled, 0, utc("2024-05-01T03:06")) is None


def test_a_handled_instant_never_runs_twice() -> None:
    step = schedule_step(EVERY_MINUTE, UTC, utc("2024-05-01T12:00"), 0, utc("2024-05-01T12:01"))
    assert step is not None and step.run == utc("2024-05-01T12:01")
    # a restarted master reads the handled instant back: the same minute runs nothing
    assert schedule_step(EVERY_MINUTE, UTC, step.handled, 0, utc("2024-05-01T12:01:40")) is None


def finished(job_id: str, key: str, status: RunStatus, at: float) -> JobRun:
    return JobRun(
        id=f"{job_id}-{key}",
        job_id=job_id,
        spec=JobRunSpec(cmd="true"),
        status=status,
        created_at=at - 1,
        key=key,
        completed_at=at,
    )


def history(job_id: str, *runs: JobRun) -> JobHistory:
    h = JobHistory(job_id)
    for r in runs:
        h = h.with_finished(r)
    return h


@pytest.mark.parametrize(
    ("a_runs", "b_runs", "fired", "expected"),
    [
        # both parents succeeded for instant K1: the child runs for K1
        ([("K1", "SUCCESS")], [("K1", "SUCCESS")], (), ["K1"]),
        # b failed K1: nothing
        ([("K1", "SUCCESS")], [("K1", "FAILED")], (), []),
        # b has not run K2 yet: only K1
        ([("K1", "SUCCESS"), ("K2", "SUCCESS")], [("K1", "SUCCESS")], (), ["K1"]),
        # K1 already ran the child: only K2
        (
            [("K1", "SUCCESS"), ("K2", "SUCCESS")],
            [("K1", "SUCCESS"), ("K2", "SUCCESS")],
            ("K1",),
            ["K2"],
        ),
        # parents' runs before the child existed (since = 100) do not count
        ([("OLD", "SUCCESS")], [("OLD", "SUCCESS")], (), []),
    ],
)
def test_dependency_keys(
    a_runs: list[tuple[str, str]],
    b_runs: list[tuple[str, str]],
    fired: tuple[str, ...],
    expected: list[str],
) -> None:
    def at(key: str) -> float:
        return 50.0 if key == "OLD" else 200.0 + len(key)

    child = JobSpec("c", JobRunSpec(cmd="true"), dependencies=("a", "b"))
    histories = {
        "a": history("a", *(finished("a", k, RunStatus(s), at(k)) for k, s in a_runs)),
        "b": history("b", *(finished("b", k, RunStatus(s), at(k)) for k, s in b_runs)),
    }
    triggers = JobTriggers("c", since=100.0, fired=fired)
    assert dependency_keys(child, triggers, histories) == expected


@pytest.mark.parametrize(
    ("job_id", "deps", "schedules", "graph", "path"),
    [
        ("c", ["a", "a"], False, {"a": []}, "/dependencies"),
        ("c", ["zz"], False, {"a": []}, "/dependencies"),
        ("c", ["a"], True, {"a": []}, "/"),
        # a -> c (a depends on c): c depending on a closes the cycle
        ("c", ["a"], False, {"a": ["c"], "c": []}, "/dependencies(0)/id"),
        # a longer cycle: c -> b -> a -> c
        ("c", ["b"], False, {"b": ["a"], "a": ["c"], "c": []}, "/dependencies(0)/id"),
        ("c", ["c"], False, {"c": []}, "/dependencies(0)/id"),
        ("c", ["a", "b"], False, {"a": [], "b": ["a"]}, None),
    ],
)
def test_dependency_rules(
    job_id: str, deps: list[str], schedules: bool, graph: dict[str, list[str]], path: str | None
) -> None:
    violation = dependency_violation(job_id, deps, schedules, graph)
    assert (violation[0] if violation else None) == path


def test_run_ids_have_metronomes_shape() -> None:
    assert run_id(utc("2016-07-15T13:02:59"), "ab-cd-34HX") == "20160715130259d34HX"
