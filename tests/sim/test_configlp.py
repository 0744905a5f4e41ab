"""The configuration-LP bound: hand-worked instances where it beats the volume and
assignment bounds, and properties: it never exceeds a real packing, it dominates the
other bounds, and its device inequalities hold for every real GPU packing."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pallet.core.policies import make_policy
from pallet.core.schedule import schedule
from pallet.core.view import ClusterView
from pallet.model import Node, NodeState, PlacementRequest, Resources
from pallet.sim.bounds import Bounds, compute_bounds, lp_bound, volume_bound
from pallet.sim.configlp import config_lp_bound, config_lp_search
from pallet.sim.devices import device_rows, packs, separating_row
from pallet.sim.pricing import MachineKind, Pricer, TaskKind


def node(i: int, cpu: int = 1000, mem: int = 8192, gpus: int = 0) -> Node:
    return Node.build(
        f"n{i}", cpu_milli=cpu, mem_mib=mem, gpus=gpus, gpu_model="T4" if gpus else ""
    )


def req(i: int, cpu: int, mem: int = 0, gpu: int = 0) -> PlacementRequest:
    return PlacementRequest(f"t{i}", f"t{i}", Resources(cpu, mem, 0, gpu))


@pytest.mark.parametrize(
    ("sizes", "expected"),
    [
        # 5 tasks of 0.6 cpu on 1-cpu machines: the volume says ceil(3.0) = 3; no two
        # share a machine, so the configuration LP (one task per configuration) says 5.
        ([600] * 5, Bounds(volume=3, lp=5, config_lp=5)),
        # 12 tasks of 0.34 cpu: volume ceil(4.08) = 5, and no task is above half a
        # machine, so the assignment LP also says 5. Three need 1.02 cpus, so a machine
        # holds at most two: the configuration LP needs 12 / 2 = 6.
        ([340] * 12, Bounds(volume=5, lp=5, config_lp=6)),
        # 0.5 + 0.5 fills a machine exactly: 4 tasks need 2 (no slack is lost).
        ([500] * 4, Bounds(volume=2, lp=2, config_lp=2)),
        # 0.7, 0.7, 0.3, 0.3: volume 2; {0.7, 0.3} twice is a perfect packing: 2.
        ([700, 700, 300, 300], Bounds(volume=2, lp=2, config_lp=2)),
    ],
)
def test_one_dimension(sizes: list[int], expected: Bounds):
    machines = [node(i) for i in range(len(sizes) + 2)]
    tasks = [req(i, s) for i, s in enumerate(sizes)]
    assert compute_bounds(tasks, machines) == expected


def test_memory_heavy_tasks_strand_cpu():
    # Machines of 4 cpus / 8 GiB; 4 tasks "M" of 1 cpu / 3.5 GiB and 8 tasks "C" of
    # 1 cpu / 1 GiB. Volume: 12 cpus -> 3 machines, 22 GiB -> 3: 3. No task is above
    # half a machine, so the assignment LP says 3 as well. But a machine holds at most
    # 2 M (10.5 GiB > 8), and with 2 M only 1 C (2M + 2C = 9 GiB): the best
    # configurations are {2M, C}, {M, 3C} and {4C}. Duals pi_M = 2/5, pi_C = 1/5 price
    # each at most 1 and the workload at 4 * 2/5 + 8 * 1/5 = 3.2 > 3 machines, so the
    # configuration LP needs 4 ({2M, C} x 2 + {4C} x 2 is a real packing on 4).
    machines = [node(i, cpu=4000, mem=8192) for i in range(6)]
    tasks = [req(i, 1000, 3584) for i in range(4)] + [req(4 + i, 1000, 1024) for i in range(8)]
    assert compute_bounds(tasks, machines) == Bounds(volume=3, lp=3, config_lp=4)


def test_gpu_share_holes_only_small_shares_fill():
    # Machines with 2 GPUs and room to spare. Two shares of 810 and one of 300: 1920
    # milli fit 2000 by volume, and only one device each is held by the 810s, so the
    # assignment LP says 1 machine. But beside an 810 a device has 190 milli left, so the
    # 300 needs a third device: f_200 counts each 810 as a whole device and the 300 as
    # 0.3, 2.3 > 2. The configuration LP needs 2.
    machines = [node(i, cpu=64_000, mem=1 << 20, gpus=2) for i in range(3)]
    tasks = [req(0, 1000, 0, 810), req(1, 1000, 0, 810), req(2, 1000, 0, 300)]
    assert compute_bounds(tasks, machines) == Bounds(volume=1, lp=1, config_lp=2)
    # A 150 share fits in the hole: one machine is enough.
    small = [req(0, 1000, 0, 810), req(1, 1000, 0, 810), req(2, 1000, 0, 150)]
    assert compute_bounds(small, machines).config_lp == 1


def test_whole_gpus_hold_their_devices():
    # 4-GPU machines: a 2-GPU task and three 0.6 shares. Milli: 3800 <= 4000; devices
    # held (2 + 3) > 4: two machines, which the assignment LP already sees.
    machines = [node(i, cpu=64_000, mem=1 << 20, gpus=4) for i in range(3)]
    tasks = [req(0, 1000, 0, 2000), *(req(1 + i, 1000, 0, 600) for i in range(3))]
    assert compute_bounds(tasks, machines) == Bounds(volume=1, lp=2, config_lp=2)


def test_prefix_order_and_inactive_machines():
    # Small machines first, a draining big one, then big ones: the 6-cpu tasks fit only
    # the big machines, and the draining one takes nothing. Two tasks need positions 5
    # and 6 (1-based): k = 6.
    order = [node(i, cpu=4000) for i in range(3)]
    order.append(Node.build("d", cpu_milli=8000, mem_mib=8192, state=NodeState.DRAINING))
    order += [node(4 + i, cpu=8000) for i in range(3)]
    tasks = [req(i, 6000) for i in range(2)]
    assert config_lp_bound(tasks, order) == 6
    assert config_lp_bound([], order) == 0
    assert config_lp_bound([req(0, 9000)], order) is None  # fits no machine at all
    assert config_lp_bound([req(0, 6000)] * 4, order) is None  # three big machines only


def test_a_round_cap_still_gives_a_valid_bound():
    machines = [node(i) for i in range(20)]
    tasks = [req(i, 340 + 10 * (i % 7)) for i in range(24)]
    full = config_lp_search(tasks, machines)
    capped = config_lp_search(tasks, machines, max_rounds=1)
    assert full.exact and full.bound is not None and capped.bound is not None
    assert volume_bound(tasks, machines) <= capped.bound <= full.bound
    assert full.bound == 12  # each task > 1/3 cpu: at most 2 per machine


def test_pricing_matches_brute_force():
    # One 2-GPU machine (8 cpus, 16 GiB) and five task kinds; enumerate every multiset
    # (counts up to the demand) and keep those that fit cpu, memory and really pack on
    # the devices; the knapsack's value must be the best of them or above (it is a
    # relaxation), its dual bound above that, and its answer must fit cpu and memory.
    kind = MachineKind(8000, 16384, 0, 2, "T4")
    tasks = [
        TaskKind(2000, 4096, 0, 810, frozenset()),
        TaskKind(1000, 2048, 0, 300, frozenset()),
        TaskKind(1000, 1024, 0, 150, frozenset()),
        TaskKind(3000, 2048, 0, 1000, frozenset()),
        TaskKind(2000, 6144, 0, 0, frozenset()),
    ]
    demand = [2, 3, 2, 2, 2]
    pricer = Pricer(kind, tasks, demand, device_rows(tasks, demand))
    rng = np.random.default_rng(3)
    for _ in range(5):
        values = rng.uniform(0.1, 2.0, len(tasks))
        best = max(
            float(values @ np.array(c))
            for c in itertools.product(*(range(d + 1) for d in demand))
            if _really_fits(kind, tasks, c)
        )
        priced = pricer.best(values)
        assert priced.upper >= priced.value >= best - 1e-9
        assert _really_fits(kind, tasks, tuple(priced.counts), devices=False)


def _really_fits(
    kind: MachineKind, tasks: list[TaskKind], counts: tuple[int, ...], devices: bool = True
) -> bool:
    cpu = sum(t.cpu * c for t, c in zip(tasks, counts, strict=True))
    mem = sum(t.mem * c for t, c in zip(tasks, counts, strict=True))
    if cpu > kind.cpu or mem > kind.mem:
        return False
    whole = sum(t.whole_devices * c for t, c in zip(tasks, counts, strict=True))
    if whole > kind.gpus:
        return False
    shares = sorted(
        (t.share for t, c in zip(tasks, counts, strict=True) for _ in range(c) if t.share),
        reverse=True,
    )
    return not devices or _packs(shares, [1000] * (kind.gpus - whole))


def _packs(shares: list[int], free: list[int]) -> bool:
    """Exact: do these shares fit these devices (depth-first, largest share first)?"""
    if not shares:
        return True
    head, rest = shares[0], shares[1:]
    tried: set[int] = set()
    for i, f in enumerate(free):
        if f >= head and f not in tried:
            tried.add(f)
            if _packs(rest, [*free[:i], f - head, *free[i + 1 :]]):
                return True
    return False


share_sizes = st.sampled_from([50, 110, 160, 230, 320, 350, 470, 500, 550, 650, 810, 1000])


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.lists(share_sizes, min_size=0, max_size=6), min_size=1, max_size=4),
    st.dictionaries(share_sizes, st.integers(1, 30), min_size=1, max_size=6),
)
def test_device_rows_hold_for_every_real_packing(devices: list[list[int]], mix: dict[int, int]):
    # Build a real packing device by device (drop shares that overflow a device; a 1000
    # is a whole-GPU task alone on its device) and check every row, including the
    # cutting-stock row of an unrelated share mix ("demand") and the separating row of
    # any multiset: rows are valid for every real packing, whatever they came from.
    placed: list[int] = []
    for device in devices:
        used = 0
        if 1000 in device:
            placed.append(1000)
            continue
        for share in device:
            if used + share <= 1000:
                used += share
                placed.append(share)
    sizes = sorted(set(placed) | set(mix))
    tasks = [TaskKind(0, 0, 0, g, frozenset()) for g in sizes]
    counts = [placed.count(g) for g in sizes]
    rows = device_rows(tasks, [mix.get(g, 0) for g in sizes])
    cut = separating_row(tasks, [mix.get(g, 0) for g in sizes], 1)
    for num, scale in rows + ([cut] if cut else []):
        assert sum(n * c for n, c in zip(num, counts, strict=True)) <= scale * len(devices)
    assert packs([s for s in placed if s < 1000], len(devices) - placed.count(1000))


@pytest.mark.parametrize(
    ("shares", "devices", "fits"),
    [
        ([590, 480, 470, 230, 230], 2, False),  # 2000 milli, but no pair of devices holds them
        ([590, 410, 480, 470], 2, True),  # two full devices
        ([810, 810, 150], 2, True),  # the 150 fits a hole
        ([810, 810, 300], 2, False),  # the 300 does not
        ([650] * 4 + [320] * 4 + [110], 4, False),  # each 650 takes a 320 or the 110
        ([50] * 20, 1, True),
        ([], 0, True),
    ],
)
def test_packs_and_separates(shares: list[int], devices: int, fits: bool):
    assert packs(shares, devices) is fits
    sizes = sorted(set(shares))
    tasks = [TaskKind(0, 0, 0, g, frozenset()) for g in sizes]
    counts = [shares.count(g) for g in sizes]
    cut = separating_row(tasks, counts, devices)
    # Every example that does not pack is separated by its cutting-stock duals here.
    assert (cut is None) is fits


workloads = st.fixed_dictionaries(
    {
        "machines": st.lists(
            st.tuples(st.sampled_from([4000, 8000]), st.sampled_from([0, 1, 2, 4])),
            min_size=3,
            max_size=10,
        ),
        "tasks": st.lists(
            st.tuples(
                st.integers(1, 8).map(lambda c: 500 * c),
                st.integers(1, 16).map(lambda m: 1024 * m),
                st.sampled_from([0, 0, 160, 300, 470, 650, 810, 1000, 2000]),
            ),
            min_size=1,
            max_size=16,
        ),
        "policy": st.sampled_from(["first-fit", "bestfit"]),
    }
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workloads)
def test_never_above_a_real_packing(w: dict[str, object]):
    machines = [
        Node.build(f"m{i}", cpu_milli=c, mem_mib=16384, gpus=g, gpu_model="T4" if g else "")
        for i, (c, g) in enumerate(w["machines"])  # type: ignore[arg-type]
    ]
    tasks = [req(i, c, m, g) for i, (c, m, g) in enumerate(w["tasks"])]  # type: ignore[arg-type]
    view = ClusterView(machines)
    view.rank = np.arange(len(machines), dtype=np.int64)
    plan = schedule(tasks, view, make_policy(str(w["policy"])), np.random.default_rng(0))
    bounds = compute_bounds(tasks, machines)
    if not plan.unplaced:
        # Every task sits within the first `used` machines, a real packing of that prefix.
        position = {m.id: i for i, m in enumerate(machines)}
        used = 1 + max(position[p.node_id] for p in plan.placements)
        assert bounds.config_lp is not None and bounds.config_lp <= used
    if bounds.config_lp is not None:
        assert bounds.volume is not None and bounds.lp is not None
        assert bounds.volume <= bounds.lp <= bounds.config_lp == bounds.lower
    else:
        assert plan.unplaced  # the bound says nothing fits: no policy may place all


def test_config_lp_dominates_and_is_reported_in_bounds():
    machines = [node(i) for i in range(10)]
    tasks = [req(i, 340) for i in range(12)]
    b = compute_bounds(tasks, machines)
    assert (b.volume, b.lp, b.config_lp, b.lower) == (5, 5, 6, 6)
    assert lp_bound(tasks, machines) == 5
    assert compute_bounds(tasks, machines, config_lp=False) == Bounds(5, 5, None)
