"""What an agent takes from the master's answers to its registration and heartbeats: the
``heartbeat_interval`` (the cluster's bound on heartbeats per second) and the
``poll_wait`` (its bound on idle long-polls ending per second), each a sane number of
seconds, else what it had; and that its long-polls ask for the wait granted."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from pallet.agent.daemon import AgentConfig, AgentDaemon, DesiredSpecs
from pallet.agent.masters import Granted, Masters, granted_interval


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


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (httpx.Response(200, json={"heartbeat_interval": 250.0, "poll_wait": 250.0}), 250.0),
        (httpx.Response(200, json={"heartbeat_interval": 2.0}), 45.0),  # an older master
        (httpx.Response(200, json={"poll_wait": "long"}), 45.0),
        (httpx.Response(200, json={"poll_wait": False}), 45.0),
        (httpx.Response(200, json={"poll_wait": -5}), 45.0),
        (httpx.Response(200, json={"poll_wait": 1e9}), 45.0),  # over an hour: not sane
        (httpx.Response(200, content=b"<html>"), 45.0),
    ],
)
def test_granted_poll_wait(answer: httpx.Response, expected: float) -> None:
    granted = Granted(heartbeat_interval=1.0, poll_wait=45.0)
    granted.take(answer)
    assert granted.poll_wait == expected


def test_the_agent_keeps_the_longer_of_its_own_and_the_granted() -> None:
    granted = Granted()
    assert (granted.beat_every(5.0), granted.wait_for(30.0)) == (5.0, 30.0)
    granted.take(httpx.Response(200, json={"heartbeat_interval": 250.0, "poll_wait": 250.0}))
    assert (granted.beat_every(5.0), granted.wait_for(30.0)) == (250.0, 250.0)
    granted.take(httpx.Response(200, json={"heartbeat_interval": 1.0, "poll_wait": 10.0}))
    assert (granted.beat_every(5.0), granted.wait_for(30.0)) == (5.0, 30.0)


class _Runtime:
    def set_desired(self, specs: object) -> list[object]:
        return []


@pytest.mark.anyio
async def test_the_daemons_long_poll_asks_for_the_wait_granted(tmp_path: Path) -> None:
    # The daemon's own poll loop against a master that granted 250 s: it asks for 250 s
    # (not its own 30) and gives the request longer than that before it times out.
    asked: list[tuple[str | None, float]] = []

    def master(request: httpx.Request) -> httpx.Response:
        timeout = request.extensions["timeout"]["read"]
        asked.append((request.url.params.get("wait"), timeout))
        if len(asked) == 2:
            raise asyncio.CancelledError  # two polls seen: end the loop
        return httpx.Response(200, json={"revision": 1, "tasks": []})

    daemon = AgentDaemon.__new__(AgentDaemon)  # only what the poll loop uses
    daemon.config = AgentConfig(master="http://master", work_dir=tmp_path, poll_wait=30.0)
    daemon.node_id = "n1"
    daemon.client = Masters(["http://master"], transport=httpx.MockTransport(master))
    daemon.granted = Granted()
    daemon.granted.take(httpx.Response(200, json={"heartbeat_interval": 250, "poll_wait": 250}))
    daemon._registered = asyncio.Event()
    daemon._registered.set()
    daemon._desired = DesiredSpecs()
    daemon.runtime = _Runtime()  # type: ignore[assignment]
    daemon._enqueue = lambda statuses: None  # type: ignore[method-assign]
    with pytest.raises(asyncio.CancelledError):
        await daemon._poll_loop()
    await daemon.client.aclose()
    assert [float(w or 0) for w, _ in asked] == [250.0, 250.0]
    assert all(timeout > 250.0 for _, timeout in asked)
