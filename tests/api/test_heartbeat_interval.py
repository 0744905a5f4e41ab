"""The master tells each agent how often to beat and how long its long-polls may wait (in
its answers to registrations and heartbeats), so the cluster's heartbeats and idle polls
per second stay under the configured bound; a long-poll may wait what was granted."""

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
        assert r.json()["poll_wait"] == 30.0  # the agents' own while the interval is short
    assert intervals == [2.0, 4.0, 6.0]  # nodes / rate, as the cluster grows
    r = await api.post("/v1/agent/nodes/node-0/heartbeat", json={"usage": {}})
    assert r.status_code == 200, r.text
    assert r.json() == {"state": "ACTIVE", "heartbeat_interval": 6.0, "poll_wait": 30.0}
    assert control.state.liveness["node-0"].interval == 6.0


async def test_long_polls_may_wait_the_interval_once_it_is_longer(
    api: httpx.AsyncClient, control: Control, monkeypatch: pytest.MonkeyPatch
) -> None:
    control.nodes.max_heartbeats_per_second = 0.01  # 2 nodes: an interval of 200 s
    for i in range(2):
        r = await api.post("/v1/agent/register", json=node_body(i))
        assert r.status_code == 200, r.text
    assert r.json()["heartbeat_interval"] == 200.0 and r.json()["poll_wait"] == 200.0
    r = await api.post("/v1/agent/nodes/node-0/heartbeat", json={"usage": {}})
    assert r.json()["poll_wait"] == 200.0
    control.nodes.max_heartbeats_per_second = 0.0001  # 20,000 s: the wait stops at 300 s
    r = await api.post("/v1/agent/nodes/node-0/heartbeat", json={"usage": {}})
    assert r.json()["heartbeat_interval"] == 20000.0 and r.json()["poll_wait"] == 300.0
    control.nodes.max_heartbeats_per_second = 0.01
    waits: list[float] = []

    async def desired(node_id: str, after: int, wait: float) -> tuple[int, list[object]]:
        waits.append(wait)
        return 1, []

    monkeypatch.setattr(control.nodes, "desired", desired)
    for asked in ("150", "200", "900", "nan", "-1"):
        r = await api.get("/v1/agent/nodes/node-0/desired", params={"after": 0, "wait": asked})
        assert r.status_code == 200, r.text
    # What the agent asks, up to what was granted (the longer of it and 60 s).
    assert waits == [150.0, 200.0, 200.0, 0.0, 0.0]
