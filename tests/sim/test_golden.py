"""A small golden trace: every policy's allocation after each pod must not drift.
After an intended change, regenerate with ``python tests/golden.py``."""

from __future__ import annotations

import json

import pytest

from golden import GOLDEN_POLICIES, HERE, results


@pytest.fixture(scope="module")
def now() -> dict[str, dict[str, object]]:
    return results()


@pytest.mark.parametrize("policy", GOLDEN_POLICIES)
def test_golden(policy: str, now: dict[str, dict[str, object]]) -> None:
    expected = json.loads((HERE / "golden_results.json").read_text())
    assert now[policy] == expected[policy]
