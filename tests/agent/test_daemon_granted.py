"""What an agent takes from the master's ``heartbeat_interval`` (the cluster's bound on
heartbeats per second): a sane number of seconds, else what it had."""

from __future__ import annotations

import httpx
import pytest

from pallet.agent.daemon import granted_interval


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (httpx.Response(200, json={"state": "ACTIVE", "heartbeat_interval": 250.0}), 250.0),
        (httpx.Response(200, json={"state": "ACTIVE", "heartbeat_interval": 0}), 0.0),
        (httpx.Response(200, json={"state": "ACTIVE"}), 7.0),  # an older master
        (httpx.Response(200, json={"heartbeat_interval": "soon"}), 7.0),
        (httpx.Response(200, json={"heartbeat_interval": True}), 7.0),
        (httpx.Response(200, json={"heartbeat_interval": -1}), 7.0),
        (httpx.Response(200, json={"heartbeat_interval": 1e12}), 7.0),
        (httpx.Response(200, json=[1, 2]), 7.0),
        (httpx.Response(200, content=b"not json"), 7.0),
    ],
)
def test_granted_interval(answer: httpx.Response, expected: float) -> None:
    assert granted_interval(answer, 7.0) == expected
