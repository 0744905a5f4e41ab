"""``pallet up``'s arithmetic, the exposure warnings and its restart limit."""

from __future__ import annotations

import itertools
import json
import subprocess
from pathlib import Path

import pytest

from pallet.agent.fingerprint import parse_resources
from pallet.master import up as up_module
from pallet.master.restarts import FIRST_DELAY, MAX_DELAY, RestartPolicy
from pallet.master.up import (
    Cluster,
    Member,
    UpConfig,
    agent_address,
    agent_plans,
    local_share,
    port_slices,
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


def _exited(code: int = 1) -> subprocess.Popen[bytes]:
    p = subprocess.Popen(["sh", "-c", f"exit {code}"])
    p.wait()
    return p


def _cluster(tmp_path: Path, member: Member, master: subprocess.Popen[bytes]) -> Cluster:
    boss = Member("master", ["master"], tmp_path / "master.log", master)
    plan = agent_plans(UpConfig(agents=1, state_dir=tmp_path), tmp_path)
    return Cluster(UpConfig(agents=1, state_dir=tmp_path), "u", [boss, member], plan)


def test_a_crash_looping_agent_is_started_again_later_and_nothing_else_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[str] = []
    monkeypatch.setattr(
        up_module, "_spawn", lambda args, log, env=None: started.append(args[0]) or _exited()
    )
    said: list[str] = []
    with subprocess.Popen(["sleep", "30"]) as master:
        try:
            member = Member(
                "agent 0", ["agent"], tmp_path / "agent.log", _exited(), RestartPolicy(0.0)
            )
            (tmp_path / "agent.log").write_text("starting\nerror: the disk is full\n")
            cluster = _cluster(tmp_path, member, master)
            # First exit: started again at once, saying why it exited.
            supervise(cluster, 1.0, said.append)
            assert started == ["agent"] and "error: the disk is full" in said[-1]
            # Second exit soon after: it waits, and says for how long.
            supervise(cluster, 2.0, said.append)
            assert started == ["agent"] and "starting it again in 1 s" in said[-1]
            supervise(cluster, 2.5, said.append)
            assert started == ["agent"]
            supervise(cluster, 3.1, said.append)
            assert started == ["agent", "agent"]
            doc = json.loads((tmp_path / "up.json").read_text())
            assert doc["agents"][0]["exits_in_a_row"] == 2
            assert master.poll() is None  # the master was never touched
        finally:
            master.kill()


def test_running_processes_are_left_alone(tmp_path: Path) -> None:
    with subprocess.Popen(["sleep", "30"]) as p:
        try:
            member = Member("agent 0", ["agent"], tmp_path / "agent.log", p)
            cluster = _cluster(tmp_path, member, p)
            said: list[str] = []
            supervise(cluster, 0.0, said.append)
            assert said == [] and not member.restarts.backing_off
        finally:
            p.kill()


@pytest.mark.parametrize(
    ("exits_at", "delays"),
    [
        # Exits a second apart: at once, then 1, 2, 4, 8, 16, 30 (capped), 30 s.
        ([1, 2, 3, 4, 5, 6, 7, 8], [0, 1, 2, 4, 8, 16, 30, 30]),
        # A run of over a minute forgives the earlier exits: at once again.
        ([1, 2, 200], [0, 1, 0]),
    ],
)
def test_restarts_back_off_and_a_long_run_is_forgiven(
    exits_at: list[float], delays: list[float]
) -> None:
    policy = RestartPolicy(started_at=0.0)
    got = []
    for t in exits_at:
        got.append(policy.exited(t))
        assert policy.backing_off and policy.due(t + got[-1])
        policy.started(t + got[-1])
    assert got == delays
    assert MAX_DELAY == 30.0 and FIRST_DELAY == 1.0


def test_given_resources_replace_only_the_items_they_name() -> None:
    share = parse_resources(local_share(2, 0, "gpus:1"))
    whole = parse_resources(local_share(2, 0, None))
    assert share["gpus"] == 1
    assert share["cpus"] == whole["cpus"] and share["ports"] == whole["ports"]


def test_port_slices_are_back_to_back() -> None:
    assert port_slices(3) == [(31000, 31332), (31333, 31665), (31666, 31998)]
    assert port_slices(1) == [(31000, 32000)]


def test_each_agent_gets_its_own_share_of_a_container_network(tmp_path: Path) -> None:
    from pallet.master.up_plan import agent_args

    config = UpConfig(agents=3, state_dir=tmp_path, networks=(("dcos", "9.0.0.0/8"),))
    shares = []
    for plan in agent_plans(config, tmp_path):
        args = agent_args(config, "http://127.0.0.1:8080", plan)
        shares.append(args[args.index("--network") + 1])
    assert shares == [f"name=dcos,subnet=9.0.{i}.0/24" for i in range(3)]
