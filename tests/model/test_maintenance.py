"""Mesos's maintenance JSON and rules (model.maintenance) and what they mean for a node at
a given time (core.maintenance), on a fake clock."""

from __future__ import annotations

from typing import Any

import pytest

from pallet.core.maintenance import check_one_window, node_maintenance, resting_state
from pallet.model import NodeState, ValidationError
from pallet.model.maintenance import (
    MachineId,
    MachineMode,
    Maintenance,
    machines_from_json,
    schedule_from_json,
)

S = 1_000_000_000  # nanoseconds in a second
T0 = 1_800_000_000  # a fake "now", in epoch seconds


def window(*machines: dict[str, str], start: int = T0 + 3600, duration: int | None = 600) -> Any:
    unavailability: dict[str, Any] = {"start": {"nanoseconds": start * S}}
    if duration is not None:
        unavailability["duration"] = {"nanoseconds": duration * S}
    return {"machine_ids": list(machines), "unavailability": unavailability}


H1 = {"hostname": "h1", "ip": "10.0.0.1"}
H2 = {"hostname": "h2"}


def test_the_mesos_document_example_reads_and_writes_back_unchanged() -> None:
    doc = {"windows": [window(H1, H2), window({"ip": "10.0.0.3"}, duration=None)]}
    m = Maintenance(schedule_from_json(doc))
    assert m.schedule_json() == doc
    assert Maintenance().schedule_json() == {}  # Mesos writes an empty schedule as {}
    assert Maintenance.from_json(m.to_json()) == m


@pytest.mark.parametrize(
    ("doc", "path", "says"),
    [
        ([], "/", "object"),
        ({"windows": {}}, "/windows", "list"),
        ({"windows": [window()]}, "/windows(0)/machine_ids", "empty"),
        ({"windows": [window({})]}, "/windows(0)/machine_ids(0)", "both 'hostname' and 'ip'"),
        ({"windows": [window({"ip": "10.0.0.999"})]}, "/windows(0)/machine_ids(0)/ip", "not an IP"),
        ({"windows": [window({"hostname": 7})]}, "/windows(0)/machine_ids(0)/hostname", "string"),
        # one machine twice (the hostname is not case-sensitive), also across windows
        ({"windows": [window(H2, {"hostname": "H2"})]}, "/windows(0)/machine_ids(1)", "already"),
        ({"windows": [window(H1), window(H1)]}, "/windows(1)/machine_ids(0)", "already"),
        (
            {"windows": [window(H1, duration=-1)]},
            "/windows(0)/unavailability/duration/nanoseconds",
            "negative",
        ),
        (
            {"windows": [{"machine_ids": [H1]}]},
            "/windows(0)/unavailability",
            "required",
        ),
        (
            {"windows": [{"machine_ids": [H1], "unavailability": {"start": {"nanoseconds": 1.5}}}]},
            "/windows(0)/unavailability/start/nanoseconds",
            "whole number",
        ),
        ({"windows": [], "comment": "x"}, "/comment", "not a field"),
    ],
)
def test_a_bad_schedule_names_the_field(doc: object, path: str, says: str) -> None:
    with pytest.raises(ValidationError) as e:
        schedule_from_json(doc)
    assert e.value.field == path
    assert says in e.value.message


def test_machine_lists_for_down_and_up() -> None:
    assert machines_from_json([H1, H2]) == (MachineId("h1", "10.0.0.1"), MachineId("h2", ""))
    for doc, path in (({}, "/"), ([], "/"), ([H1, {"hostname": "H1", "ip": "10.0.0.1"}], "(1)")):
        with pytest.raises(ValidationError) as e:
            machines_from_json(doc)
        assert e.value.field == path


def test_modes_follow_the_operator_not_the_clock() -> None:
    m = Maintenance(schedule_from_json({"windows": [window(H1, start=T0 + 60, duration=60)]}))
    # Scheduled: DRAINING before, during and after its window (Mesos changes no mode by
    # itself); the phase says where now stands.
    for now, phase in (
        (T0, "pending"),
        (T0 + 60, "active"),
        (T0 + 119.9, "active"),
        (T0 + 120, "past"),
    ):
        at = node_maintenance(m, "H1", "10.0.0.1", now)
        assert (at.mode, at.phase) == (MachineMode.DRAINING, phase)
    # another IP on the same hostname is another machine
    assert node_maintenance(m, "h1", "10.0.0.9", T0).mode is MachineMode.UP
    down = m.with_down((MachineId("h1", "10.0.0.1"),))
    assert node_maintenance(down, "h1", "10.0.0.1", T0 + 1000).mode is MachineMode.DOWN
    up = down.with_up((MachineId("h1", "10.0.0.1"),))
    assert up == Maintenance()


def test_an_indefinite_window_never_passes() -> None:
    m = Maintenance(schedule_from_json({"windows": [window(H2, start=T0, duration=None)]}))
    assert node_maintenance(m, "h2", "10.1.1.1", T0 + 10**9).phase == "active"


def test_the_rules_of_down_up_and_a_new_schedule() -> None:
    m = Maintenance(schedule_from_json({"windows": [window(H1, H2)]}))
    with pytest.raises(ValidationError, match="not part of a maintenance schedule"):
        m.with_down((MachineId("h3", ""),))
    with pytest.raises(ValidationError, match="not in DOWN mode"):
        m.with_up((MachineId("h2", ""),))
    down = m.with_down((MachineId("H2", ""),))
    with pytest.raises(ValidationError, match="is DOWN and must stay"):
        down.with_schedule(schedule_from_json({"windows": [window(H1)]}))
    # up takes the machine out of its window; the window keeps its other machine
    assert down.with_up((MachineId("h2", ""),)).schedule_json() == {"windows": [window(H1)]}


def test_one_node_in_two_windows_is_refused() -> None:
    windows = schedule_from_json({"windows": [window(H2), window({"ip": "10.0.0.2"})]})
    check_one_window(windows, [("node-1", "h1", "10.0.0.2")])  # h2's window is not its
    with pytest.raises(ValidationError) as e:
        check_one_window(windows, [("node-2", "h2", "10.0.0.2")])
    assert e.value.field == "/windows(1)/machine_ids(0)"


@pytest.mark.parametrize(
    ("current", "mode", "drained", "expected"),
    [
        (NodeState.ACTIVE, MachineMode.UP, False, NodeState.ACTIVE),
        (NodeState.ACTIVE, MachineMode.UP, True, NodeState.DRAINING),
        (NodeState.ACTIVE, MachineMode.DRAINING, False, NodeState.DRAINING),
        (NodeState.DRAINING, MachineMode.UP, False, NodeState.ACTIVE),  # left the schedule
        (NodeState.DRAINING, MachineMode.DOWN, True, NodeState.DOWN),
        (NodeState.UNREACHABLE, MachineMode.DRAINING, False, NodeState.UNREACHABLE),
        (NodeState.UNREACHABLE, MachineMode.DOWN, False, NodeState.DOWN),
        (NodeState.GONE, MachineMode.DOWN, False, NodeState.GONE),
        (NodeState.DOWN, MachineMode.UP, False, NodeState.ACTIVE),  # machine/up
        (NodeState.DOWN, MachineMode.UP, True, NodeState.DRAINING),  # the drain outlives it
    ],
)
def test_resting_state(
    current: NodeState, mode: MachineMode, drained: bool, expected: NodeState
) -> None:
    assert resting_state(current, mode, drained) is expected
