"""Marathon constraint semantics (Constraints.scala), table-driven.

Cluster: four nodes
    a: rack=r1 zone=z1
    b: rack=r1 zone=z2
    c: rack=r2 zone=z1
    d: zone=z2            (no rack attribute)
Each case places the app's existing tasks first, then asks which nodes a new task
of the same app may use.
"""

from __future__ import annotations

import numpy as np
import pytest

from factories import node, req
from pallet.core import ClusterView, feasible, rejection_reasons
from pallet.core.fit import constraint_is_local
from pallet.model import Constraint, Operator, Placement


def _cluster() -> ClusterView:
    return ClusterView(
        [
            node("a", rack="r1", zone="z1"),
            node("b", rack="r1", zone="z2"),
            node("c", rack="r2", zone="z1"),
            node("d", zone="z2"),
        ]
    )


def _allowed(existing: list[str], *constraints: Constraint) -> set[str]:
    view = _cluster()
    for i, node_id in enumerate(existing):
        view.assume(Placement(req("/web", cpu=1, mem=1, id=f"old{i}"), node_id))
    mask = feasible(view, req("/web", cpu=1, mem=1, constraints=constraints))
    return {view.nodes[i].id for i in np.flatnonzero(mask)}


C = Constraint
U, CL, G, L, UL, M, IS, IN = (
    Operator.UNIQUE,
    Operator.CLUSTER,
    Operator.GROUP_BY,
    Operator.LIKE,
    Operator.UNLIKE,
    Operator.MAX_PER,
    Operator.IS,
    Operator.IN,
)


@pytest.mark.parametrize(
    ("existing", "constraint", "expected"),
    [
        # UNIQUE hostname: every node but the one holding a task.
        ([], C("hostname", U), {"a", "b", "c", "d"}),
        (["a", "c"], C("hostname", U), {"b", "d"}),
        # UNIQUE on an attribute: rack r1 is taken (by a); d has no rack -> never matches.
        (["a"], C("rack", U), {"c"}),
        # CLUSTER with a value: only that value.
        ([], C("rack", CL, "r2"), {"c"}),
        # CLUSTER without a value: any value at first, then the value already used.
        ([], C("rack", CL), {"a", "b", "c"}),
        (["b"], C("rack", CL), {"a", "b"}),
        (["c"], C("zone", CL), {"a", "c"}),
        # GROUP_BY: values not yet used are fine; used ones only if among the least loaded.
        # tasks on a (r1) -> r1 has 1, r2 has 0 (not a group yet) -> r2 allowed, r1 is the
        # only group so it is also the minimum -> allowed.
        (["a"], C("rack", G), {"a", "b", "c"}),
        # r1 has 2, r2 has 1: minimum is r2 -> only c; d lacks rack -> never.
        (["a", "b", "c"], C("rack", G), {"c"}),
        # GROUP_BY 3 with two groups in use: used values refused until a third appears;
        # d lacks rack so no third value exists -> only unused values (none) remain.
        (["a", "c"], C("rack", G, "3"), set()),
        # ... by zone: z1 used twice (a, c), z2 once (b); minimum is z2.
        (["a", "b", "c"], C("zone", G), {"b", "d"}),
        # LIKE / UNLIKE: whole-string regex; a node lacking the field matches only UNLIKE.
        ([], C("rack", L, "r1"), {"a", "b"}),
        ([], C("rack", L, "r"), set()),  # not a full match
        ([], C("rack", UL, "r1"), {"c", "d"}),
        ([], C("hostname", L, "[ab]"), {"a", "b"}),
        # MAX_PER: fewer than n tasks with that value.
        (["a", "b"], C("rack", M, "2"), {"c"}),
        (["a"], C("rack", M, "2"), {"a", "b", "c"}),
        (["a", "a"], C("hostname", M, "2"), {"b", "c", "d"}),
        # IS / IN.
        ([], C("zone", IS, "z2"), {"b", "d"}),
        ([], C("rack", IN, "r2, r9"), {"c"}),
        # @hostname is hostname.
        (["d"], C("@hostname", U), {"a", "b", "c"}),
    ],
)
def test_semantics(existing: list[str], constraint: Constraint, expected: set[str]) -> None:
    assert _allowed(existing, constraint) == expected


def test_group_by_counts_tasks_on_nodes_without_the_field_as_a_group() -> None:
    # Tasks: a (r1), d (no rack). Groups: r1=1, None=1; min 1 -> r1 allowed, r2 new -> allowed.
    assert _allowed(["a", "d"], C("rack", G)) == {"a", "b", "c"}
    # a, b (r1=2) and d (None=1): min is 1 (the None group) -> r1 refused, r2 is new.
    assert _allowed(["a", "b", "d"], C("rack", G)) == {"c"}


def test_several_constraints_all_hold() -> None:
    assert _allowed(["a"], C("hostname", U), C("zone", IS, "z1")) == {"c"}


def test_rejection_reasons_count_first_failure_per_node() -> None:
    view = _cluster()
    view.assume(Placement(req("/web", cpu=1, mem=1, id="old"), "a"))
    big = req("/web", cpu=9000, mem=1, constraints=(C("hostname", U),))
    # Every node has 8000 millicpus: all four fail on cpus first, before the constraint.
    assert rejection_reasons(view, big) == [("insufficient cpus", 4)]
    small = req("/web", cpu=1, mem=1, constraints=(C("hostname", U), C("rack", IS, "r9")))
    assert rejection_reasons(view, small) == [
        ("constraint rack IS r9", 3),
        ("constraint hostname UNIQUE", 1),
    ]


def test_locality_decides_incremental_rescoring() -> None:
    view = _cluster()
    assert constraint_is_local(C("hostname", U), view)
    assert not constraint_is_local(C("rack", U), view)  # one placement bars every r1 node
    assert not constraint_is_local(C("rack", G), view)
    dup = ClusterView([node("x", hostname_attr="1"), node("y")])
    assert constraint_is_local(C("hostname", M, "2"), dup)
