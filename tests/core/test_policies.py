"""Each peer policy's arithmetic, table-driven; the expected numbers are worked out in
the comments from the formulas cited in each policy's docstring."""

from __future__ import annotations

import numpy as np
import pytest

from factories import node, req
from pallet.core import ClusterView, make_policy
from pallet.core.frag import Workload
from pallet.core.policies.fgd import FGD
from pallet.model import Placement

RNG = np.random.default_rng(0)


def _scores(name: str, view: ClusterView, request, workload=None) -> list[float]:  # type: ignore[no-untyped-def]
    policy = make_policy(name, workload)
    policy.prepare(view, [request])
    rows = np.arange(len(view), dtype=np.int64)
    return [float(x) for x in policy.score(view, request, rows, RNG)]


def _cpu_mem_view() -> ClusterView:
    # n0: 4000m / 8192 MiB with 1000m / 2048 MiB already allocated; n1: the same, empty.
    view = ClusterView([node("n0", cpu=4000, mem=8192), node("n1", cpu=4000, mem=8192)])
    view.assume(Placement(req("/other", cpu=1000, mem=2048, id="x"), "n0"))
    return view


def test_k8s_default() -> None:
    # n0: requested 2000/4096 -> least (50 + 50)//2 = 50; fractions .5/.5 -> balanced 100.
    # n1: requested 1000/2048 -> least (75 + 75)//2 = 75; balanced 100.
    assert _scores("k8s-default", _cpu_mem_view(), req(cpu=1000, mem=2048)) == [150.0, 175.0]
    # Unbalanced request on n1: 1000/4096 -> least (75 + 50)//2 = 62; fractions .25/.5,
    # std .125 -> trunc(87.5) = 87.  Total 149.
    assert _scores("k8s-default", _cpu_mem_view(), req(cpu=1000, mem=4096))[1] == 149.0


def test_k8s_most_allocated() -> None:
    # n0: 2000*100//4000 = 50, 4096*100//8192 = 50 -> 50; n1: 25, 25 -> 25.
    assert _scores("k8s-most", _cpu_mem_view(), req(cpu=1000, mem=2048)) == [50.0, 25.0]


def test_nomad_binpack_and_spread() -> None:
    # n0 after placing 1000/2048: free .5/.5 -> 20 - 2*10**.5 = 13.6754 -> /18 = 0.75975.
    # n1: free .75/.75 -> 20 - 2*10**.75 = 8.7532 -> 0.48629.
    got = _scores("nomad-binpack", _cpu_mem_view(), req(cpu=1000, mem=2048))
    assert got == pytest.approx([0.75975, 0.48629], abs=1e-5)
    # spread: 2*10**.5 - 2 = 4.3246 -> 0.24025; 2*10**.75 - 2 = 9.2468 -> 0.51371.
    got = _scores("nomad-spread", _cpu_mem_view(), req(cpu=1000, mem=2048))
    assert got == pytest.approx([0.24025, 0.51371], abs=1e-5)


def test_nomad_samples_log2_nodes() -> None:
    policy = make_policy("nomad-binpack")
    assert policy.sample_size(12_500) == 14  # ceil(log2 12500) = 14
    assert policy.sample_size(3) == 2


def _gpu_view() -> ClusterView:
    # A: 64 cores, 4 GPUs; B: 128 cores, 8 GPUs -> MaxCpu 128000, MaxGpu 8000 (as openb).
    return ClusterView(
        [
            node("A", cpu=64000, mem=262144, gpus=4, model="V100"),
            node("B", cpu=128000, mem=262144, gpus=8, model="G3"),
        ]
    )


def test_dotprod() -> None:
    # A: (64000/128000)(16000/128000) + (4000/8000)(1000/8000) = .125 -> 100(1-.0625) -> 93
    # B: (1)(.125) + (1)(.125) = .25 -> 100(1-.125) = 87.5 -> 87
    assert _scores("dotprod", _gpu_view(), req(cpu=16000, mem=1, gpu=1000)) == [93.0, 87.0]


def test_bestfit() -> None:
    # A: .5(48000/128000) + .5(3000/8000) = .375 -> trunc(62.5) = 62
    # B: .5(112000/128000) + .5(7000/8000) = .875 -> trunc(12.5) = 12
    assert _scores("bestfit", _gpu_view(), req(cpu=16000, mem=1, gpu=1000)) == [62.0, 12.0]


def test_gpu_packing() -> None:
    view = _gpu_view()
    share = req(cpu=1000, mem=1, gpu=300)
    # all idle: A max(33-4, 4) = 29; B max(33-8, 8) = 25
    assert _scores("gpu-packing", view, share) == [29.0, 25.0]
    view.assume(Placement(req(cpu=1, mem=1, gpu=500, id="s"), "A", gpus=((0, 500),)))
    # A shares device 0 (idle 500): 100 - (500*100//1000)//10 = 95
    assert _scores("gpu-packing", view, share)[0] == 95.0
    # A whole GPU on a used node: max(50 - 1, 33) = 49
    assert _scores("gpu-packing", view, req(cpu=1, mem=1, gpu=1000))[0] == 49.0
    # share too big for device 0 (600 > 500): takes a fully idle device -> 49
    assert _scores("gpu-packing", view, req(cpu=1, mem=1, gpu=600))[0] == 49.0
    # CPU-only tasks score 0 everywhere
    assert _scores("gpu-packing", view, req(cpu=1, mem=1)) == [0.0, 0.0]


def test_gpu_clustering() -> None:
    view = _gpu_view()
    share = req(cpu=1000, mem=1, gpu=300)
    # fresh: A 25*(8000-4000)//8000 = 12, +25 (no GPU tasks) = 37; B 0 + 25 = 25
    assert _scores("gpu-clustering", view, share) == [37.0, 25.0]
    view.assume(Placement(req(cpu=1, mem=1, gpu=500, id="s"), "A", gpus=((0, 500),)))
    # A holds only shares: 25*4500//8000 = 14, +75 -> 89
    assert _scores("gpu-clustering", view, share)[0] == 89.0
    # a whole-GPU task on A (holds another shape only): 14 + 0
    assert _scores("gpu-clustering", view, req(cpu=1, mem=1, gpu=1000))[0] == 14.0


def _two_gpu_node() -> ClusterView:
    return ClusterView([node("g", cpu=4000, mem=8192, gpus=2, model="T4")])


def test_fgd_fragment_and_scores() -> None:
    # One typical shape: 1000m CPU, 500 milli of one GPU.
    w = Workload(shapes=((1000, 500, 1, ""),), weights=(1.0,))
    view = _two_gpu_node()
    # Fresh node: both devices >= 500, nothing too small -> F = 0.
    # 300 on a device leaves 700 >= 500 -> F' = 0 -> trunc(100 sigmoid(0)) = 50.
    assert _scores("fgd", view, req(cpu=1000, mem=1, gpu=300), w) == [50.0]
    # 600 leaves 400 < 500 -> F' = 400 -> trunc(100 sigmoid(-0.4)) = trunc(40.13) = 40.
    assert _scores("fgd", view, req(cpu=1000, mem=1, gpu=600), w) == [40.0]
    view.assume(Placement(req(cpu=0, mem=1, gpu=600, id="p"), "g", gpus=((1, 600),)))
    # Idle (1000, 400): F = 400. 300 on device 1 -> (1000, 100): F' = 100, delta +300
    # -> trunc(100 sigmoid(.3)) = 57; on device 0 -> (700, 400): F' = 400 -> 50. Best: 57.
    policy = FGD(w)
    policy.prepare(view, [])
    r = req(cpu=1000, mem=1, gpu=300)
    assert float(policy.score(view, r, np.array([0]), RNG)[0]) == 57.0
    assert policy.choose_gpus(view, r, 0, RNG) == ((1, 300),)


def test_fgd_counts_all_idle_gpu_as_fragment_for_cpu_only_shapes() -> None:
    # Shapes: CPU-only (weight .5) and a 500-milli share (weight .5). Fresh node:
    # F = .5 * 2000 (all idle milli) + .5 * 0 = 1000. A CPU-only task that leaves
    # 500m CPU (< 1000m the share needs) makes the share not fit: F' = .5*2000 + .5*2000
    # = 2000 -> delta -1000 -> trunc(100 sigmoid(-1)) = 26.
    w = Workload(shapes=((2000, 0, 0, ""), (1000, 500, 1, "")), weights=(0.5, 0.5))
    assert _scores("fgd", _two_gpu_node(), req(cpu=3500, mem=1), w) == [26.0]
    # Leaving 1000m keeps the share fitting: F' = F -> 50.
    assert _scores("fgd", _two_gpu_node(), req(cpu=3000, mem=1), w) == [50.0]


def test_workload_typical_shapes_cover_95_percent() -> None:
    shapes = [(1, 0, 0, "")] * 60 + [(2, 0, 0, "")] * 36 + [(3, 0, 0, "")] * 4
    w = Workload.from_shapes(shapes)
    # 60 + 36 = 96 >= 95 -> two shapes kept, renormalised over 96.
    assert w.shapes == ((1, 0, 0, ""), (2, 0, 0, ""))
    assert w.weights == pytest.approx((60 / 96, 36 / 96))


def test_random_and_first_fit_only_pick_feasible_nodes() -> None:
    from pallet.core import schedule

    view = ClusterView([node(f"n{i}", cpu=1000 if i % 2 else 100) for i in range(20)])
    for name in ("random", "first-fit"):
        plan = schedule(
            [req(cpu=500, mem=1) for _ in range(5)],
            view.copy(),
            make_policy(name),
            np.random.default_rng(1),
        )
        assert all(int(p.node_id[1:]) % 2 for p in plan.placements)
