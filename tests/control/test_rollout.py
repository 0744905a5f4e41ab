"""Rolling upgrades driven to the end through the pure ``reconcile_app``: every strategy
pair, broken versions, scale and rollback mid-way, and a stateful property test that the
two capacity bounds hold after every step whatever happens to the tasks."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from pallet.control import AppRecord, TaskGoal, TaskRecord, TaskState
from pallet.control.reconcile import alive, capacity, reconcile_app
from pallet.model import CheckProtocol, HealthCheckSpec, Resources, TaskSpec

from .conftest import run_spec

CHECK = HealthCheckSpec(protocol=CheckProtocol.COMMAND, command="true")


@dataclass
class World:
    """One app's tasks as agents would move them: launched tasks run, then become ready
    (healthy) unless their config is broken; kills end a task."""

    app: AppRecord
    broken: set[str] = field(default_factory=set)
    tasks: dict[str, TaskRecord] = field(default_factory=dict)
    now: float = 1000.0
    ids: itertools.count[int] = field(default_factory=itertools.count)
    worst_ready_shortfall: int = 0
    worst_over: int = 0

    def ready(self) -> int:
        return sum(1 for t in self.tasks.values() if t.goal is TaskGoal.RUN and t.ready)

    def occupied(self) -> int:
        return sum(1 for t in self.tasks.values() if alive(t, self.app, self.now))

    def launch_one(self) -> None:
        i = next(self.ids)
        a = self.app
        self.tasks[f"t{i}"] = TaskRecord(
            id=f"t{i}",
            app_id=a.id,
            node_id="n",
            host="h",
            version=a.version,
            config_version=a.config_version,
            resources=Resources(100, 32),
            ports=(),
            requested_ports=(),
            gpus=(),
            staged_at=self.now,
            launch=TaskSpec(f"t{i}", cmd="true", health_checks=(CHECK,)),
        )

    def step(self, stuck: bool = False) -> None:
        """One controller pass, with the bounds checked against what it decided."""
        before_ready = self.ready()
        before_alive = self.occupied()
        decision = reconcile_app(self.app, self.tasks.values(), self.now, stuck=stuck)
        for tid in decision.kill:
            self.tasks[tid] = self.tasks[tid].with_(goal=TaskGoal.KILL)
        for _ in range(decision.launch):
            self.launch_one()
        min_ready, max_live = capacity(self.app)
        if not stuck:
            # kills never take the ready count below the minimum (or below what it was)
            shortfall = min(min_ready, before_ready) - self.ready()
            self.worst_ready_shortfall = max(self.worst_ready_shortfall, shortfall)
        # launches never take the live count above the maximum (or above what it was)
        over = self.occupied() - max(max_live, before_alive)
        self.worst_over = max(self.worst_over, over)
        self.now += 1

    def agents(self) -> None:
        """Every task moves one state on: staged -> running -> healthy (or failing for
        a broken config, which then fails); killed tasks end."""
        for tid, t in list(self.tasks.items()):
            if t.goal is TaskGoal.KILL or t.state is TaskState.FAILED:
                del self.tasks[tid]
            elif t.state is not TaskState.RUNNING:
                self.tasks[tid] = t.with_(state=TaskState.RUNNING, started_at=self.now)
            elif t.config_version in self.broken:
                self.tasks[tid] = t.with_(state=TaskState.FAILED)
            else:
                self.tasks[tid] = t.with_(healthy=True)

    def change(self, config: str, **run: object) -> None:
        """A new version; a new config when ``config`` differs from the current one."""
        a = self.app
        self.app = replace(
            a, version=f"{a.version}+", config_version=config, run=replace(a.run, **run)
        )

    def settled(self) -> bool:
        a = self.app
        live = [t for t in self.tasks.values() if t.goal is TaskGoal.RUN]
        return (
            len(live) == a.instances
            and all(t.ready and t.config_version == a.config_version for t in live)
            and len(self.tasks) == a.instances
        )

    def converge(self, limit: int = 200) -> int:
        for rounds in range(limit):
            if self.settled():
                return rounds
            self.step()
            self.agents()
        raise AssertionError(f"not converged after {limit} rounds: {self.tasks}")


def world(instances: int, min_health: float, over: float) -> World:
    spec = run_spec(instances, minimum_health_capacity=min_health, maximum_over_capacity=over)
    w = World(AppRecord("/web", "v1", "v1", "v1", {}, spec))
    w.converge()
    return w


@pytest.mark.parametrize(
    ("min_health", "over", "peak_live", "least_ready"),
    [
        # Marathon's default: all 10 new start beside the 10 old, old go as new are ready
        (1.0, 1.0, 20, 10),
        # half may go down, none over: 5 old killed at once, then one for one
        (0.5, 0.0, 10, 5),
        # none may go down, none over: Marathon allows one over capacity
        (1.0, 0.0, 11, 10),
        # all may go, double capacity: every old task killed at once, 10 new at once
        (0.0, 1.0, 20, 0),
        # both 0: old all go, new start as they end
        (0.0, 0.0, 10, 0),
    ],
)
def test_each_strategy_keeps_its_bounds(
    min_health: float, over: float, peak_live: int, least_ready: int
) -> None:
    w = world(10, min_health, over)
    peak, least = 0, 10
    w.change("v2")
    for _ in range(200):
        if w.settled():
            break
        w.step()
        peak, least = max(peak, w.occupied()), min(least, w.ready())
        w.agents()
        least = min(least, w.ready())
    assert w.settled()
    assert all(t.config_version == "v2" for t in w.tasks.values())
    assert (w.worst_ready_shortfall, w.worst_over) == (0, 0)
    assert peak == peak_live
    assert least == least_ready


def test_a_broken_version_never_takes_the_old_tasks_down() -> None:
    # the default strategy: none of the 4 old tasks may go before a new one is ready,
    # and new ones never get ready
    w = world(4, 1.0, 1.0)
    w.broken.add("v2")
    w.change("v2")
    for _ in range(50):
        w.step()
        w.agents()
    old = [t for t in w.tasks.values() if t.config_version == "v1"]
    assert len(old) == 4 and all(t.ready and t.goal is TaskGoal.RUN for t in old)
    assert w.worst_ready_shortfall == 0


def test_half_health_with_a_broken_version_keeps_half() -> None:
    w = world(4, 0.5, 0.0)
    w.broken.add("v2")
    w.change("v2")
    for _ in range(50):
        w.step()
        w.agents()
    assert w.ready() == 2


def test_rollback_mid_way_returns_to_the_old_tasks_without_going_below_minimum() -> None:
    w = world(4, 0.5, 0.0)
    w.change("v2")
    for _ in range(3):
        w.step()
        w.agents()
    assert {t.config_version for t in w.tasks.values()} == {"v1", "v2"}
    # rolling back is a change to the first config again: its tasks count as current
    w.change("v1")
    w.converge()
    assert {t.config_version for t in w.tasks.values()} == {"v1"}
    assert w.worst_ready_shortfall == 0


def test_scale_down_during_an_upgrade_kills_old_first() -> None:
    w = world(6, 1.0, 1.0)
    w.change("v2")
    w.step()  # 6 new launched beside 6 old
    w.agents()
    w.agents()  # new ones ready: 12 ready
    w.change("v2", instances=3)
    decision = reconcile_app(w.app, w.tasks.values(), w.now)
    killed = [w.tasks[t] for t in decision.kill]
    # 12 ready, 3 must stay: the 6 old and 3 surplus new go
    assert sum(1 for t in killed if t.config_version == "v1") == 6
    assert sum(1 for t in killed if t.config_version == "v2") == 3
    w.converge()
    assert len(w.tasks) == 3


def test_stuck_upgrade_replaces_one_at_a_time() -> None:
    w = world(3, 1.0, 1.0)
    w.change("v2")
    decision = reconcile_app(w.app, w.tasks.values(), w.now, stuck=True)
    assert len(decision.kill) == 1


class Rollouts(RuleBasedStateMachine):
    """Random spec changes, scaling, strategy changes, failures and agent progress: after
    every controller pass neither bound is broken, and when the dust settles the app
    runs exactly ``instances`` ready tasks of its current config."""

    def __init__(self) -> None:
        super().__init__()
        self.w = world(5, 1.0, 1.0)
        self.configs = itertools.count(2)

    @rule()
    def controller_pass(self) -> None:
        self.w.step()

    @rule()
    def agents_move(self) -> None:
        self.w.agents()

    @rule(broken=st.booleans())
    def new_config(self, broken: bool) -> None:
        config = f"v{next(self.configs)}"
        if broken:
            self.w.broken.add(config)
        self.w.change(config)

    @rule(data=st.data())
    def back_to_an_earlier_config(self, data: st.DataObject) -> None:
        configs = sorted({t.config_version for t in self.w.tasks.values()})
        if configs:
            self.w.change(data.draw(st.sampled_from(configs)))

    @rule(instances=st.integers(0, 8))
    def scale(self, instances: int) -> None:
        self.w.change(self.w.app.config_version, instances=instances)

    @rule(
        min_health=st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]),
        over=st.sampled_from([0.0, 0.2, 0.5, 1.0]),
    )
    def strategy(self, min_health: float, over: float) -> None:
        self.w.change(
            self.w.app.config_version,
            minimum_health_capacity=min_health,
            maximum_over_capacity=over,
        )

    @precondition(lambda self: bool(self.w.tasks))
    @rule(data=st.data())
    def a_task_fails(self, data: st.DataObject) -> None:
        tid = data.draw(st.sampled_from(sorted(self.w.tasks)))
        del self.w.tasks[tid]

    @invariant()
    def bounds_hold(self) -> None:
        assert self.w.worst_ready_shortfall == 0
        assert self.w.worst_over == 0

    def teardown(self) -> None:
        # whatever happened, a good config converges
        if self.w.app.config_version in self.w.broken:
            self.w.change("final")
        self.w.converge()
        assert self.w.worst_ready_shortfall == 0 and self.w.worst_over == 0


Rollouts.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestRollouts = Rollouts.TestCase
