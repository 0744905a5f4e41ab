"""Pod lists scaled for sweeps: the spec parser, CPU-only demand dropped or drawn again,
CPU requests scaled, and pods no node could hold."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pallet.model import Node
from pallet.model.errors import ValidationError
from pallet.sim.sweep import (
    SweepPoint,
    cpu_only_scaled,
    parse_sweep,
    pod_cpu_scaled,
    scaled_list,
    too_big_for_every_node,
)
from pallet.sim.traces.openb import OpenbPod


def pod(name: str, cpu: int, gpus: int = 0, milli: int = 0, mem: int = 1024, spec: str = ""):
    return OpenbPod(name, cpu, mem, gpus, milli, spec, 0)


BASE = [
    pod("a", 4000, 1, 500),
    pod("b", 8000),
    pod("c", 2000, 1, 1000),
    pod("d", 16000),
    pod("e", 12000),
    pod("f", 6000, 2, 1000),
    pod("g", 4000),
]
CPU_ONLY = 40_000  # b + d + e + g


def test_parse_grid_and_list():
    points = parse_sweep("cpu-only=0:3:0.25")
    assert [p.factor for p in points] == [i / 4 for i in range(13)]
    assert {p.kind for p in points} == {"cpu-only"}
    assert [p.factor for p in parse_sweep("pod-cpu=1,1.5,1")] == [1.0, 1.5]  # repeats once
    assert parse_sweep(" cpu-only = 2 ") == [SweepPoint("cpu-only", 2.0)]
    assert SweepPoint("cpu-only", 0.5).label == "cpu-only=0.5"


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("cpu-only", "is not KIND=LO:HI:STEP"),
        ("memory=1:2:1", "is not KIND=LO:HI:STEP"),
        ("cpu-only=", "is not LO:HI:STEP"),
        ("cpu-only=0:3", "is not LO:HI:STEP"),
        ("cpu-only=0:3:0.25:1", "is not LO:HI:STEP"),
        ("cpu-only=a:b:c", "is not LO:HI:STEP"),
        ("cpu-only=1,x", "is not LO:HI:STEP"),
        ("cpu-only=3:0:0.25", "need LO <= HI and a positive STEP"),
        ("cpu-only=0:3:0", "need LO <= HI and a positive STEP"),
        ("cpu-only=0:3:-1", "need LO <= HI and a positive STEP"),
        ("cpu-only=0:inf:1", "must be finite"),
        ("cpu-only=nan", "must be finite"),
        ("cpu-only=0:1000:0.01", "at most 1000"),
        ("cpu-only=-1", "out of range"),
        ("cpu-only=5000", "out of range"),
        ("pod-cpu=0,1", "above 0"),
    ],
)
def test_bad_specs_name_the_option(spec: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_sweep(spec, "--sweep")
    assert info.value.field == "--sweep"
    assert fragment in info.value.message


def _cpu_only(pods: list[OpenbPod]) -> list[OpenbPod]:
    return [p for p in pods if not p.num_gpu]


def test_gpu_pods_are_kept_in_order_after_the_cpu_only_ones():
    for factor in (0.0, 0.5, 1.0, 2.5):
        out = cpu_only_scaled(BASE, factor, seed=3)
        n = len(_cpu_only(out))
        assert all(not p.num_gpu for p in out[:n])
        assert [(p.cpu_milli, p.gpu_milli) for p in out[n:]] == [
            (p.cpu_milli, p.gpu_milli) for p in BASE if p.num_gpu
        ]
        assert [p.name for p in out] == [f"openb-pod-{i:04d}" for i in range(len(out))]


def test_factor_zero_drops_and_one_keeps_every_cpu_only_pod():
    assert _cpu_only(cpu_only_scaled(BASE, 0.0)) == []
    kept = cpu_only_scaled(BASE, 1.0, seed=7)
    assert sorted(p.cpu_milli for p in _cpu_only(kept)) == [4000, 8000, 12000, 16000]


def test_above_one_every_original_stays_and_draws_repeat_them():
    out = _cpu_only(cpu_only_scaled(BASE, 2.5, seed=1))
    counts = Counter(p.cpu_milli for p in out)
    assert all(counts[c] >= 1 for c in (4000, 8000, 12000, 16000))
    assert set(counts) == {4000, 8000, 12000, 16000}
    # the draw stops where the total is closest to the target (100 cores): within half
    # of the largest pod
    assert abs(sum(p.cpu_milli for p in out) - 2.5 * CPU_ONLY) <= 8000


@settings(max_examples=60, deadline=None)
@given(
    factor=st.floats(0, 4),
    seed=st.integers(0, 2**32 - 1),
    sizes=st.lists(st.integers(1, 40_000), min_size=1, max_size=30),
)
def test_the_total_is_the_closest_the_draw_allows(factor: float, seed: int, sizes: list[int]):
    base = [pod(f"p{i}", c) for i, c in enumerate(sizes)] + [pod("g", 1000, 1, 500)]
    first = _cpu_only(cpu_only_scaled(base, factor, seed))
    again = _cpu_only(cpu_only_scaled(base, factor, seed))
    assert first == again  # same seed, same list
    target = factor * sum(sizes)
    total = sum(p.cpu_milli for p in first)
    # stopping one pod earlier or taking the next one is never closer
    if first:
        assert abs(total - target) <= abs(total - first[-1].cpu_milli - target)
    assert total >= target or (target - total) <= max(sizes) / 2 + 1
    # a smaller factor's list is a prefix of a larger one's
    more = _cpu_only(cpu_only_scaled(base, factor + 0.5, seed))
    assert [p.line for p in more[: len(first)]] == [p.line for p in first]
    assert [p.cpu_milli for p in more[: len(first)]] == [p.cpu_milli for p in first]


def test_no_cpu_only_pods_to_draw_from():
    gpu_only = [p for p in BASE if p.num_gpu]
    assert cpu_only_scaled(gpu_only, 0.0) == cpu_only_scaled(gpu_only, 0.0)
    with pytest.raises(ValueError, match="no CPU asked by pods without GPUs"):
        cpu_only_scaled(gpu_only, 1.0)


def test_pod_cpu_scales_every_request():
    out = pod_cpu_scaled(BASE, 1.5)
    assert sorted(p.cpu_milli for p in out) == sorted(round(1.5 * p.cpu_milli) for p in BASE)
    assert scaled_list(BASE, SweepPoint("pod-cpu", 0.0001))[0].cpu_milli == 1  # at least 1
    assert scaled_list(BASE, SweepPoint("cpu-only", 1.0), 7) == cpu_only_scaled(BASE, 1.0, 7)


def test_a_pod_bigger_than_every_node_is_found():
    nodes = [
        Node.build("n1", cpu_milli=16_000, mem_mib=4096, gpus=2, gpu_model="T4"),
        Node.build("n2", cpu_milli=32_000, mem_mib=2048),
    ]
    assert too_big_for_every_node(BASE[:5], nodes) is None
    assert too_big_for_every_node([pod("x", 32_001)], nodes) is not None
    assert too_big_for_every_node([pod("x", 1000, mem=8192)], nodes) is not None
    assert too_big_for_every_node([pod("x", 1000, 4, 1000)], nodes) is not None
    assert too_big_for_every_node([pod("x", 1000, 1, 500, spec="V100")], nodes) is not None
    assert too_big_for_every_node([pod("x", 1000, 1, 500, spec="V100|T4")], nodes) is None
    # a GPU pod needs a node with GPUs, even if another node has more CPU
    assert too_big_for_every_node([pod("x", 20_000, 1, 1000)], nodes) is not None
