"""The ``pallet`` policy's stranded-GPU model (``pallet_feed``): pooled CPU while the mix
asks less CPU per GPU than the cluster has, per-shape feed (spread) and a CPU floor as
it asks more; expected numbers worked out in the comments."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from factories import node, req
from pallet.core import ClusterView
from pallet.core.frag import Workload
from pallet.core.policies.pallet import PalletPolicy
from pallet.core.policies.pallet_feed import SCARCITY, Feed, scarcity_knobs
from pallet.core.policies.pallet_mix import Mix

RNG = np.random.default_rng(0)
# two GPU shapes with equal GPU demand: 4 and 16 CPU milli per GPU milli; mean 10
SHAPES = {(4000, 1000): 1.0, (16000, 1000): 1.0}


def _arr(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float64)


def test_knobs_ramp_with_scarcity() -> None:
    s = SCARCITY
    assert scarcity_knobs(0.5) == (0.0, 0.0)
    assert scarcity_knobs(s["spread_from"]) == (0.0, 0.0)
    assert scarcity_knobs(s["spread_to"])[0] == 1.0
    assert scarcity_knobs(s["floor_from"])[1] == 0.0
    assert scarcity_knobs(s["floor_to"]) == (1.0, 1.0)
    knobs = [scarcity_knobs(r) for r in np.linspace(0.9, 1.2, 31)]
    assert all(a <= b for (a, _), (b, _) in itertools.pairwise(knobs))
    assert all(a <= b for (_, a), (_, b) in itertools.pairwise(knobs))


def test_pooled_feed_is_cpu_and_memory_over_the_mean() -> None:
    feed = Feed.build(10.0, 2.0, SHAPES)
    assert feed.pooled and (feed.sigma, feed.kappa) == (0.0, 0.0)
    # 8000 idle: 60,000 CPU feed 6000, 20,000 MiB feed 10,000 -> 2000 stranded;
    # 4000 MiB feed 2000 -> 6000 stranded; nothing idle -> nothing stranded
    got = feed.stranded(_arr(60000, 60000, 0), _arr(20000, 4000, 0), _arr(8000, 8000, 0))
    assert got.tolist() == [2000.0, 6000.0, 0.0]


def test_spread_feeds_each_shape_at_its_own_rate() -> None:
    feed = Feed.build(10.0, 0.0, SHAPES, sigma=1.0)
    assert (feed.sigma, feed.kappa) == (1.0, 0.0)
    # 8000 idle, 80,000 CPU: pooled, 80,000 / 10 = 8000 fed, none stranded; per shape,
    # the lean shape feeds min(8000, 80,000 / 4) = 8000 and the hungry one
    # 80,000 / 16 = 5000, half each: 6500 fed, 1500 stranded
    assert feed.stranded(_arr(80000), _arr(0), _arr(8000)).tolist() == [1500.0]
    # with CPU to spare (160,000) both shapes feed every idle GPU
    assert feed.stranded(_arr(160000), _arr(0), _arr(8000)).tolist() == [0.0]
    # halfway (sigma 0.5): rates 7 and 13; 91,000 CPU feeds 13,000 and 7000: 500 stranded
    half = Feed.build(10.0, 0.0, SHAPES, sigma=0.5)
    assert half.stranded(_arr(91000), _arr(0), _arr(8000)).tolist() == [500.0]


def test_floor_feeds_nothing_from_crumbs() -> None:
    feed = Feed.build(10.0, 0.0, SHAPES, sigma=1.0, kappa=1.0)
    assert (feed.sigma, feed.kappa) == (1.0, 1.0)
    # 1000 idle, 6000 CPU: the lean shape (4000 a task) feeds min(1000, 1500) = 1000;
    # the hungry one (16,000 a task) cannot start: 0. Half each: 500 stranded.
    assert feed.stranded(_arr(6000), _arr(0), _arr(1000)).tolist() == [500.0]
    # 3000 CPU: not even the lean shape starts: all 1000 stranded
    assert feed.stranded(_arr(3000), _arr(0), _arr(1000)).tolist() == [1000.0]


def test_mix_counts_cpu_of_tasks_without_gpus() -> None:
    workload = Workload(
        shapes=((4000, 1000, 1, ""), (16000, 500, 2, ""), (8000, 0, 0, "")),
        weights=(0.25, 0.25, 0.5),
    )
    mix = Mix.of_workload(workload)
    # GPU tasks: 0.25 * (4000 + 16000) CPU over 0.25 * (1000 + 1000) GPU milli = 10;
    # all tasks add 0.5 * 8000 CPU: (5000 + 4000) / 500 = 18
    assert mix.cpu_per_gpu == pytest.approx(10.0)
    assert mix.all_cpu_per_gpu == pytest.approx(18.0)
    assert mix.gpu_shapes == {(4000, 1000): 0.25, (16000, 1000): 0.25}
    learned = Mix()
    learned.add_all([req(cpu=4000, gpu=1000), req(cpu=2000, mem=10), req(cpu=6000, mem=30)])
    assert learned.plain == (2, 8000, 40, 0)
    assert learned.gpu_shapes == {(4000, 1000): 1.0}


def _scarce_view() -> ClusterView:
    # L: 6 cores per GPU (4 GPUs), R: 30 cores per GPU (2 GPUs)
    return ClusterView(
        [
            node("L", cpu=24000, mem=1 << 20, gpus=4, model="A"),
            node("R", cpu=60000, mem=1 << 20, gpus=2, model="A"),
        ]
    )


# GPU tasks of 4 and 16 CPU per GPU (mean 10), and as much CPU again without GPUs:
# (0.25 * 20,000 + 0.5 * 10,000) / (0.25 * 2000) = 20 CPU milli per GPU milli against
# the cluster's 84,000 / 6000 = 14: R = 1.43, full spread and floor
SCARCE = Workload(
    shapes=((4000, 1000, 1, ""), (16000, 1000, 1, ""), (10000, 0, 0, "")),
    weights=(0.25, 0.25, 0.5),
)


def test_scarce_mix_sends_hungry_gpu_tasks_to_cpu_rich_nodes() -> None:
    policy = PalletPolicy(SCARCE)
    view = _scarce_view()
    hungry, lean = req(cpu=16000, gpu=1000), req(cpu=4000, gpu=1000)
    policy.prepare(view, [hungry, lean])
    assert (policy._feed.sigma, policy._feed.kappa) == (1.0, 1.0)
    rows = np.arange(2, dtype=np.int64)
    # L before: lean feeds min(4000, 24,000 / 4) = 4000, hungry 24,000 / 16 = 1500:
    # 2750 fed, 1250 stranded. After the hungry task: 3000 idle, 8000 CPU: lean 2000,
    # hungry 0 (below its floor of 16,000): 1000 fed, 2000 stranded: +750, step
    # trunc(100 / (1 + e^0.75)) = 32. R before: both feed 2000, none stranded; after:
    # 1000 idle, 44,000 CPU, none stranded: +0, step 50.
    h = policy.score(view, hungry, rows, RNG)
    assert [math.floor(x) for x in h] == [32, 50]
    # The lean task on L: 3000 idle, 20,000 CPU: lean 3000, hungry 1250: 875 stranded,
    # -375, step trunc(100 / (1 + e^-0.375)) = 59; on R: 1000 idle, 56,000 CPU: +0, 50.
    lean_scores = policy.score(view, lean, rows, RNG)
    assert [math.floor(x) for x in lean_scores] == [59, 50]


def test_abundant_mix_keeps_the_pooled_estimate() -> None:
    plenty = Workload(shapes=((4000, 1000, 1, ""), (16000, 1000, 1, "")), weights=(0.5, 0.5))
    policy = PalletPolicy(plenty)
    view = _scarce_view()
    policy.prepare(view, [req(cpu=4000, gpu=1000)])
    # 10 CPU milli per GPU milli against 14: R = 0.71
    assert policy._feed.pooled
