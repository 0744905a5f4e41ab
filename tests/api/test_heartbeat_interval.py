"""The master tells each agent how often to beat (in its answers to registrations and
heartbeats), so the cluster's heartbeats per second stay under the configured bound."""

from __future__ import annotations

import httpx
import pytest

from pallet.control import Control

from .conftest import node_body

pytestmark = pytest.mark.anyio


async def test_registrations_and_heartbeats_say_the_interval(
    api: httpx.AsyncClient, control: Control
) -> None:
    control.nodes.max_heartbeats_per_second = 0.5
    intervals = []
    for i in range(3):
        r = await api.post("/v1/agent/register", json=node_body(i))
        assert r.status_code == 200, r.text
        intervals.append(r.json()["heartbeat_interval"])
    assert intervals == [2.0, 4.0, 6.0]  # nodes / rate, as the cluster grows
    r = await api.post("/v1/agent/nodes/node-0/heartbeat", json={"usage": {}})
    assert r.status_code == 200, r.text
    assert r.json() == {"state": "ACTIVE", "heartbeat_interval": 6.0}
    assert control.state.liveness["node-0"].interval == 6.0
