"""Lower bounds: the volume, LP and configuration-LP bounds, on instances worked by hand."""

from __future__ import annotations

import pytest

from pallet.model import Node, NodeState, PlacementRequest, Resources
from pallet.sim.bounds import Bounds, compute_bounds, lp_bound, lp_feasible, volume_bound


def node(i: int, cpu: int = 4000, mem: int = 8192, gpus: int = 0, model: str = "") -> Node:
    return Node.build(
        f"n{i}", cpu_milli=cpu, mem_mib=mem, gpus=gpus, gpu_model=model if gpus else ""
    )


def req(i: int, cpu: int, mem: int = 0, gpu: int = 0, models: frozenset[str] = frozenset()):
    return PlacementRequest(f"t{i}", f"t{i}", Resources(cpu, mem, 0, gpu), gpu_models=models)


def test_volume_bound_takes_the_tightest_resource():
    machines = [node(i) for i in range(5)]
    # cpu 9000 needs 3 machines of 4000 (12000); mem 10000 needs 2 of 8192: 3.
    tasks = [req(0, 3000, 5000), req(1, 3000, 5000), req(2, 3000)]
    assert volume_bound(tasks, machines) == 3
    assert volume_bound(tasks, machines[:2]) is None
    assert volume_bound([], machines) == 0


def test_volume_bound_ignores_machines_that_take_no_tasks():
    machines = [Node.build("d", cpu_milli=4000, mem_mib=8192, state=NodeState.DRAINING), node(1)]
    assert volume_bound([req(0, 1000)], machines) == 2


def test_big_tasks_make_the_lp_exceed_the_volume():
    machines = [node(i) for i in range(4)]
    # Three tasks of 2.5 cpus: 7.5 cpus fit the volume of 2 machines (8), but each
    # takes more than half a machine, so no two share one: the LP needs 3.
    tasks = [req(i, 2500) for i in range(3)]
    assert compute_bounds(tasks, machines) == Bounds(volume=2, lp=3, config_lp=3)
    assert not lp_feasible(tasks, machines, 2) and lp_feasible(tasks, machines, 3)


def test_gpu_shares_above_half_a_device_hold_a_device():
    machines = [node(i, cpu=64_000, mem=1 << 20, gpus=2, model="T4") for i in range(3)]
    # Three 0.6-GPU shares: 1800 milli fit one 2-GPU machine by volume, but at most one
    # such share fits per device, so they need 3 devices: 2 machines.
    tasks = [req(i, 1000, 0, 600) for i in range(3)]
    assert compute_bounds(tasks, machines) == Bounds(volume=1, lp=2, config_lp=2)
    # Two 0.6 and two 0.4 shares pair up on two devices: one machine.
    pairs = [req(0, 1000, 0, 600), req(1, 1000, 0, 600), req(2, 1000, 0, 400), req(3, 1, 0, 400)]
    assert compute_bounds(pairs, machines) == Bounds(volume=1, lp=1, config_lp=1)


def test_gpu_models_and_whole_gpus_restrict_the_machines():
    order = [
        node(0, gpus=8, model="T4"),
        node(1, gpus=1, model="A100"),
        node(2, gpus=8, model="A100"),
    ]
    # An A100 task fits machine 1 by model; a 2-GPU A100 task needs machine 2.
    assert compute_bounds([req(0, 100, 0, 1000, frozenset({"A100"}))], order) == Bounds(1, 2, 2)
    assert compute_bounds([req(0, 100, 0, 2000, frozenset({"A100"}))], order) == Bounds(1, 3, 3)
    # A task that fits no machine at all: no bound.
    assert lp_bound([req(0, 100, 0, 4000, frozenset({"V100"}))], order) is None


def test_lp_bound_is_monotone_search_over_the_order():
    # Small machines first, then big ones: the 6-cpu tasks only fit the big ones.
    order = [node(i, cpu=4000) for i in range(3)] + [node(3 + i, cpu=8000) for i in range(3)]
    tasks = [req(i, 6000) for i in range(2)]
    # Volume: 12 cpus fit 3 small machines (12); the LP needs both big ones: k = 5.
    assert compute_bounds(tasks, order) == Bounds(volume=3, lp=5, config_lp=5)


@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_lp_feasibility_grows_with_k(k: int):
    machines = [node(i) for i in range(3)]
    tasks = [req(i, 2500) for i in range(2)]
    assert lp_feasible(tasks, machines, k) == (k >= 2)
