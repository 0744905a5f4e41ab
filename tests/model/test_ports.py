"""Port ranges and host port assignment."""

import pytest

from pallet.model import (
    PortRange,
    ValidationError,
    assign_ports,
    free_port_count,
    parse_port_ranges,
)


def test_parse_mesos_syntax() -> None:
    assert parse_port_ranges("[31000-31002, 33000-33000]") == (
        PortRange(31000, 31002),
        PortRange(33000, 33000),
    )
    assert parse_port_ranges("8080") == (PortRange(8080, 8080),)


@pytest.mark.parametrize("bad", ["[a-b]", "[5-1]", "[0-10]", "[1-70000]", "[10-20,15-25]"])
def test_parse_rejects(bad: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse_port_ranges(bad, field="/resources/ports")
    assert err.value.field == "/resources/ports"


@pytest.mark.parametrize(
    ("requested", "used", "expected"),
    [
        ((0,), set(), (31000,)),  # dynamic: lowest free
        ((0, 0), {31000}, (31001, 31002)),
        ((31002, 0), set(), (31002, 31000)),  # fixed first, then dynamic avoids it
        ((31001,), {31001}, None),  # fixed port taken
        ((40000,), set(), None),  # fixed port outside the ranges
        ((0, 0, 0, 0), set(), None),  # only three ports in the range
        ((0,), {31000, 31001}, (31002,)),
    ],
)
def test_assign(
    requested: tuple[int, ...], used: set[int], expected: tuple[int, ...] | None
) -> None:
    ranges = (PortRange(31000, 31002),)
    assert assign_ports(requested, ranges, used) == expected


def test_free_count() -> None:
    ranges = (PortRange(31000, 31009), PortRange(32000, 32000))
    assert free_port_count(ranges, {31000, 32000, 99}) == 9  # 99 is outside every range
