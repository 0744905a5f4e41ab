"""Parsing Marathon constraints; their semantics are tested in tests/core/test_constraints.py."""

import pytest

from pallet.model import Constraint, Operator, ValidationError, parse_constraints


def test_parse_all_operators() -> None:
    raw = [
        ["hostname", "UNIQUE"],
        ["rack", "CLUSTER", "r1"],
        ["zone", "GROUP_BY", "3"],
        ["os", "LIKE", "ubuntu.*"],
        ["os", "UNLIKE", "centos"],
        ["hostname", "MAX_PER", "2"],
        ["type", "IS", "gpu"],
        ["zone", "IN", "a,b"],
        ["rack", "group_by"],
    ]
    got = parse_constraints(raw)
    assert [c.operator for c in got] == [
        Operator.UNIQUE,
        Operator.CLUSTER,
        Operator.GROUP_BY,
        Operator.LIKE,
        Operator.UNLIKE,
        Operator.MAX_PER,
        Operator.IS,
        Operator.IN,
        Operator.GROUP_BY,
    ]
    assert got[2].group_minimum == 3 and got[8].group_minimum == 0
    assert got[0].to_marathon() == ["hostname", "UNIQUE"]
    assert str(got[5]) == "hostname MAX_PER 2"


@pytest.mark.parametrize(
    ("raw", "path", "fragment"),
    [
        ("hostname", "/constraints", "list"),
        ([["hostname"]], "/constraints(0)", "[field, operator]"),
        ([["hostname", "SOMETIMES"]], "/constraints(0)", "unknown operator"),
        ([["os", "LIKE"]], "/constraints(0)", "needs a value"),
        ([["os", "LIKE", "("]], "/constraints(0)", "not a regex"),
        ([["h", "MAX_PER", "-1"]], "/constraints(0)", "positive whole number"),
        ([["h", "GROUP_BY", "x"]], "/constraints(0)", "group count"),
        ([["", "UNIQUE"]], "/constraints(0)", "must not be empty"),
        ([["h", "UNIQUE", 3]], "/constraints(0)", "strings"),
    ],
)
def test_parse_errors_name_the_item(raw: object, path: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse_constraints(raw)
    assert err.value.field == path
    assert fragment in err.value.message


def test_constraint_is_hashable_and_frozen() -> None:
    c = Constraint("hostname", Operator.UNIQUE)
    assert {c: 1}[Constraint("hostname", Operator.UNIQUE)] == 1
