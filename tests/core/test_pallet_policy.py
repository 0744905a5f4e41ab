"""The ``pallet`` policy: its arithmetic on tiny hand-built views (expected numbers
worked out in the comments from the formulas in ``core/policies/pallet.py``), the
cutting-stock prices behind it, determinism, and no overcommit."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from factories import node, req
from pallet.core import ClusterView, make_policy, schedule, verify
from pallet.core.frag import Workload
from pallet.core.policies.pallet import PalletPolicy
from pallet.core.policies.pallet_mix import Mix, model_pressure
from pallet.core.policies.pallet_shares import knapsack_values, share_duals, waste_table
from pallet.model import GPU_MILLI, Placement, PortRange

RNG = np.random.default_rng(0)


def _scores(policy: PalletPolicy, view: ClusterView, request, seen=None) -> list[float]:  # type: ignore[no-untyped-def]
    policy.prepare(view, seen if seen is not None else [request])
    rows = np.arange(len(view), dtype=np.int64)
    return [float(x) for x in policy.score(view, request, rows, RNG)]


def _sigmoid_step(waste: float) -> float:
    return float(math.trunc(100.0 / (1.0 + math.exp(waste / 1000.0))))


# ----------------------------------------------------------------------------- LP prices


@pytest.mark.parametrize(
    ("demand", "prices"),
    [
        # One size: 300s pack three to a device, so each is worth a third of one.
        ({300: 1.0}, {300: 1 / 3}),
        # 600s pair with 400s; the 400s left over pair with each other. Patterns
        # {600,400} x 1/3 and {400,400} x 1/6 use 1/2 device per task-weight, and the
        # only prices making both patterns worth exactly one device are 1/2 and 1/2.
        ({600: 1.0, 400: 2.0}, {400: 0.5, 600: 0.5}),
        # 810s cannot pair with each other: one device each.
        ({810: 1.0}, {810: 1.0}),
    ],
)
def test_share_duals(demand: dict[int, float], prices: dict[int, float]) -> None:
    got = share_duals(demand)
    assert got == pytest.approx(prices, abs=1e-9)


def test_waste_table_of_four_and_six_hundreds() -> None:
    # Prices 400 -> 0.5, 600 -> 0.5. V[x] = best knapsack of prices within x:
    #   V[1000] = 1 (400+600 or 400+400), V[600] = 0.5, V[400] = 0.5, V[200] = 0.
    # waste[x] = x - 1000 V[x]: 0, 100, -100 (a 400 gap is a sure home), 200.
    waste = waste_table({600: 1.0, 400: 2.0})
    assert [waste[x] for x in (1000, 600, 400, 200, 0)] == pytest.approx([0, 100, -100, 200, 0])
    # Placing a 400 costs 1000 * 0.5 - 400 = 100 wherever it is part of a best packing
    # (a fresh device, or next to a 600) ...
    assert waste[600] - waste[1000] == pytest.approx(100)
    assert waste[200] - waste[600] == pytest.approx(100)
    # ... and a 600 costs 1000 * 0.5 - 600 = -100: next to a 400 (600 idle -> 0) and on
    # a fresh device (1000 -> 400, a gap waiting for a 400).
    assert waste[0] - waste[600] == pytest.approx(-100)
    assert waste[400] - waste[1000] == pytest.approx(-100)


def test_knapsack_values_reuse_sizes() -> None:
    # Prices 300 -> 1/3: V[999] holds three 300s = 1; V[599] one 300 only.
    values = knapsack_values({300: 1 / 3})
    assert values[999] == pytest.approx(1.0)
    assert values[599] == pytest.approx(1 / 3)
    assert values[299] == 0.0


def test_no_shares_no_prices() -> None:
    assert share_duals({}) == {}
    assert share_duals({1000: 3.0}) == {}  # whole devices are not shares


# ----------------------------------------------------------------------------- GPU nodes

# One typical GPU task: 4000 CPU milli with a 400-milli share: rho = 4000/400 = 10 CPU
# milli per GPU milli, and 400s pack two to a device (price 1/2, waste[600] = 100,
# waste[200] = 200, waste[1000] = 0).
SHARE_400 = Workload(((4000, 400, 1, ""),), (1.0,))


def _two_gpu_nodes() -> ClusterView:
    # A: 16 cores, 2 GPUs, already running 6000 CPU milli + 400 milli on device 0:
    #    free cpu 10000, idle [600, 1000], G = 1600.  B: the same node, empty.
    view = ClusterView(
        [
            node("A", cpu=16000, mem=65536, gpus=2, model="T4"),
            node("B", cpu=16000, mem=65536, gpus=2, model="T4"),
        ]
    )
    view.assume(Placement(req("/x", cpu=6000, mem=0, gpu=400, id="x"), "A", (), ((0, 400),)))
    return view


def test_share_scores_waste_then_packing() -> None:
    view = _two_gpu_nodes()
    share = req(cpu=4000, mem=0, gpu=400)
    # Stranded GPU milli D = max(0, G - cpu/rho):
    #   A before: 1600 - 10000/10 = 600; after: 1200 - 6000/10 = 600 -> dD = 0.
    #   B before: 2000 - 16000/10 = 400; after: 1600 - 12000/10 = 400 -> dD = 0.
    # Device waste: A dev0 600 -> 200: 200 - 100 = 100; A dev1 and B 1000 -> 600: 100.
    # dW = 100 everywhere -> trunc(100 / (1 + e^0.1)) = trunc(47.50) = 47.
    assert _sigmoid_step(100.0) == 47.0
    # Packing: 1 - (0.9 * GPU left + 0.1 * L2(cpu left, mem left)), mem untouched (1.0):
    #   A: GPU 1200/2000 = .6, cpu 6000/16000 = .375, L2 = sqrt((.140625 + 1)/2) = .755190
    #      -> 1 - (.54 + .0755190) = .384481 -> 47 + .5 * .384481 = 47.192240
    #   B: GPU .8, cpu .75, L2 = sqrt((.5625 + 1)/2) = .883883 -> 1 - .8083883 = .191612
    #      -> 47 + .5 * .191612 = 47.095806
    got = _scores(PalletPolicy(SHARE_400), view, share)
    assert got == pytest.approx([47.192240, 47.095806], abs=1e-6)


def test_share_goes_to_best_fit_device_among_equal_waste() -> None:
    view = _two_gpu_nodes()
    policy = PalletPolicy(SHARE_400)
    share = req(cpu=4000, mem=0, gpu=400)
    policy.prepare(view, [share])
    # Both devices of A score 47 (above); the one with less idle milli (600) wins.
    assert policy.choose_gpus(view, share, 0, RNG) == ((0, 400),)
    # A 700 does not fit the 600 gap, only device 1.
    big = req(cpu=1000, mem=0, gpu=700)
    assert policy.choose_gpus(view, big, 0, RNG) == ((1, 700),)
    # Whole GPUs take the lowest-index idle devices.
    assert policy.choose_gpus(view, req(cpu=0, mem=0, gpu=2000), 1, RNG) == (
        (0, GPU_MILLI),
        (1, GPU_MILLI),
    )


def test_a_bad_gap_costs_steps() -> None:
    # 400s priced 1/2: a 300 share placed on a 600 gap leaves 300 (waste 300, since no
    # 400 fits it): dW = waste[300] - waste[600] = 300 - 100 = 200 -> trunc(100/(1+e^.2))
    # = trunc(45.02) = 45; on a fresh device 1000 -> 700: waste[700] = 700 - 500 = 200,
    # dW = 200 as well. CPU: rho 10, cpu 3000 -> the node-level term:
    #   A: 1600 - 1000 = 600 before; 1300 - 700 = 600 after -> 0.
    #   B: 2000 - 1600 = 400; 1700 - 1300 = 400 -> 0.
    view = _two_gpu_nodes()
    got = _scores(PalletPolicy(SHARE_400), view, req(cpu=3000, mem=0, gpu=300))
    assert [math.floor(x) for x in got] == [45, 45]
    assert _sigmoid_step(200.0) == 45.0


def test_cpu_only_task_goes_where_cpu_is_spare() -> None:
    # G: 12 cores per GPU, T: 52 cores per GPU; rho = 10 CPU milli per GPU milli.
    view = ClusterView(
        [
            node("G", cpu=12000, mem=65536, gpus=1, model="G2"),
            node("T", cpu=52000, mem=65536, gpus=1, model="T4"),
        ]
    )
    task = req(cpu=4000, mem=0)
    # G: D = max(0, 1000 - 12000/10) = 0 before; 1000 - 8000/10 = 200 after -> dW = 200
    #    -> trunc(100/(1+e^0.2)) = 45.  T: 1000 - 4800 < 0 -> 0 -> dW = 0 -> 50.
    got = _scores(PalletPolicy(SHARE_400), view, task)
    assert [math.floor(x) for x in got] == [45, 50]


def test_cpu_only_task_when_cpu_is_short_fills_cpu_above_a_reserve() -> None:
    # GPU tasks: 10 CPU milli per GPU milli; tasks without GPUs: 30000m, as often.
    # All tasks ask (5000 + 15000) / 500 = 40 CPU milli per GPU milli; the cluster
    # has 64000 / 2000 = 32: R = 1.25, past the feed's floor (1.09-1.13), so each node
    # keeps rho / R = 8 CPU milli per idle GPU milli: 8000 on either node here.
    workload = Workload(((10000, 1000, 1, ""), (30000, 0, 0, "")), (0.5, 0.5))
    view = ClusterView(
        [
            node("G", cpu=12000, mem=65536, gpus=1, model="G2"),
            node("T", cpu=52000, mem=65536, gpus=1, model="T4"),
        ]
    )
    # 3000m: 1000 left above G's reserve, 41000 above T's -> G (best fit).
    got = _scores(PalletPolicy(workload), view, req(cpu=3000, mem=0))
    assert got == [1e12 - 1000, 1e12 - 41000]
    # 6000m cuts 2000 into G's reserve, fits above T's (38000 left) -> T.
    got = _scores(PalletPolicy(workload), view, req(cpu=6000, mem=0))
    assert got == [-2000.0, 1e12 - 38000]
    # 50000m fits above no reserve: where it cuts least (T: 6000, G: 46000).
    got = _scores(PalletPolicy(workload), view, req(cpu=50000, mem=0))
    assert got == [-46000.0, -6000.0]
    # Less work without GPUs (R = (5000 + 5000) / 500 / 32 = 0.625): no reserve, the
    # stranded-GPU score: G feeds 900 of its 1000 milli after -> dW = 100 -> 47; T 50.
    plenty = Workload(((10000, 1000, 1, ""), (10000, 0, 0, "")), (0.5, 0.5))
    got = _scores(PalletPolicy(plenty), view, req(cpu=3000, mem=0))
    assert [math.floor(x) for x in got] == [47, 50]


def test_cpu_only_task_when_cpu_nears_short_goes_where_most_cpu_is_left() -> None:
    # GPU tasks: 10 CPU milli per GPU milli; tasks without GPUs: 23000m, as often. All
    # tasks ask (5000 + 11500) / 500 = 33 CPU milli per GPU milli; the cluster has
    # 94000 / 3000 = 31.3: R = 1.05, past SURPLUS_FROM but below the feed's floor, so
    # each node keeps 1.5 * rho = 15 CPU milli per idle GPU milli (15000 per idle GPU)
    # and the task goes where the most CPU is left beyond that.
    workload = Workload(((10000, 1000, 1, ""), (23000, 0, 0, "")), (0.5, 0.5))
    view = ClusterView(
        [
            node("G", cpu=12000, mem=65536, gpus=1, model="G2"),
            node("T", cpu=52000, mem=65536, gpus=1, model="T4"),
            node("U", cpu=30000, mem=65536, gpus=1, model="T4"),
        ]
    )
    # 3000m: G cuts 6000 into its reserve, T leaves 34000 beyond it, U 12000 -> T (best
    # fit above the reserve, the rule past the floor, would pick U).
    got = _scores(PalletPolicy(workload), view, req(cpu=3000, mem=0))
    assert got == [-6000.0, 34000.0, 12000.0]
    # 40000m fits beyond no reserve: where it cuts least (T: 3000).
    got = _scores(PalletPolicy(workload), view, req(cpu=40000, mem=0))
    assert got == [-43000.0, -3000.0, -25000.0]


def test_gpu_model_pressure() -> None:
    # Half the GPU demand may run only on T4; T4 and G2 have 2000 idle milli each.
    # Pressure: T4 gets (500/1000) * 4000 / 2000 = 1.0 (capped at 1), G2 0.
    workload = Workload(((1000, 1000, 1, "T4"), (1000, 1000, 1, "")), (0.5, 0.5))
    view = ClusterView(
        [
            node("t", cpu=100000, mem=65536, gpus=2, model="T4"),
            node("g", cpu=100000, mem=65536, gpus=2, model="G2"),
        ]
    )
    assert model_pressure(view, Mix.of_workload(workload)).tolist() == [1.0, 0.0, 0.0]
    # An unrestricted whole GPU on T4 is charged 0.5 * 1000 * (1 - 0) = 500 milli:
    # trunc(100/(1+e^0.5)) = 37; on G2 nothing -> 50. (rho = 1: no stranding.)
    got = _scores(PalletPolicy(workload), view, req(cpu=1000, mem=0, gpu=1000))
    assert [math.floor(x) for x in got] == [37, 50]
    # A task that may only run on T4 pays nothing there: its least pressed model is T4.
    t4_only = req(cpu=1000, mem=0, gpu=1000, models=frozenset({"T4"}))
    assert math.floor(_scores(PalletPolicy(workload), view, t4_only)[0]) == 50


# ----------------------------------------------------------------------------- no GPUs


def _cpu_mem_view() -> ClusterView:
    # n0: 4000m / 8192 MiB, 1000m / 2048 MiB allocated; n1: the same, empty.
    view = ClusterView([node("n0", cpu=4000, mem=8192), node("n1", cpu=4000, mem=8192)])
    view.assume(Placement(req("/other", cpu=1000, mem=2048, id="x"), "n0"))
    return view


def test_no_gpus_best_fit() -> None:
    task = req(cpu=1000, mem=2048)
    # Learned mean task (1000, 2048): both nodes hold whole mean tasks before and after,
    # nothing strands -> 50 steps. Packing: n0 left .5/.5 -> L2 .5 -> 50 + .5 * .5;
    # n1 left .75/.75 -> 50 + .5 * .25.
    assert _scores(PalletPolicy(), _cpu_mem_view(), task) == pytest.approx([50.25, 50.125])


def test_no_gpus_pairs_resources() -> None:
    # n0 has spare memory (free 2000m / 6144 MiB), n1 spare cpu (free 4000m / 2048 MiB).
    view = ClusterView([node("n0", cpu=4000, mem=8192), node("n1", cpu=4000, mem=8192)])
    view.assume(Placement(req("/a", cpu=2000, mem=2048, id="a"), "n0"))
    view.assume(Placement(req("/b", cpu=0, mem=6144, id="b"), "n1"))
    policy = PalletPolicy()
    policy.prepare(view, [req(cpu=1000, mem=2048)])  # the mean task: 1000m / 2048 MiB
    heavy = req(cpu=2000, mem=1024)
    # Stranded = mean over cpu, mem of what is left after filling with mean tasks:
    # n0 before: min(2000/1000, 6144/2048) = 2 tasks -> cpu 0, mem 2048/8192 = .25 -> .125
    #    after (0, 5120): 0 tasks -> mem 5120/8192 = .625 -> .3125; change +187.5
    #    thousandths -> 50 + floor(-18.75) = 31.
    # n1 before: min(4, 1) = 1 task -> cpu 3000/4000 = .75 -> .375
    #    after (2000, 1024): .5 task -> cpu 1500/4000 = .375 -> .1875; change -187.5
    #    -> 50 + floor(18.75) = 68.
    rows = np.arange(2, dtype=np.int64)
    got = policy.score(view, heavy, rows, RNG)
    assert [math.floor(x) for x in got] == [31, 68]


@st.composite
def _plain_views(draw: st.DrawFn) -> ClusterView:
    nodes = [
        node(
            f"n{i}",
            cpu=draw(st.integers(1, 16)) * 1000,
            mem=draw(st.integers(0, 16)) * 1024,
            disk=draw(st.sampled_from([0, 10_000])),
        )
        for i in range(draw(st.integers(1, 6)))
    ]
    view = ClusterView(nodes)
    for i, n in enumerate(nodes):
        cpu = draw(st.integers(0, int(view.free_cpu[i])))
        mem = draw(st.integers(0, int(view.free_mem[i])))
        view.assume(Placement(req("/x", cpu=cpu, mem=mem, id=f"x{i}"), n.id))
    return view


@settings(max_examples=80, deadline=None)
@given(
    view=_plain_views(),
    cpu=st.integers(0, 4000),
    mem=st.integers(0, 8192),
    disk=st.sampled_from([0, 500]),
    seen=st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 8192)), max_size=3),
)
def test_one_row_scores_equal_vector_scores(
    view: ClusterView, cpu: int, mem: int, disk: int, seen: list[tuple[int, int]]
) -> None:
    # The scheduler rescores one row after each placement; that fast path must agree
    # to the last bit with scoring all rows together, or ties would depend on history.
    policy = PalletPolicy()
    task = req(cpu=cpu, mem=mem, disk=disk)
    policy.prepare(view, [req(cpu=c, mem=m) for c, m in seen] + [task])
    rows = np.arange(len(view), dtype=np.int64)
    together = policy._plain_scores(view, task, rows).tolist()  # the array form
    alone = [float(policy.score(view, task, np.array([r]), RNG)[0]) for r in rows]
    assert together == alone
    assert policy.score(view, task, rows, RNG).tolist() == alone  # a few rows: one by one


def test_stable_scores_only_while_nothing_learned_changes() -> None:
    view = _cpu_mem_view()
    policy = PalletPolicy()
    policy.prepare(view, [req(cpu=1000, mem=2048)])
    assert not policy.stable_scores  # first call: everything learned just now
    policy.prepare(view, [req(cpu=1000, mem=2048)])
    assert policy.stable_scores  # same mean task: cached scores stay valid
    policy.prepare(view, [req(cpu=3000, mem=1024) for _ in range(3)])
    assert not policy.stable_scores  # the mean task moved


# ----------------------------------------------------------------------------- plans


def _mixed_cluster() -> ClusterView:
    ports = (PortRange(31000, 31009),)
    nodes = []
    for i in range(12):
        gpus, model = [(8, "G2"), (2, "T4"), (0, ""), (4, "V100")][i % 4]
        nodes.append(
            node(
                f"m{i:02d}",
                cpu=(16 + 8 * (i % 3)) * 1000,
                mem=65536,
                gpus=gpus,
                model=model,
                ports=ports,
            )
        )
    return ClusterView(nodes)


def _mixed_requests(seed: int) -> list:  # type: ignore[type-arg]
    rng = np.random.default_rng(seed)
    out = []
    for i in range(60):
        kind = int(rng.integers(5))
        gpu = [0, 470, 810, 1000, 2000][kind]
        models = frozenset({"T4"}) if kind and rng.random() < 0.2 else frozenset()
        ports = (0,) if rng.random() < 0.3 else ()
        out.append(
            req(
                f"/app{i % 7}",
                cpu=int(rng.integers(1, 9)) * 1000,
                mem=int(rng.integers(1, 9)) * 2048,
                gpu=gpu,
                models=models,
                ports=ports,
            )
        )
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_same_seed_same_plan_bytes_and_no_overcommit(seed: int) -> None:
    requests = _mixed_requests(seed)
    plans = []
    for _ in range(2):
        view = _mixed_cluster()
        before = view.copy()
        plan = schedule(requests, view, make_policy("pallet"), np.random.default_rng(seed))
        verify(plan, before)  # every placement fits, in order, with the one fit function
        assert (view.free_cpu >= 0).all() and (view.gpu_idle >= 0).all()
        plans.append(plan.to_json())
    assert plans[0] == plans[1]


def test_learns_the_workload_without_one() -> None:
    # No Workload given: share sizes, CPU per GPU and the mean plain task come from the
    # requests seen; a second call with the same requests changes nothing learned.
    view = _mixed_cluster()
    policy = PalletPolicy()
    requests = _mixed_requests(3)
    plan = schedule(requests, view.copy(), policy, np.random.default_rng(0))
    assert plan.placements
    assert policy._waste is not None  # the share LP was solved from what was seen
    verify(plan, view)


def test_every_feasible_task_is_placed() -> None:
    # Never declines: a task that fits somewhere is placed even when every node scores
    # badly for it (here it strands CPU on the only node with GPUs).
    view = ClusterView([node("g", cpu=4000, mem=65536, gpus=8, model="G2")])
    plan = schedule([req(cpu=4000, mem=1024)], view, PalletPolicy(SHARE_400), RNG)
    assert [p.node_id for p in plan.placements] == ["g"]


def test_many_share_sizes_price_only_the_frequent_ones() -> None:
    # 200 sizes: the LP prices the 64 most frequent; the rest get no price (0).
    demand = {s: (2.0 if s % 8 == 0 else 1.0) for s in range(100, 900, 4)}
    prices = share_duals(demand)
    assert len(prices) == 64
    assert all(s % 8 == 0 for s in prices)  # the priced ones are among the more frequent
    assert all(0.0 <= p <= 1.0 for p in prices.values())


# ------------------------------------------------------------------------ batch order


def test_batch_order_priority_then_gpu_tasks_largest_first_then_as_given() -> None:
    # Largest node: cpu 16000, mem 65536, 2 GPUs (2000 milli); disk 0 counts for nothing.
    # Size of a GPU task = sum over resources of request / largest capacity.
    view = _two_gpu_nodes()
    batch = [
        req(cpu=8000, mem=32768, id="c"),  # no GPU: stays in the given order
        req(cpu=0, mem=0, gpu=100, id="g"),  # 100/2000 = .05
        req(cpu=0, mem=0, gpu=1000, id="b"),  # .50
        req(cpu=1600, mem=0, id="d", priority=5),  # no GPU, but priority 5 goes first
        req(cpu=4000, mem=0, gpu=200, id="e"),  # .25 + .10 = .35
        req(cpu=800, mem=0, gpu=100, id="h"),  # .05 + .05 = .10
        req(cpu=1600, mem=0, disk=99, id="a"),  # no GPU
    ]
    order = PalletPolicy(SHARE_400).order(view, batch)
    assert order is not None
    assert [batch[k].id for k in order] == ["d", "b", "e", "h", "g", "c", "a"]


def test_one_request_keeps_the_default_order() -> None:
    assert PalletPolicy(SHARE_400).order(_two_gpu_nodes(), [req()]) is None


def test_tasks_without_gpus_of_one_priority_keep_the_order_given() -> None:
    policy = PalletPolicy(SHARE_400)
    plain = [req(cpu=800, id="a"), req(cpu=8000, id="b"), req(cpu=100, id="c")]
    assert policy.order(_two_gpu_nodes(), plain) is None  # the scheduler keeps it
    urgent = [*plain, req(cpu=100, id="d", priority=1)]
    order = policy.order(_two_gpu_nodes(), urgent)
    assert order is not None
    assert [urgent[k].id for k in order] == ["d", "a", "b", "c"]


def test_large_first_fits_where_the_given_order_does_not() -> None:
    # Two 1-GPU nodes. Given order: two 300-milli shares, then two 700s. Placed one call
    # at a time, best fit puts both 300s on one device (400 idle) and the second 700 has
    # nowhere to go; in one call, large first, each device takes a 700 and a 300.
    batch = [req(cpu=0, mem=0, gpu=300) for _ in range(2)]
    batch += [req(cpu=0, mem=0, gpu=700) for _ in range(2)]
    view = ClusterView([node("A", gpus=1), node("B", gpus=1)])
    policy = PalletPolicy()
    one_by_one = [schedule([r], view, policy, np.random.default_rng(0)) for r in batch]
    assert sum(len(p.unplaced) for p in one_by_one) == 1
    view = ClusterView([node("A", gpus=1), node("B", gpus=1)])
    plan = schedule(batch, view, PalletPolicy(), np.random.default_rng(0))
    assert not plan.unplaced
    assert sorted(p.node_id for p in plan.placements) == ["A", "A", "B", "B"]


def test_a_request_retried_on_later_calls_is_learned_from_once() -> None:
    # A task that stays queued is offered to the policy again on every scheduling round
    # of the live master; learning from each attempt would let one stuck task outweigh
    # every other task the policy has seen.
    view = _two_gpu_nodes()
    stuck = req("/stuck", cpu=4000, gpu=810)
    other = req("/other", gpu=250)
    retried, once = PalletPolicy(), PalletPolicy()
    for _ in range(20):
        retried.prepare(view, [stuck])
    retried.prepare(view, [other])
    once.prepare(view, [stuck, other])
    assert retried._seen == once._seen
    assert retried._seen.shares == {810: 1.0, 250: 1.0}


def test_a_request_no_node_could_hold_is_not_learned_from() -> None:
    # One app asking for more memory than any node has must not become the mean task.
    view = _cpu_mem_view()
    policy = PalletPolicy()
    policy.prepare(view, [req("/huge", mem=10**9), req("/web", cpu=500, mem=512)])
    assert policy._seen.plain == (1, 500, 512, 0)
