"""The work-conserving allocation ceiling: hand-worked sequences, and a search over
every work-conserving placement of small sequences that must never beat the bound."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brute import Cluster, least_idle_anywhere
from pallet.core.policies import POLICY_NAMES, make_policy
from pallet.sim.ceiling import device_patterns, work_conserving_ceiling
from pallet.sim.packing import ceiling, run_packing
from pallet.sim.traces.openb import OpenbPod, read_openb_nodes, read_openb_pods


def test_patterns_are_the_maximal_multisets():
    # 810 + 190 left: nothing else fits; 470 + 470 (60 left); 470 + 160 * 3 (50 left);
    # 160 * 6 (40 left); 810 + 160 (30 left).
    assert sorted(device_patterns([160, 470, 810])) == sorted(
        [(1, 0, 1), (0, 2, 0), (3, 1, 0), (6, 0, 0)]
    )


def pod(milli: int, count: int = 1, cpu: int = 1000, mem: int = 0, spec: str = "") -> OpenbPod:
    return OpenbPod("p", cpu, mem, count, milli, spec, 0)


@pytest.mark.parametrize(
    ("devices", "pods", "idle"),
    [
        # Both 810s arrive while a device is free, so both are placed; the 1-GPU pod then
        # fits nowhere: 2 x 190 idle.
        (2, [pod(810), pod(810), pod(1000)], 380),
        # A 150 share later fills one 190 hole: 190 + 40.
        (2, [pod(810), pod(810), pod(150)], 230),
        # Whole GPUs only: what did not arrive is idle.
        (3, [pod(1000), pod(1000, count=2)], 0),
        (3, [pod(1000)], 2000),
        # 500 + 500 share a device; the 1-GPU pod takes the other one.
        (2, [pod(500), pod(500), pod(1000)], 0),
        # The second 810 asks more CPU than the first: it is not forced (CPU may have
        # run out where the room was), and a 1-GPU pod asking less CPU than the first
        # 810 could take that room later: 190 idle at least.
        (2, [pod(810, cpu=1000), pod(810, cpu=4000), pod(1000, cpu=500)], 190),
        # A share naming a GPU model is never forced.
        (1, [pod(810, spec="V100"), pod(1000)], 0),
    ],
)
def test_hand_worked_sequences(devices: int, pods: list[OpenbPod], idle: int) -> None:
    bound = work_conserving_ceiling(pods, devices * 1000)
    assert bound.idle_milli == pytest.approx(idle, abs=1e-6)
    assert bound.alloc_pct == pytest.approx(100 * (1 - idle / (devices * 1000)))


def least_idle(nodes: tuple[int, ...], pods: tuple[OpenbPod, ...]) -> int:
    """Idle milli of the best work-conserving placement on one-device nodes with the
    given CPUs, by trying every one: a pod goes to any node where its GPU and CPU fit,
    and fails only when there is none."""

    @functools.cache
    def best(k: int, free: tuple[tuple[int, int], ...]) -> int:
        if k == len(pods):
            return sum(gpu for gpu, _ in free)
        p = pods[k]
        options = {(g, c) for g, c in free if g >= p.gpu_milli and c >= p.cpu_milli}
        if not options:
            return best(k + 1, free)
        results = []
        for option in options:
            after = list(free)
            after[after.index(option)] = (option[0] - p.gpu_milli, option[1] - p.cpu_milli)
            results.append(best(k + 1, tuple(sorted(after))))
        return min(results)

    return best(0, tuple(sorted((1000, cpu) for cpu in nodes)))


@settings(max_examples=300, deadline=None)
@given(
    nodes=st.lists(st.sampled_from([1000, 2000, 3000]), min_size=1, max_size=3),
    pods=st.lists(
        st.builds(
            pod,
            st.sampled_from([150, 250, 300, 470, 500, 650, 810, 1000]),
            cpu=st.sampled_from([500, 1000, 2000]),
        ),
        min_size=1,
        max_size=8,
    ),
)
def test_no_work_conserving_placement_beats_the_bound(
    nodes: list[int], pods: list[OpenbPod]
) -> None:
    bound = work_conserving_ceiling(pods, len(nodes) * 1000)
    assert bound.idle_milli <= least_idle(tuple(nodes), tuple(pods)) + 1e-6


GOLDEN = Path(__file__).parent / "data"


@pytest.mark.parametrize("seed", [42, 43, 44])
def test_every_policy_stays_under_the_ceiling_of_its_arrivals(seed: int) -> None:
    # The golden trace (16 nodes, 64 GPUs; shares of 810, 470, 320, 230 with CPU from
    # 2000 to 12000, some naming GPU models; its arrivals stop near 95 %), each policy
    # run under the protocol.
    nodes = read_openb_nodes(GOLDEN / "golden_nodes.csv")
    pods = read_openb_pods(GOLDEN / "golden_pods.csv")
    bounds = {p: ceiling(nodes, pods, seed, p).alloc_pct for p in (80, 90)}
    assert 50 < bounds[90] < 100  # the bound says something on this trace
    for name in POLICY_NAMES:
        run = run_packing(nodes, pods, lambda w, n=name: make_policy(n, w), name, seed)
        for percent, bound in bounds.items():
            assert run.alloc_at(percent) <= bound + 0.005, (name, percent)


# ----------------------------------------------------------------------------- brute force
# Every work-conserving placement of small sequences on small clusters with memory, GPU
# models, several devices per node, multi-GPU pods, pods without GPUs and nodes short
# of CPU: the bound (which sees only the pods and the cluster's GPU milli) must never
# promise less idle milli than the best of them.


def _instance(seed: int) -> tuple[Cluster, tuple[OpenbPod, ...]]:
    rng = np.random.default_rng(seed)
    nodes = tuple(
        (
            int(rng.choice([1000, 2000, 4000])),
            int(rng.choice([1000, 3000])),
            str(rng.choice(["A", "B"])),
            (1000,) * int(rng.choice([1, 2])),
        )
        for _ in range(int(rng.integers(1, 4)))
    )
    pods = []
    for i in range(int(rng.integers(2, 8))):
        kind = rng.choice(["share", "share", "whole", "cpu"])
        cpu = int(rng.choice([500, 1000, 2000]))
        mem = int(rng.choice([0, 500, 1500]))
        spec = str(rng.choice(["", "", "A", "B", "A|B"])) if kind != "cpu" else ""
        if kind == "share":
            milli, count = int(rng.choice([150, 300, 470, 650, 810])), 1
        elif kind == "whole":
            milli, count = 1000, int(rng.choice([1, 1, 2]))
        else:
            milli, count = 0, 0
        pods.append(OpenbPod(f"p{i}", cpu, mem, count, milli, spec, 0))
    return nodes, tuple(pods)


def _tight_instance(seed: int) -> tuple[Cluster, tuple[OpenbPod, ...]]:
    """Fewer shapes, sized so that nodes stop being rich part way: large shares and
    whole GPUs asking about a node's worth of CPU or memory, small pods that fit the
    rest."""
    rng = np.random.default_rng(10_000 + seed)
    nodes = tuple(
        (int(rng.choice([2000, 3000])), int(rng.choice([2000, 3000])), "A", (1000, 1000))
        for _ in range(int(rng.integers(1, 3)))
    )
    pods = []
    for i in range(int(rng.integers(3, 8))):
        kind = rng.choice(["big", "big", "mid", "small", "whole", "cpu"])
        cpu = int(rng.choice([0, 500, 1000, 2000]))
        mem = int(rng.choice([0, 500, 1000, 2000]))
        spec = "A" if kind != "cpu" and rng.random() < 0.2 else ""
        milli, count = {
            "big": (810, 1),
            "mid": (470, 1),
            "small": (150, 1),
            "whole": (1000, 1),
            "cpu": (0, 0),
        }[str(kind)]
        pods.append(OpenbPod(f"p{i}", cpu, mem, count, milli, spec, 0))
    return nodes, tuple(pods)


INSTANCES = [
    # the 470 asks more memory (CPU) than is left while a node is rich, and fails there:
    # one 810 per device, 380 idle (a bound that ignored memory, CPU, would force it: 410)
    (
        ((4000, 2000, "A", (1000, 1000)),),
        (
            OpenbPod("a", 500, 500, 1, 810, "", 0),
            OpenbPod("b", 500, 2000, 1, 470, "", 0),
            OpenbPod("c", 500, 500, 1, 810, "", 0),
        ),
    ),
    (
        ((2000, 4000, "A", (1000, 1000)),),
        (
            OpenbPod("a", 500, 500, 1, 810, "", 0),
            OpenbPod("b", 2000, 500, 1, 470, "", 0),
            OpenbPod("c", 500, 500, 1, 810, "", 0),
        ),
    ),
    *(_instance(seed) for seed in range(300)),
    *(_tight_instance(seed) for seed in range(300)),
]


def _violations() -> list[tuple[float, int]]:
    found = []
    for nodes, pods in INSTANCES:
        total = sum(len(devices) * 1000 for *_, devices in nodes)
        bound = work_conserving_ceiling(pods, total).idle_milli
        best = least_idle_anywhere(nodes, pods)
        if bound > best + 1e-6:
            found.append((bound, best))
    return found


def test_no_placement_beats_the_bound_with_memory_models_and_devices() -> None:
    assert _violations() == []


@pytest.mark.parametrize(
    ("rule", "broken"),
    [
        # a share that names a GPU model counted as sure to be placed
        ("_forced", lambda p, rich: p.cpu_milli <= rich[0] and p.memory_mib <= rich[1]),
        # memory ignored: a share asking more memory than a rich node has counted as placed
        ("_forced", lambda p, rich: p.cpu_milli <= rich[0] and not p.gpu_spec),
        # no pod finds a room once no node is rich
        ("_escapes", lambda p, rich: False),
        # CPU ignored: a share asking more CPU than a rich node has counted as placed
        ("_forced", lambda p, rich: p.memory_mib <= rich[1] and not p.gpu_spec),
    ],
)
def test_a_broken_rule_is_caught(monkeypatch: pytest.MonkeyPatch, rule: str, broken) -> None:  # type: ignore[no-untyped-def]
    import pallet.sim.ceiling as ceiling_module

    monkeypatch.setattr(ceiling_module, rule, broken)
    assert _violations(), f"brute force did not catch a broken {rule}"
