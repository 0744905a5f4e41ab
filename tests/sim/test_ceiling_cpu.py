"""The CPU-aware allocation ceiling: hand-worked sequences, and a search over every
work-conserving placement of small sequences on CPU-scarce clusters that must never
allocate more than the bound; a deliberately broken rule must be caught."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from brute import Cluster, least_idle_anywhere
from pallet.core.policies import POLICY_NAMES, make_policy
from pallet.sim.ceiling_cpu import (
    NodeKind,
    _before_tau,
    _shape,
    cpu_aware_ceiling,
    memory_closing_cpu,
)
from pallet.sim.packing import ceiling, cpu_ceiling, run_packing
from pallet.sim.sweep import cpu_only_scaled
from pallet.sim.traces.openb import OpenbPod, read_openb_nodes, read_openb_pods


def pod(cpu: int, mem: int = 0, milli: int = 0, count: int = 0, spec: str = "") -> OpenbPod:
    return OpenbPod("p", cpu, mem, count if milli else 0, milli, spec, 0)


def kinds(nodes: Cluster) -> list[NodeKind]:
    return [(cpu, mem, len(devices), model) for cpu, mem, model, devices in nodes]


def most(nodes: Cluster, pods: tuple[OpenbPod, ...]) -> int:
    total = sum(len(devices) * 1000 for *_, devices in nodes)
    return total - least_idle_anywhere(nodes, pods)


@pytest.mark.parametrize(
    ("nodes", "pods", "allocated"),
    [
        # Both CPU-only pods fit when they come, so both are placed: no CPU is left
        # for the GPU pod. A bound that let CPU-only pods fail at will says 1000.
        (
            ((4000, 4000, "A", (1000,)),),
            (pod(2000), pod(2000), pod(1000, milli=1000, count=1)),
            0,
        ),
        # The second CPU-only pod arrives when the first has closed the node to it
        # (1000 CPU left): it fails, and the GPU pod fits.
        (
            ((4000, 4000, "A", (1000,)),),
            (pod(3000), pod(2000), pod(1000, milli=1000, count=1)),
            1000,
        ),
        # Memory closes the node: 3000 MiB of 4000 used, the second pod asks 2000.
        (
            ((8000, 4000, "A", (1000,)),),
            (pod(1000, mem=3000), pod(1000, mem=2000), pod(6000, milli=1000, count=1)),
            1000,
        ),
    ],
)
def test_hand_worked_sequences(nodes: Cluster, pods: tuple[OpenbPod, ...], allocated: int) -> None:
    assert most(nodes, pods) == allocated  # the brute force agrees with the comment
    bound = cpu_aware_ceiling(pods, kinds(nodes), windows=len(pods))
    assert bound.allocated_milli == pytest.approx(allocated, abs=1e-6)


def test_memory_closes_a_node_only_with_the_cpu_its_pods_bring() -> None:
    # A node of 10 cores and 10 GiB is closed to a (4 cores, 4 GiB) pod by more than 6
    # GiB used: two 3.5 GiB pods of 1 core each do it with 2 cores.
    node = (10_000, 10_240, 0, "")
    q = (4000, 4096, 0, 0, "")
    shapes = Counter({(1000, 3584, 0, 0, ""): 2, (2000, 1024, 0, 0, ""): 5})
    assert memory_closing_cpu(node, q, shapes) == 2000
    # with one memory-heavy pod only: 3.5 + 3 x 1 GiB, 7 cores
    assert memory_closing_cpu(node, q, Counter({**shapes, (1000, 3584, 0, 0, ""): 1})) == 7000
    # with nothing but small pods, memory cannot close it
    assert memory_closing_cpu(node, q, Counter({(2000, 1024, 0, 0, ""): 5})) is None


def test_a_node_must_be_closed_when_tau_comes_not_when_its_window_ends() -> None:
    # Windows [A B C] [D Q G] of one 4-core node: A-D (0.5 core each) are placed, Q
    # (2 cores) finds 2 cores free and is placed too, and the GPU pod finds none.
    # With tau_Q in the second window and Q failed, the node must hold more than 2
    # cores before Q: only A-D (2 cores) came before it. Counting the GPU pod that
    # arrives after Q as closing the node would allow 1000.
    nodes = ((4000, 4000, "A", (1000,)),)
    small = pod(500)
    pods = (small, small, small, small, pod(2000), pod(1000, milli=1000, count=1))
    assert most(nodes, pods) == 0
    assert cpu_aware_ceiling(pods, kinds(nodes), windows=2).allocated_milli == pytest.approx(0.0)


def test_the_cpu_before_tau_is_bounded_by_lines_over_the_q_pods_placed() -> None:
    # CPU per pod 1, 2, Q=4, 1, Q=4, 3: before the first Q 3, before the second 8,
    # the whole window 15
    pods = [pod(1000), pod(2000), pod(4000), pod(1000), pod(4000), pod(3000)]
    arrived = np.concatenate([[0], np.cumsum([p.cpu_milli for p in pods])]).astype(float)
    shapes = [_shape(p) for p in pods]
    lines = _before_tau(arrived, shapes, _shape(pod(4000)), 0, len(pods))
    for n, cpu in enumerate((3000, 8000, 15000)):
        assert min(a + b * n for a, b in lines) >= cpu - 1e-9
    assert min(a + b * 0 for a, b in lines) == pytest.approx(3000)  # tight at the hull
    # no q pod in the window: the whole window
    assert _before_tau(arrived, shapes, _shape(pod(9000)), 1, 4) == [(7000.0, 0.0)]


# ----------------------------------------------------------------------------- brute force


def _instance(seed: int) -> tuple[Cluster, tuple[OpenbPod, ...]]:
    """Nodes short of CPU or memory beside their GPUs; CPU-only pods of several sizes,
    shares, whole and multi-GPU pods, some naming a GPU model."""
    rng = np.random.default_rng(20_000 + seed)
    nodes = tuple(
        (
            int(rng.choice([2000, 3000, 4000])),
            int(rng.choice([2000, 4000])),
            str(rng.choice(["A", "B"])),
            (1000,) * int(rng.choice([1, 2])),
        )
        for _ in range(int(rng.integers(1, 4)))
    )
    pods = []
    for i in range(int(rng.integers(3, 8))):
        kind = str(rng.choice(["cpu", "cpu", "cpu", "share", "share", "whole"]))
        cpu = int(rng.choice([500, 1000, 1500, 2000, 3000]))
        mem = int(rng.choice([0, 500, 1000, 2500]))
        spec = str(rng.choice(["", "", "", "A", "A|B"])) if kind != "cpu" else ""
        if kind == "share":
            milli, count = int(rng.choice([150, 300, 470, 650, 810])), 1
        elif kind == "whole":
            milli, count = 1000, int(rng.choice([1, 1, 2]))
        else:
            milli, count = 0, 0
            cpu = max(cpu, 1000)
        pods.append(OpenbPod(f"p{i}", cpu, mem, count, milli, spec, 0))
    return nodes, tuple(pods)


INSTANCES = [_instance(seed) for seed in range(250)]


def _violations(windows: Callable[[int], int] = lambda n: n) -> list[tuple[float, int]]:
    found = []
    for nodes, pods in INSTANCES:
        best = most(nodes, pods)
        try:
            bound = cpu_aware_ceiling(
                pods, kinds(nodes), windows=windows(len(pods))
            ).allocated_milli
        except RuntimeError:  # infeasible: the rules exclude even the real placements
            bound = -1.0
        if bound < best - 1e-6:
            found.append((bound, best))
    return found


def test_the_instances_make_cpu_matter() -> None:
    # On enough of them the bound is below what the GPU pods ask and the cluster has:
    # CPU-only pods that had to be placed decide.
    tighter = 0
    for nodes, pods in INSTANCES:
        total = sum(len(devices) * 1000 for *_, devices in nodes)
        room = min(total, sum(p.gpu_total for p in pods))
        tighter += cpu_aware_ceiling(pods, kinds(nodes)).allocated_milli < room - 1e-6
    assert tighter >= len(INSTANCES) // 5


def test_no_placement_beats_the_bound() -> None:
    assert _violations() == []


@pytest.mark.parametrize("windows", [2, 3])
def test_coarse_windows_stay_valid(windows: int) -> None:
    assert _violations(lambda n: windows) == []


@pytest.mark.parametrize(
    ("rule", "broken"),
    [
        # memory never closes a node: only CPU does
        ("memory_closing_cpu", lambda kind, q, shapes: None),
        # a pod asking as much CPU as q fails after tau_q whatever memory it asks
        ("_at_least", lambda r, q: r[0] >= q[0]),
        # every share holds a device of its own
        ("_devices", lambda s: s[2] if s[2] and s[3] >= 1000 else (1 if s[2] else 0)),
    ],
)
def test_a_broken_rule_is_caught(monkeypatch: pytest.MonkeyPatch, rule: str, broken) -> None:  # type: ignore[no-untyped-def]
    import pallet.sim.ceiling_cpu as module

    monkeypatch.setattr(module, rule, broken)
    assert _violations(), f"brute force did not catch a broken {rule}"


@pytest.mark.parametrize(
    "broken",
    [
        # the node may be closed by anything that arrived in tau's window
        lambda whole: [(0.0, 0.0)],
        # off by one q pod: tau_q at or before the n-th placed q pod, not the (n+1)-th
        lambda whole: [(a - b, b) for a, b in whole],
    ],
    ids=["nothing-before-tau", "off-by-one-q-pod"],
)
def test_a_broken_cpu_before_tau_is_caught(monkeypatch: pytest.MonkeyPatch, broken) -> None:  # type: ignore[no-untyped-def]
    import pallet.sim.ceiling_cpu as module

    right = module._before_tau
    monkeypatch.setattr(module, "_before_tau", lambda *args: broken(right(*args)))
    assert _violations(lambda n: 2), "brute force did not catch a broken _before_tau"


def test_every_policy_stays_under_the_cpu_ceiling_where_it_binds() -> None:
    # The golden trace with eight times its CPU-only work: CPU runs out before GPUs
    # do, and the CPU-aware bound is well under the share-based one at 90 %.
    data = Path(__file__).parent / "data"
    nodes = read_openb_nodes(data / "golden_nodes.csv")
    pods = cpu_only_scaled(read_openb_pods(data / "golden_pods.csv"), 8)
    bounds = {p: cpu_ceiling(nodes, pods, 42, p).alloc_pct for p in (80, 90)}
    assert bounds[90] < ceiling(nodes, pods, 42, 90).alloc_pct - 3
    for name in POLICY_NAMES:
        run = run_packing(nodes, pods, lambda w, n=name: make_policy(n, w), name, 42)
        for percent, bound in bounds.items():
            assert run.alloc_at(percent) <= bound + 0.005, (name, percent)
