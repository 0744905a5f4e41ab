"""``pallet bench invariants``, and the test of the same name: the whole master as a state
machine under random use (hypothesis, stateful): apps created,
scaled, changed and deleted, agents starting, failing and losing tasks, nodes lost and
back, the master restarted from its store; a fake clock, no sleeping. After every step:

- no node holds more than its capacity (cpu, memory) in live tasks;
- the scheduler's view agrees with the task table;
- every task moved only along the master's transition table;
- no app the master acknowledged is lost across a restart;
- a controller pass never takes an app above ``instances x (1 + maximumOverCapacity)``
  live tasks (one more when the bounds meet), unless it was there already.

The test runs ~2,400 steps; ``pallet bench invariants`` as many as asked. Hypothesis
comes with the test extra; in-process, no I/O but a memory store.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from pallet.control import Control, ControlConfig, RunSpec, TaskGoal, TaskState
from pallet.control.reconcile import alive, capacity
from pallet.model import Node, NodeState, TaskStatus, parse_port_ranges
from pallet.model.app import AppSpec, UpgradeSpec
from pallet.model.app_run import run_spec
from pallet.model.clock import FakeClock
from pallet.model.transitions import Step, step
from pallet.store import open_store


def app(spec: AppSpec) -> tuple[AppSpec, RunSpec]:
    """An app as its record keeps it: the spec less its count (that is ``run``'s), and
    its ``RunSpec`` (what a reload computes from the stored spec)."""
    return replace(spec, instances=0), run_spec(spec)


def node(i: int, cpu: int = 2000, mem: int = 1024) -> Node:
    return Node.build(
        f"node-{i}",
        cpu_milli=cpu,
        mem_mib=mem,
        disk_mib=1000,
        hostname=f"127.0.0.{i + 1}",
        ports=parse_port_ranges(f"[{31000 + 100 * i}-{31099 + 100 * i}]"),
    )


STRATEGIES = [(1.0, 1.0), (0.5, 0.0), (1.0, 0.0), (0.0, 1.0), (0.5, 0.5)]


class Master(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = FakeClock()
        self.store = self.run(open_store("memory://", clock=self.clock, expiry_interval=None))
        self.ids = itertools.count()
        self.control = self._control()
        self.acked: set[str] = set()
        self.apps = itertools.count()
        self.nodes: list[str] = []
        self.seen: dict[str, TaskState] = {}
        self.bad_moves: list[tuple[str, TaskState, TaskState]] = []
        self.over: list[tuple[str, int, int]] = []

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def _control(self) -> Control:
        ctl = Control(
            self.store,
            ControlConfig(heartbeat_grace=5.0, seed=1, node_gone_after=None),
            clock=self.clock,
            new_id=lambda: f"id{next(self.ids)}",
        )
        self.run(ctl.load())
        return ctl

    def teardown(self) -> None:
        self.run(self.control.stop())
        self.run(self.store.close())
        self.loop.close()

    # ------------------------------------------------------------ the operator

    @precondition(lambda self: len(self.nodes) < 4)
    @rule()
    def add_node(self) -> None:
        i = len(self.nodes)
        record = self.run(
            self.control.nodes.register(node(i, cpu=2000, mem=1024), f"http://n{i}", "boot")
        )
        self.nodes.append(record.id)

    @rule(instances=st.integers(0, 4), strategy=st.sampled_from(STRATEGIES))
    def create_app(self, instances: int, strategy: tuple[float, float]) -> None:
        app_id = f"/a{next(self.apps)}"
        definition, run = app(
            AppSpec(
                id=app_id,
                cmd="sleep 600",
                instances=instances,
                cpus=0.3,
                mem=128,
                port_definitions=(),
                upgrade_strategy=UpgradeSpec(strategy[0], strategy[1]),
            )
        )
        self.run(self.control.apps.create(app_id, definition, run))
        self.acked.add(app_id)

    def _some_app(self, data: st.DataObject) -> str | None:
        apps = sorted(self.control.state.apps)
        return data.draw(st.sampled_from(apps)) if apps else None

    @rule(data=st.data(), instances=st.integers(0, 5))
    def scale(self, data: st.DataObject, instances: int) -> None:
        app_id = self._some_app(data)
        if app_id is None:
            return
        record = self.control.state.apps[app_id]  # the count lives in run only
        run = replace(record.run, instances=instances)
        self.run(self.control.apps.update(app_id, record.definition, run, force=True))

    @rule(data=st.data())
    def change_config(self, data: st.DataObject) -> None:
        app_id = self._some_app(data)
        if app_id is None:
            return
        record = self.control.state.apps[app_id]
        definition, run = app(replace(record.spec, cmd=f"sleep {600 + next(self.ids)}"))
        self.run(self.control.apps.update(app_id, definition, run, force=True))

    @rule(data=st.data())
    def delete_app(self, data: st.DataObject) -> None:
        app_id = self._some_app(data)
        if app_id is None:
            return
        self.run(self.control.apps.delete(app_id, force=True))
        self.acked.discard(app_id)

    # ------------------------------------------------------------ the loops and the agents

    @rule()
    def controller_and_scheduler(self) -> None:
        state = self.control.state
        before = {
            a.id: sum(1 for t in state.app_tasks(a.id) if alive(t, a, self.clock()))
            for a in state.apps.values()
        }
        self.run(self.control.controller.reconcile())
        self.run(self.control.scheduler.run_once())
        for app in state.apps.values():
            if app.id not in before:
                continue
            now = sum(1 for t in state.app_tasks(app.id) if alive(t, app, self.clock()))
            _, most = capacity(app)
            if now > max(most, before[app.id]):
                self.over.append((app.id, now, most))

    def _report(self, task_id: str, state: TaskState) -> None:
        task = self.control.state.tasks.get(task_id)
        if task is None:
            return
        update = TaskStatus(task_id, state, task.seq + 1)
        self.run(self.control.nodes.statuses(task.node_id, [update]))

    @rule(data=st.data())
    def agents_move(self, data: st.DataObject) -> None:
        """Each agent moves its tasks one step: staged ones start or run, killed ones end,
        and now and then a running one fails."""
        self._agents(lambda: data.draw(st.integers(0, 9)) == 0)

    @rule()
    def settle(self) -> None:
        """A few rounds of the loops and the agents, nothing failing."""
        for _ in range(3):
            self.controller_and_scheduler()
            self._agents(lambda: False)

    def _agents(self, fails: Callable[[], bool]) -> None:
        for task in list(self.control.state.tasks.values()):
            if self.control.state.nodes[task.node_id].state is not NodeState.ACTIVE:
                continue  # a lost node's agent says nothing
            if task.goal is TaskGoal.KILL:
                self._report(task.id, TaskState.KILLED)
            elif task.state is TaskState.STAGING:
                self._report(task.id, TaskState.RUNNING)
            elif task.state is TaskState.RUNNING and fails():
                self._report(task.id, TaskState.FAILED)

    @precondition(lambda self: len(self.nodes) > 1)
    @rule(data=st.data())
    def a_node_goes_silent(self, data: st.DataObject) -> None:
        silent = data.draw(st.sampled_from(self.nodes))
        self.clock.advance(3)
        for n in self.nodes:
            if n != silent:
                self.run(self.control.nodes.heartbeat(n, {}))
        self.clock.advance(3)
        self.run(self.control.nodes.check())

    @rule()
    def every_node_heartbeats(self) -> None:
        self.clock.advance(1)
        for n in self.nodes:
            self.run(self.control.nodes.heartbeat(n, {}))

    @rule()
    def time_passes(self) -> None:
        self.clock.advance(2)

    @rule()
    def restart_the_master(self) -> None:
        self.run(self.control.stop())
        self.control = self._control()
        for n in self.nodes:  # agents speak to the new master
            self.run(self.control.nodes.heartbeat(n, {}))

    # ------------------------------------------------------------ invariants

    @invariant()
    def no_node_is_overcommitted(self) -> None:
        state = self.control.state
        for node_id, record in state.nodes.items():
            used = [state.tasks[t].resources for t in state.tasks_by_node.get(node_id, ())]
            assert sum(r.cpu_milli for r in used) <= record.node.capacity.cpu_milli, node_id
            assert sum(r.mem_mib for r in used) <= record.node.capacity.mem_mib, node_id

    @invariant()
    def the_view_agrees_with_the_tasks(self) -> None:
        state = self.control.state
        slots = {r.view_id for r in state.reservations.values() if r.node_id in state.view.row}
        assert set(state.view.tasks) == set(state.tasks) | slots

    @invariant()
    def tasks_move_only_along_the_table(self) -> None:
        for tid, task in self.control.state.tasks.items():
            before = self.seen.get(tid)
            if before is not None and before is not task.state:
                # the master's own moves: a node lost (UNREACHABLE), a node back (the task
                # resumes where it was); agents' reports go through the table
                doubts = (TaskState.UNREACHABLE, TaskState.UNKNOWN)
                master_only = task.state in doubts or before in doubts
                if not master_only and step(before, task.state) is Step.ILLEGAL:
                    self.bad_moves.append((tid, before, task.state))
            self.seen[tid] = task.state
        assert not self.bad_moves

    @invariant()
    def acknowledged_apps_survive(self) -> None:
        assert self.acked <= set(self.control.state.apps)

    @invariant()
    def never_above_the_over_capacity(self) -> None:
        assert not self.over


def run_invariants(steps: int = 20_000, per_example: int = 50) -> dict[str, Any]:
    """Run the machine for about ``steps`` steps; the count, and the first violation
    found (None: none)."""
    import time

    from hypothesis.stateful import run_state_machine_as_test

    examples = max(1, steps // per_example)
    start = time.perf_counter()
    violation = None
    try:
        run_state_machine_as_test(  # type: ignore[no-untyped-call,unused-ignore]
            Master,
            settings=settings(
                max_examples=examples,
                stateful_step_count=per_example,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            ),
        )
    except AssertionError as e:
        violation = str(e).splitlines()[0] if str(e) else "an invariant failed"
    return {
        "steps": examples * per_example,
        "violations": 0 if violation is None else 1,
        "first_violation": violation,
        "seconds": round(time.perf_counter() - start, 1),
    }
