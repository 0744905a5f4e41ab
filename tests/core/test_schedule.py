"""The scheduling pipeline: invariants (hypothesis), determinism, incremental scoring,
ports, GPUs, priorities and rejection reasons."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from factories import node, req
from pallet.core import POLICY_NAMES, ClusterView, make_policy, schedule, verify
from pallet.model import GPU_MILLI, Constraint, Operator, PortRange

PORTS = (PortRange(31000, 31004),)


@st.composite
def clusters(draw: st.DrawFn) -> ClusterView:
    n = draw(st.integers(1, 6))
    nodes = []
    for i in range(n):
        gpus = draw(st.sampled_from([0, 0, 1, 2, 4]))
        nodes.append(
            node(
                f"n{i}",
                cpu=draw(st.integers(0, 8)) * 1000,
                mem=draw(st.integers(0, 8)) * 1024,
                disk=draw(st.sampled_from([0, 1000])),
                gpus=gpus,
                model=draw(st.sampled_from(["A", "B"])) if gpus else "",
                ports=PORTS,
                rack=draw(st.sampled_from(["r1", "r2", "r3"])),
            )
        )
    return ClusterView(nodes)


constraint_st = st.sampled_from(
    [
        Constraint("hostname", Operator.UNIQUE),
        Constraint("rack", Operator.UNIQUE),
        Constraint("rack", Operator.GROUP_BY),
        Constraint("rack", Operator.CLUSTER),
        Constraint("hostname", Operator.MAX_PER, "2"),
        Constraint("rack", Operator.LIKE, "r[12]"),
    ]
)


@st.composite
def request_lists(draw: st.DrawFn) -> list:  # type: ignore[type-arg]
    out = []
    for a in range(draw(st.integers(1, 4))):
        count = draw(st.integers(1, 6))
        gpu = draw(st.sampled_from([0, 0, 250, 500, 1000, 2000]))
        shape = dict(
            cpu=draw(st.integers(0, 4)) * 500,
            mem=draw(st.integers(0, 4)) * 512,
            disk=draw(st.sampled_from([0, 0, 500])),
            gpu=gpu,
            ports=draw(st.sampled_from([(), (0,), (0, 0), (31002,)])),
            models=draw(st.sampled_from([frozenset(), frozenset({"A"})])) if gpu else frozenset(),
            constraints=tuple(draw(st.lists(constraint_st, max_size=2, unique=True))),
            priority=draw(st.integers(0, 1)),
        )
        out.extend(req(f"/app{a}", **shape) for _ in range(count))  # type: ignore[arg-type]
    return out


def _check_invariants(view: ClusterView) -> None:
    assert (view.free_cpu >= 0).all() and (view.free_mem >= 0).all() and (view.free_disk >= 0).all()
    assert (view.gpu_idle >= 0).all() and (view.gpu_idle <= GPU_MILLI).all()
    for i, used in enumerate(view.ports_used):
        held = [p for t in view.tasks.values() if t.node_id == view.nodes[i].id for p in t.ports]
        assert len(held) == len(set(held)) == len(used)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    view=clusters(),
    requests=request_lists(),
    policy=st.sampled_from(POLICY_NAMES),
    seed=st.integers(0, 3),
)
def test_plans_never_overcommit_and_verify(
    view: ClusterView, requests: list, policy: str, seed: int
) -> None:  # type: ignore[type-arg]
    before = view.copy()
    plan = schedule(requests, view, make_policy(policy), np.random.default_rng(seed))
    assert len(plan.placements) + len(plan.unplaced) == len(requests)
    verify(plan, before)  # the plan fits the view it was made for, placement by placement
    _check_invariants(view)
    # Constraints hold for the final placement of every app.
    for r in requests:
        for c in r.constraints:
            nodes_used = [p.node_id for p in plan.placements if p.app_id == r.app_id]
            if c.operator is Operator.UNIQUE and c.field == "hostname":
                assert len(nodes_used) == len(set(nodes_used))
            if c.operator is Operator.MAX_PER:
                assert max((nodes_used.count(n) for n in nodes_used), default=0) <= 2
            if c.operator is Operator.CLUSTER:
                racks = {view.nodes[view.row[n]].attributes["rack"] for n in nodes_used}
                assert len(racks) <= 1
    for u in plan.unplaced:
        assert sum(n for _, n in u.reasons) == len(view)


@settings(max_examples=40, deadline=None)
@given(view=clusters(), requests=request_lists(), policy=st.sampled_from(POLICY_NAMES))
def test_same_seed_same_plan_bytes(view: ClusterView, requests: list, policy: str) -> None:  # type: ignore[type-arg]
    a = schedule(requests, view.copy(), make_policy(policy), np.random.default_rng(7))
    b = schedule(requests, view.copy(), make_policy(policy), np.random.default_rng(7))
    assert a.to_json() == b.to_json()


class _Uncached:
    """Wraps a policy so every request is scored from scratch."""

    def __init__(self, name: str) -> None:
        self.inner = make_policy(name)

    def __getattr__(self, attr: str):  # type: ignore[no-untyped-def]
        return getattr(self.inner, attr)

    def is_cacheable(self, req) -> bool:  # type: ignore[no-untyped-def]
        return False


@settings(max_examples=60, deadline=None)
@given(
    view=clusters(),
    requests=request_lists(),
    policy=st.sampled_from(["pallet", "fgd", "bestfit", "k8s-most", "gpu-packing", "first-fit"]),
)
def test_incremental_scoring_equals_full_rescoring(
    view: ClusterView, requests: list, policy: str
) -> None:  # type: ignore[type-arg]
    fast = schedule(requests, view.copy(), make_policy(policy), np.random.default_rng(3))
    slow = schedule(requests, view.copy(), _Uncached(policy), np.random.default_rng(3))  # type: ignore[arg-type]
    assert fast.to_json() == slow.to_json()


def test_dynamic_and_fixed_ports() -> None:
    view = ClusterView([node("a", ports=PORTS)])
    plan = schedule(
        [req(ports=(0, 31000)), req(ports=(0,))],
        view,
        make_policy("bestfit"),
        np.random.default_rng(0),
    )
    assert [p.ports for p in plan.placements] == [(31001, 31000), (31002,)]
    again = schedule([req(ports=(31000,))], view, make_policy("bestfit"), np.random.default_rng(0))
    assert again.unplaced[0].summary() == "1 node: host ports unavailable"


def test_fractional_and_whole_gpus() -> None:
    view = ClusterView([node("g", cpu=64000, mem=65536, gpus=4, model="A")])
    rng = np.random.default_rng(0)
    share = schedule([req(gpu=300), req(gpu=600)], view, make_policy("bestfit"), rng)
    # best-fit device: 300 on device 0, then 600 fits device 0 (700 idle), the smallest idle >= 600
    assert [p.gpus for p in share.placements] == [((0, 300),), ((0, 600),)]
    whole = schedule([req(gpu=2000)], view, make_policy("bestfit"), rng)
    assert whole.placements[0].gpus == ((1, 1000), (2, 1000))  # lowest-index idle devices
    assert view.gpu_idle[0].tolist() == [100, 0, 0, 1000]
    too_big = schedule([req(gpu=2000)], view, make_policy("bestfit"), rng)
    assert too_big.unplaced[0].reasons == (("insufficient gpus", 1),)
    wrong_model = schedule(
        [req(gpu=500, models=frozenset({"B"}))], view, make_policy("bestfit"), rng
    )
    assert wrong_model.unplaced[0].reasons == (("GPU model not allowed", 1),)


def test_priority_goes_first() -> None:
    view = ClusterView([node("a", cpu=1000)])
    low, high = req("/low", cpu=1000, priority=0), req("/high", cpu=1000, priority=5)
    plan = schedule([low, high], view, make_policy("pallet"), np.random.default_rng(0))
    assert [p.app_id for p in plan.placements] == ["/high"]
    assert plan.unplaced[0].app_id == "/low"


def test_unplaced_summary_reads_well() -> None:
    view = ClusterView([node("a", cpu=500), node("b", cpu=500), node("c", cpu=4000, mem=100)])
    plan = schedule(
        [req(cpu=1000, mem=1024)], view, make_policy("pallet"), np.random.default_rng(0)
    )
    assert plan.unplaced[0].summary() == "2 nodes: insufficient cpus; 1 node: insufficient mem"


def test_inactive_nodes_get_nothing() -> None:
    from pallet.model import NodeState

    view = ClusterView([node("a"), node("b")])
    view.set_state("a", NodeState.UNREACHABLE)
    plan = schedule(
        [req() for _ in range(3)], view, make_policy("k8s-default"), np.random.default_rng(0)
    )
    assert {p.node_id for p in plan.placements} == {"b"}


@pytest.mark.parametrize("policy", POLICY_NAMES)
def test_release_restores_the_view(policy: str) -> None:
    view = ClusterView([node("a", gpus=2, model="A", ports=PORTS), node("b", ports=PORTS)])
    fresh = view.copy()
    plan = schedule(
        [req(gpu=500, ports=(0,)), req(ports=(0,)), req(gpu=1000)],
        view,
        make_policy(policy),
        np.random.default_rng(0),
    )
    for p in plan.placements:
        view.release(p.request_id)
    for name in (
        "free_cpu",
        "free_mem",
        "free_gpu",
        "gpu_idle",
        "gpu_full",
        "gpu_maxidle",
        "port_free",
    ):
        assert (getattr(view, name) == getattr(fresh, name)).all(), name
    assert view.app_rows == {} and view.tasks == {} and view.ports_used == [set(), set()]


def test_a_cluster_without_nodes_places_nothing_and_says_so() -> None:
    # numpy's max of no scores raised, so every scheduling round of an empty cluster failed
    for name in ("pallet", "first-fit", "k8s-default"):
        plan = schedule([req()], ClusterView([]), make_policy(name), np.random.default_rng(0))
        assert plan.placements == () and len(plan.unplaced) == 1
