"""``pallet bench deploy``'s pure parts: the bounds it checks samples against, and its
``--strategies`` option (bad ones refused before any cluster starts)."""

from __future__ import annotations

import pytest

from pallet.bench.deploy import bounds

from .conftest import Run


@pytest.mark.parametrize(
    ("instances", "strategy", "expected"),
    [
        (10, (1.0, 1.0), (10, 20)),  # Marathon's default
        (10, (0.5, 0.0), (5, 10)),
        (10, (1.0, 0.0), (10, 11)),  # the two meet: one over, as Marathon allows
        (10, (0.0, 1.0), (0, 20)),
        (3, (0.5, 0.0), (2, 3)),  # ceil for the least ready
    ],
)
def test_bounds_follow_marathons_rule(
    instances: int, strategy: tuple[float, float], expected: tuple[int, int]
) -> None:
    assert bounds(instances, *strategy) == expected


@pytest.mark.parametrize(
    ("value", "says"),
    [("0.5", "give minimumHealthCapacity,maximumOverCapacity"), ("1,2", "between 0 and 1")],
)
def test_bad_strategies_are_refused_before_anything_starts(run: Run, value: str, says: str) -> None:
    result = run("bench", "deploy", "--strategies", value, "--upgrades", "1")
    assert result.code == 2
    assert "--strategies" in result.err and says in result.err
