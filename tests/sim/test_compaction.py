"""Cell compaction on small hand-made instances with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from pallet.bench.compaction import CompactionRow
from pallet.core.policies import POLICY_NAMES
from pallet.model import Node, PlacementRequest, Resources
from pallet.model.errors import ValidationError
from pallet.sim.compaction import (
    CompactionWorkload,
    compaction_bounds,
    compaction_workloads,
    machine_order,
    percentile_of,
    run_compaction,
)


def hosts(n: int, cpu: int = 4000, mem: int = 8192) -> tuple[Node, ...]:
    return tuple(Node.build(f"m{i}", cpu_milli=cpu, mem_mib=mem) for i in range(n))


def task(i: int, cpu: int, mem: int, gpu: int = 0) -> PlacementRequest:
    return PlacementRequest(f"t{i}", f"app{i}", Resources(cpu, mem, 0, gpu))


# Six identical machines of 4 cpus / 8 GiB. Submitted in order: four small tasks
# (1 cpu, 2 GiB), then one big task (4 cpus, 8 GiB) that needs an empty machine.
# Bounds: 8 cpus and 16 GiB in all -> volume 2; both LPs also say 2 (the big task
# alone on one machine, the four small ones on the other).
SMALL_THEN_BIG = CompactionWorkload(
    "small-then-big",
    hosts(6),
    (*(task(i, 1000, 2048) for i in range(4)), task(4, 4000, 8192)),
)


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        # Packers put the four small tasks on one machine (the fullest scores best;
        # first-fit takes the first machine of its order each time), leaving the
        # second machine empty for the big task: 2.
        ("k8s-most", 2),
        ("bestfit", 2),
        ("first-fit", 2),
        # k8s-default spreads: LeastAllocated prefers the emptiest machine and
        # BalancedAllocation is 100 everywhere (cpu and mem fractions stay equal), so
        # the small tasks go one per machine, lowest rank first. With k <= 4 machines
        # none is left empty; with 5 the fifth is. Probes: 2 fails (shortfall 1
        # machine, step max(1, 2) = 2), 4 fails (step max(2, 2)), 6 fits, 5 fits: 5.
        ("k8s-default", 5),
    ],
)
def test_small_then_big(policy: str, expected: int):
    result = run_compaction(SMALL_THEN_BIG, policy)
    assert (result.machines, result.volume_bound, result.lp_bound) == (expected, 2, 2)
    assert result.config_lp_bound == 2 and result.lower_bound == 2 and result.listed == 6
    probes = {p.machines: p.fits for p in result.trials[0].probes}
    assert probes[expected] and probes.get(expected - 1, False) is False


def test_k8s_default_probe_sequence():
    probes = run_compaction(SMALL_THEN_BIG, "k8s-default").trials[0].probes
    assert [(p.machines, p.fits) for p in probes] == [(2, False), (4, False), (6, True), (5, True)]
    assert probes[0].shortfall == 1  # the big task: one machine's worth of cpu and mem


def test_answer_at_the_bound_needs_one_probe():
    result = run_compaction(SMALL_THEN_BIG, "k8s-most")
    assert [p.machines for p in result.trials[0].probes] == [2]


def test_copies_of_the_list_extend_the_order():
    # Five big tasks on a list of 3 machines: only with a second lap (6 machines).
    big = tuple(task(i, 4000, 8192) for i in range(5))
    one_lap = CompactionWorkload("big", hosts(3), big)
    assert run_compaction(one_lap, "bestfit").machines is None
    two_laps = CompactionWorkload("big", hosts(3), big, laps=2)
    result = run_compaction(two_laps, "bestfit")
    assert (result.machines, result.lp_bound, result.config_lp_bound, result.listed) == (5, 5, 5, 3)
    order = machine_order(two_laps, seed=0)
    assert len(order) == 6 and {n.id for n in order[3:]} == {"m0~2", "m1~2", "m2~2"}


def test_search_starts_at_the_configuration_lp_bound():
    # Twelve tasks of 0.34 cpu on 1-cpu machines: volume and assignment LP say 5
    # (4.08 cpus), but no machine holds three (1.02 cpus), so the configuration LP says 6.
    # Best fit puts two per machine: 6, found by a single probe at the bound (the old
    # start, 5, is never probed: the bound already proves it infeasible).
    w = CompactionWorkload("thirds", hosts(10, cpu=1000), tuple(task(i, 340, 1) for i in range(12)))
    result = run_compaction(w, "bestfit")
    assert (result.volume_bound, result.lp_bound, result.config_lp_bound) == (5, 5, 6)
    assert result.lower_bound == 6 and result.machines == 6
    assert [p.machines for p in result.trials[0].probes] == [6]
    row = CompactionRow(result, 0.0, 0.0).to_json()
    assert (row["config_lp_bound"], row["lower_bound"], row["ratio"]) == (6, 6, 1.0)


def test_machine_order_is_a_seeded_shuffle_shared_by_policies():
    w = CompactionWorkload("w", hosts(20), (task(0, 1, 1),))
    first = [n.id for n in machine_order(w, 3)]
    assert first == [n.id for n in machine_order(w, 3)]
    assert first != [n.id for n in machine_order(w, 4)]
    assert sorted(first) == sorted(n.id for n in w.machines)


def _gpu_workload() -> CompactionWorkload:
    """A little openb-like mix: GPU nodes of two models, whole-GPU, shared-GPU and
    CPU-only tasks, some pinned to a model."""
    rng = np.random.default_rng(7)
    machines = tuple(
        Node.build(f"g{i}", cpu_milli=32_000, mem_mib=131_072, gpus=int(g), gpu_model=m)
        for i, (g, m) in enumerate(
            zip(rng.choice([1, 2, 4, 8], 24), rng.choice(["T4", "V100"], 24), strict=True)
        )
    )
    tasks = []
    for i in range(60):
        kind = rng.integers(4)
        gpu = (0, int(rng.choice([250, 500, 700])), 1000, int(rng.choice([2000, 4000])))[kind]
        models = frozenset({"V100"}) if gpu and rng.random() < 0.2 else frozenset()
        tasks.append(
            PlacementRequest(
                f"p{i}",
                f"p{i}",
                Resources(int(rng.integers(1, 12)) * 1000, int(rng.integers(1, 40)) * 1024, 0, gpu),
                gpu_models=models,
            )
        )
    return CompactionWorkload("gpu-mix", machines, tuple(tasks), laps=3)


def test_bounds_are_below_every_policy():
    w = _gpu_workload()
    bounds = {s: compaction_bounds(w, s) for s in (0, 1)}
    for b in bounds.values():
        assert b.volume is not None and b.lp is not None and b.config_lp is not None
        assert b.volume <= b.lp <= b.config_lp == b.lower
    for policy in POLICY_NAMES:
        result = run_compaction(w, policy, seeds=(0, 1), bounds=bounds)
        for trial in result.trials:
            assert trial.machines is None or trial.bounds.lower <= trial.machines, policy
            if trial.machines is not None:
                fits = {p.machines: p.fits for p in trial.probes}
                assert fits[trial.machines], policy
                if trial.machines > trial.bounds.lower:
                    assert fits[trial.machines - 1] is False, policy


@pytest.mark.parametrize(
    ("values", "pct", "expected"),
    [
        ([5], 90, 5),
        ([3, 1, 2], 50, 2),
        (list(range(1, 12)), 90, 10),  # 11 trials: rank ceil(9.9) = 10
        ([4, None, 2], 90, None),  # a trial that never fit ranks last
        ([4, None, 2], 50, 4),
        ([], 90, None),
    ],
)
def test_percentile_of(values, pct, expected):
    assert percentile_of(values, pct) == expected


def test_percentile_over_seeds_is_reported():
    result = run_compaction(SMALL_THEN_BIG, "k8s-default", seeds=(0, 1, 2), percentile=90)
    assert len(result.trials) == 3 and result.machines == 5 and result.percentile == 90


def test_named_workloads_and_errors():
    assert compaction_workloads() == ("openb-default", "azure-peak")
    with pytest.raises(ValidationError, match="unknown compaction workload"):
        run_compaction("nope", "bestfit")
    with pytest.raises(ValidationError, match="unknown policy"):
        run_compaction(SMALL_THEN_BIG, "nope")
