"""TaskSpec validation, the Mesos task states and their transition table."""

from __future__ import annotations

import pytest

from pallet.agent import TERMINAL, TRANSITIONS, TaskSpec, TaskState
from pallet.agent.status import is_legal
from pallet.model import Resources, ValidationError

from .conftest import make_spec


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"task_id": "../etc"}, "/taskId"),
        ({"task_id": "a/b"}, "/taskId"),
        ({"task_id": ""}, "/taskId"),
        ({"cmd": None}, "/cmd"),  # neither cmd nor args
        ({"cmd": "true", "args": ("true",)}, "/cmd"),  # both
        ({"cmd": "   "}, "/cmd"),
        ({"cmd": None, "args": ("",)}, "/args/0"),
        ({"env": {"A=B": "x"}}, "/env"),
        ({"env": {"A": 1}}, "/env/A"),
        ({"cpu_milli": 0}, "/cpu_milli"),
        ({"mem_mib": 0}, "/mem_mib"),
        ({"mem_mib": 1.5}, "/mem_mib"),
        ({"disk_mib": -1}, "/disk_mib"),
        ({"ports": (0,)}, "/ports/0"),
        ({"ports": (31000, 70000)}, "/ports/1"),
        ({"ports": (31000,), "port_names": ("http", "admin")}, "/portNames"),
        ({"kill_grace_seconds": -1.0}, "/taskKillGracePeriodSeconds"),
    ],
)
def test_invalid_specs_name_the_field(fields: dict[str, object], path: str) -> None:
    base: dict[str, object] = {"task_id": "web.1", "cmd": "true"}
    base.update(fields)
    with pytest.raises(ValidationError) as info:
        TaskSpec(**base)  # type: ignore[arg-type]
    assert info.value.field == path


def test_spec_basics() -> None:
    spec = make_spec(
        "prod_web.1c4f-2", cpu_milli=250, mem_mib=64, disk_mib=10, gpu_milli=500, ports=[31000]
    )
    assert spec.resources == Resources(250, 64, 10, 500)
    assert spec.ports == (31000,)  # lists are frozen to tuples
    assert spec.argv == ("/bin/sh", "-c", "true")
    assert make_spec("x", args=["python3", "-V"]).argv == ("python3", "-V")
    # Hashes by task id, equal only when every field is equal.
    assert hash(spec) == hash(make_spec("prod_web.1c4f-2"))
    assert spec != make_spec("prod_web.1c4f-2")


def _reachable(start: TaskState) -> set[TaskState]:
    seen, frontier = {start}, [start]
    while frontier:
        here = frontier.pop()
        for source, target in TRANSITIONS:
            if source is here and target not in seen:
                seen.add(target)
                frontier.append(target)
    return seen


def test_terminal_states_have_no_way_out_and_every_state_can_end() -> None:
    for source, target in TRANSITIONS:
        assert source not in TERMINAL
        assert source != target
    agent_states = {s for edge in TRANSITIONS for s in edge}
    assert _reachable(TaskState.STAGING) == agent_states
    for state in agent_states:
        assert _reachable(state) & TERMINAL, f"{state} can never end"
    assert not is_legal(TaskState.FINISHED, TaskState.RUNNING)
    assert not is_legal(TaskState.RUNNING, TaskState.KILLED)  # always through KILLING
    assert TaskState.KILLED.is_terminal and not TaskState.KILLING.is_terminal
