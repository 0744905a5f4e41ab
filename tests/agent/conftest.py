"""Fixtures for the agent's tests: spec factory, real executors, root-only skipping."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pallet.agent import Executor, TaskSpec, detect_isolator
from pallet.agent.cgroups import own_hierarchies

IS_ROOT = os.geteuid() == 0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason="needs root (cgroups); CI runs these as root")
    here = Path(__file__).parent
    for item in items:
        if "root" in item.keywords and not IS_ROOT and here in item.path.parents:
            item.add_marker(skip)


def make_spec(task_id: str = "t1", **fields: object) -> TaskSpec:
    """A valid spec; ``cmd`` defaults to ``true``."""
    if "args" not in fields:
        fields.setdefault("cmd", "true")
    return TaskSpec(task_id, **fields)  # type: ignore[arg-type]


def wait_for(predicate: Callable[[], object], timeout: float = 10.0, what: str = "") -> object:
    """Poll a real process's effect until ``predicate`` is truthy (real-process tests only)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(0.01)


@pytest.fixture
def agent_id() -> str:
    return f"test-{os.getpid()}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def executor(tmp_path: Path, agent_id: str) -> Iterator[Executor]:
    """A real executor with the best isolation this machine allows; on teardown every
    task is killed and the agent's cgroups must be gone."""
    ex = Executor(tmp_path / "sandboxes", agent_id=agent_id, node_id="node-1", host="host-1")
    bases = [p.parent for p in ex.isolator.paths("x").values()]
    yield ex
    ex.close()
    leftovers = [b for b in bases if b.exists()]
    assert not leftovers, f"cgroups left behind: {leftovers}"


@pytest.fixture
def limited_executor(tmp_path: Path, agent_id: str) -> Iterator[Executor]:
    """Like ``executor`` but fails (rather than skips) when cgroups cannot be used."""
    isolator = detect_isolator(agent_id)
    assert isolator.kind != "none", f"root but no cgroups: {isolator.warning}"
    ex = Executor(tmp_path / "sandboxes", agent_id=agent_id, isolator=isolator)
    yield ex
    ex.close()


def own_cgroup_dirs() -> dict[str, Path]:
    """This process's cgroup directory per v1 controller (and 'unified' for v2)."""
    dirs: dict[str, Path] = {}
    for h in own_hierarchies():
        for name in h.controllers or {"unified"}:
            dirs[name] = h.directory
    return dirs
