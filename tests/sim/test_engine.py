"""The discrete-event engine: ordering, the virtual clock, ``until``."""

from __future__ import annotations

import pytest

from pallet.sim.engine import Engine


def test_events_come_out_by_time_then_priority_then_insertion():
    engine: Engine[str] = Engine()
    engine.at(5, "late")
    engine.at(1, "arrive-a", priority=1)
    engine.at(1, "depart", priority=0)  # same time, lower priority: first
    engine.at(1, "arrive-b", priority=1)  # same time and priority: after arrive-a
    engine.at(0, "first")
    seen: list[tuple[float, str]] = []
    engine.run(lambda eng, ev: seen.append((eng.now, ev)))
    assert seen == [(0, "first"), (1, "depart"), (1, "arrive-a"), (1, "arrive-b"), (5, "late")]
    assert engine.handled == 5 and len(engine) == 0


def test_handlers_schedule_more_and_the_clock_only_moves_forward():
    engine: Engine[int] = Engine(start=10)
    engine.at(10, 3)
    times: list[float] = []

    def handle(eng: Engine[int], countdown: int) -> None:
        times.append(eng.now)
        if countdown:
            eng.after(2.5, countdown - 1)

    engine.run(handle)
    assert times == [10, 12.5, 15, 17.5]
    with pytest.raises(ValueError, match=r"clock is already at 17\.5"):
        engine.at(17, 0)


def test_run_until_stops_the_clock_and_keeps_later_events():
    engine: Engine[str] = Engine()
    for t in (1, 2, 3, 4):
        engine.at(t, f"e{t}")
    seen: list[str] = []
    engine.run(lambda eng, ev: seen.append(ev), until=2.5)
    assert seen == ["e1", "e2"] and engine.now == 2.5 and engine.peek_time() == 3
    engine.run(lambda eng, ev: seen.append(ev), until=10)
    assert seen == ["e1", "e2", "e3", "e4"] and engine.now == 10 and engine.peek_time() is None


def test_pop_advances_the_clock():
    engine: Engine[str] = Engine()
    engine.at(7, "x")
    assert engine.pop() == (7, "x") and engine.now == 7
