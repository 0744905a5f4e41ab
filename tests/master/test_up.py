"""``pallet up``'s arithmetic, the exposure warnings and its restart limit."""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

import pytest

from pallet.agent.fingerprint import parse_resources
from pallet.master.up import (
    RESTART_LIMIT,
    RESTART_WINDOW,
    Cluster,
    Member,
    UpConfig,
    agent_address,
    local_share,
    supervise,
)
from pallet.model.net import is_loopback


@pytest.mark.parametrize(
    ("index", "address"),
    [(0, "127.0.0.2"), (1, "127.0.0.3"), (251, "127.0.0.253"), (252, "127.0.1.0")],
)
def test_each_agent_has_its_own_loopback_address(index: int, address: str) -> None:
    assert agent_address(index) == address


def test_local_shares_split_the_ports_without_overlap() -> None:
    shares = [parse_resources(local_share(10, i, None)) for i in range(10)]
    ranges = [s["ports"][0] for s in shares]  # type: ignore[index]
    # 1,001 ports (31000-32000) over 10 agents: 100 each, back to back
    assert [(r.begin, r.end) for r in ranges[:2]] == [(31000, 31099), (31100, 31199)]
    assert all(a.end < b.begin for a, b in itertools.pairwise(ranges))
    assert all(s["cpus"] > 0 and s["mem"] > 0 for s in shares)


def test_given_resources_are_kept_and_get_their_port_slice() -> None:
    share = parse_resources(local_share(2, 1, "cpus:2;mem:4096"))
    assert share["cpus"] == 2000 and share["mem"] == 4096
    assert share["ports"][0].begin == 31500  # type: ignore[index]
    assert "ports:[1-2]" in local_share(2, 1, "cpus:2;ports:[1-2]")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.5", True),
        ("localhost", True),
        ("::1", True),
        ("0.0.0.0", False),
        ("10.0.0.1", False),
        ("example.com", False),
    ],
)
def test_binding_beyond_loopback_is_noticed(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def _exited() -> subprocess.Popen[bytes]:
    p = subprocess.Popen(["true"])
    p.wait()
    return p


def test_a_process_that_keeps_exiting_stops_the_cluster(tmp_path: Path) -> None:
    # Five restarts within the last minute: the sixth exit gives up, starting nothing.
    member = Member("agent 0", ["agent"], tmp_path / "agent.log", _exited())
    member.restarts = [100.0 + k for k in range(RESTART_LIMIT)]
    cluster = Cluster(UpConfig(state_dir=tmp_path), _exited(), [member.process], "u", [member])
    assert supervise(cluster, now=100.0 + RESTART_WINDOW - 1) is False
    assert cluster.agents == [member.process]


def test_running_processes_are_left_alone(tmp_path: Path) -> None:
    with subprocess.Popen(["sleep", "30"]) as p:
        try:
            member = Member("agent 0", ["agent"], tmp_path / "agent.log", p)
            cluster = Cluster(UpConfig(state_dir=tmp_path), p, [p], "u", [member])
            assert supervise(cluster, now=0.0) is True
            assert member.restarts == []
        finally:
            p.kill()
