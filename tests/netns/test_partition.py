"""A partition between hosts with real network separation (network namespaces, a bridge, a
cut link): agents cut off from the master keep their tasks running, the master marks them
UNREACHABLE and applies each app's ``unreachableStrategy``, and after healing exactly
``instances`` tasks run. One scenario per module; the tests read what it observed."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from pallet.bench.lab_cluster import LabCluster, lab_cluster, poll
from pallet.bench.netns import lab_unavailable

pytestmark = [pytest.mark.root, pytest.mark.slow]

INSTANCES = 3
KEPT = "/kept"  # unreachable tasks replaced after 1 s, forgotten after an hour
DEFAULT = "/default"  # Marathon's default strategy: replaced and forgotten at once


@dataclass
class Observed:
    victim: str = ""
    cut_tasks: dict[str, list[str]] = field(default_factory=dict)
    cut_pids: list[int] = field(default_factory=list)
    pids_alive_in_partition: list[int] = field(default_factory=list)
    node_state_in_partition: str = ""
    running_elsewhere: dict[str, int] = field(default_factory=dict)
    replaced_after_s: float = 0.0
    states_in_partition: dict[str, dict[str, str]] = field(default_factory=dict)
    running_after_heal: dict[str, int] = field(default_factory=dict)
    processes_after_heal: int = 0
    cut_pids_alive_after_heal: list[int] = field(default_factory=list)


def _app(app_id: str, strategy: dict[str, int] | None) -> dict[str, Any]:
    app: dict[str, Any] = {
        "id": app_id,
        "cmd": "sleep 100000",
        "cpus": 0.05,
        "mem": 16,
        "instances": INSTANCES,
    }
    if strategy is not None:
        app["unreachableStrategy"] = strategy
    return app


def _running(cluster: LabCluster, app_id: str, exclude_host: str = "") -> int:
    return sum(
        1
        for t in cluster.tasks(app_id)
        if t["state"] == "TASK_RUNNING" and t["host"] != exclude_host
    )


def _alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        alive.append(pid)
    return alive


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observed]:
    if why := lab_unavailable():
        pytest.fail(f"the partition tests run as root: {why}")  # root is checked before
    seen = Observed()
    with lab_cluster(tmp_path_factory.mktemp("lab"), agents=3) as cluster:
        strategy = {"inactiveAfterSeconds": 1, "expungeAfterSeconds": 3600}
        for app in (_app(KEPT, strategy), _app(DEFAULT, None)):
            response = cluster.api("POST", "/v2/apps", json=app)
            assert response.status_code == 201, response.text
        for app_id in (KEPT, DEFAULT):
            poll(lambda a=app_id: _running(cluster, a) == INSTANCES, 60, f"{app_id} running")
        hosts = [t["host"] for a in (KEPT, DEFAULT) for t in cluster.tasks(a)]
        seen.victim = max(set(hosts), key=hosts.count)  # the agent with the most tasks
        victim = next(h for h in cluster.agent_hosts if h.address == seen.victim)
        seen.cut_tasks = {
            a: [t["id"] for t in cluster.tasks(a) if t["host"] == seen.victim]
            for a in (KEPT, DEFAULT)
        }
        seen.cut_pids = [p.pid for p in cluster.task_processes(victim)]

        cluster.lab.cut(victim)
        cut_at = time.monotonic()
        for app_id in (KEPT, DEFAULT):
            poll(
                lambda a=app_id: _running(cluster, a, seen.victim) == INSTANCES,
                60,
                f"{app_id}'s replacements running",
            )
        seen.replaced_after_s = time.monotonic() - cut_at
        seen.node_state_in_partition = cluster.nodes()[seen.victim]
        seen.running_elsewhere = {a: _running(cluster, a, seen.victim) for a in (KEPT, DEFAULT)}
        seen.states_in_partition = {
            a: {t["id"]: t["state"] for t in cluster.tasks(a)} for a in (KEPT, DEFAULT)
        }
        seen.pids_alive_in_partition = _alive(seen.cut_pids)

        cluster.lab.heal(victim)
        poll(lambda: cluster.nodes()[seen.victim] == "ACTIVE", 60, "the victim back")
        poll(
            lambda: (
                all(
                    len(cluster.tasks(a)) == INSTANCES and _running(cluster, a) == INSTANCES
                    for a in (KEPT, DEFAULT)
                )
                and len(cluster.task_processes()) == 2 * INSTANCES
            ),
            60,
            "exactly the instances after healing",
        )
        seen.running_after_heal = {a: _running(cluster, a) for a in (KEPT, DEFAULT)}
        seen.processes_after_heal = len(cluster.task_processes())
        seen.cut_pids_alive_after_heal = _alive(seen.cut_pids)
        yield seen


def test_partitioned_agent_keeps_its_tasks_running(observed: Observed) -> None:
    assert observed.cut_pids, "no task ran on the agent that was cut off"
    assert observed.pids_alive_in_partition == observed.cut_pids


def test_the_master_marks_the_node_unreachable_and_replaces_its_tasks(observed: Observed) -> None:
    assert observed.node_state_in_partition == "UNREACHABLE"
    assert observed.running_elsewhere == {KEPT: INSTANCES, DEFAULT: INSTANCES}
    kept = observed.states_in_partition[KEPT]
    assert {kept[t] for t in observed.cut_tasks[KEPT]} <= {"TASK_UNREACHABLE"}
    assert all(t in kept for t in observed.cut_tasks[KEPT])  # expungeAfterSeconds: 3600


def test_after_healing_exactly_instances_run(observed: Observed) -> None:
    assert observed.running_after_heal == {KEPT: INSTANCES, DEFAULT: INSTANCES}
    assert observed.processes_after_heal == 2 * INSTANCES
    assert observed.cut_pids_alive_after_heal == []  # the replaced ones were killed


def test_default_strategy_keeps_unreachable_tasks_visible(observed: Observed) -> None:
    states = observed.states_in_partition[DEFAULT]
    assert observed.cut_tasks[DEFAULT]
    assert all(states.get(t) == "TASK_UNREACHABLE" for t in observed.cut_tasks[DEFAULT])


def test_each_task_of_the_cut_agent_had_its_process(observed: Observed) -> None:
    assert sum(len(ids) for ids in observed.cut_tasks.values()) == len(observed.cut_pids)
