"""The agent reads each task spec of the master's desired sets once (pure, no daemon)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pallet.agent.daemon import DesiredSpecs
from pallet.model import TaskSpec

from .conftest import make_spec


def wire(spec: TaskSpec) -> dict[str, Any]:
    """The spec as it arrives: a fresh document each time, as ``r.json()`` gives it."""
    return json.loads(json.dumps(spec.to_json()))


def test_an_unchanged_spec_is_reused_and_a_changed_one_read_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reads: list[str] = []
    original = TaskSpec.from_json

    def counting(doc: Any, path: str = "") -> TaskSpec:
        reads.append(doc["task_id"])
        return original(doc, path)

    monkeypatch.setattr(TaskSpec, "from_json", staticmethod(counting))
    desired = DesiredSpecs()
    a, b = make_spec("a.1"), make_spec("b.1")
    assert desired.read([wire(a)]) == [a]
    assert desired.read([wire(a), wire(b)]) == [a, b]
    assert reads == ["a.1", "b.1"]  # a.1 once
    changed = make_spec("a.1", cmd="sleep 1")
    assert desired.read([wire(changed), wire(b)]) == [changed, b]
    assert reads == ["a.1", "b.1", "a.1"]
    assert desired.read([wire(b)]) == [b]
    assert desired.read([wire(changed)]) == [changed]  # dropped from the set: read anew
    assert reads == ["a.1", "b.1", "a.1", "a.1"]


def test_a_spec_the_agent_cannot_run_is_left_out_every_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    desired = DesiredSpecs()
    good = make_spec("good.1")
    bad = {**wire(make_spec("bad.1")), "cpu_milli": -1}
    for _ in range(2):
        assert desired.read([bad, wire(good)]) == [good]
    assert caplog.text.count("master sent a task this agent cannot run") == 2
