"""Address allocation on a bridge or container network (its records only, no root) and
the ``--network`` option."""

from __future__ import annotations

from pathlib import Path

import pytest

from pallet.agent.bridge import (
    BridgeNetwork,
    NetworkError,
    agent_networks,
    check_networks,
    parse_network,
)


def test_each_task_gets_the_lowest_free_address_and_keeps_it(tmp_path: Path) -> None:
    net = BridgeNetwork(tmp_path / "dev", "agent-1", subnet="10.77.0.0/29", name="dev")
    # 10.77.0.1 is the gateway (the bridge's own address): tasks start at .2
    assert [net.allocate(f"t{i}", []) for i in range(3)] == ["10.77.0.2", "10.77.0.3", "10.77.0.4"]
    assert net.allocate("t1", []) == "10.77.0.3"  # asked again: the address it holds
    (tmp_path / "dev" / net._state("t0").name).unlink()  # t0's network removed
    assert net.allocate("t3", []) == "10.77.0.2"  # the freed address is reused first
    assert net.allocate("t4", []) == "10.77.0.5"
    assert net.allocate("t5", []) == "10.77.0.6"
    with pytest.raises(NetworkError, match=r"no free address left in 10.77.0.0/29"):
        net.allocate("t6", [])  # /29: 6 hosts, the gateway and 5 tasks
    # A new agent run reads what the last one allocated.
    again = BridgeNetwork(tmp_path / "dev", "agent-1", subnet="10.77.0.0/29", name="dev")
    assert again.address("t4") == "10.77.0.5" and again.address("t0") is None


def test_named_networks_get_bridges_and_namespaces_of_their_own(tmp_path: Path) -> None:
    bridge = BridgeNetwork(tmp_path / "network", "agent-1")
    dev = BridgeNetwork(tmp_path / "dev", "agent-1", subnet="10.77.0.0/24", name="dev")
    prod = BridgeNetwork(tmp_path / "prod", "agent-1", subnet="10.78.0.0/24", name="prod")
    assert len({bridge.bridge, dev.bridge, prod.bridge}) == 3
    assert len({bridge.chain, dev.chain, prod.chain}) == 3
    assert len({n.netns("t1") for n in (bridge, dev, prod)}) == 3
    assert all(len(n.bridge) <= 15 for n in (bridge, dev, prod))  # IFNAMSIZ


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("name=dcos,subnet=9.0.0.0/8", ("dcos", "9.0.0.0/8")),
        ("subnet=10.77.0.0/16, name=dev-1", ("dev-1", "10.77.0.0/16")),
    ],
)
def test_the_network_option(text: str, parsed: tuple[str, str]) -> None:
    assert parse_network(text) == parsed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("dcos", "expected name=<network>,subnet=<CIDR>"),
        ("name=dcos", "expected name=<network>,subnet=<CIDR>"),
        ("name=dcos,subnet=10.0.0.0/8,mtu=1400", "expected name=<network>,subnet=<CIDR>"),
        ("name=DCOS,subnet=10.0.0.0/8", "must match"),
        ("name=dcos,subnet=10.0.0.1/8", "has host bits set"),
        ("name=dcos,subnet=10.0.0.0/31", "/30 or larger"),
        ("name=dcos,subnet=fd00::/64", "must be IPv4"),
    ],
)
def test_a_malformed_network_option_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(NetworkError, match=message):
        parse_network(text)


def test_networks_do_not_overlap_each_other_or_the_bridge() -> None:
    check_networks([("a", "10.77.0.0/16"), ("b", "10.78.0.0/16")], "10.88.0.0/24")
    with pytest.raises(NetworkError, match=r"network b: subnet 10\.77\.1\.0/24 overlaps network a"):
        check_networks([("a", "10.77.0.0/16"), ("b", "10.77.1.0/24")], "10.88.0.0/24")
    with pytest.raises(NetworkError, match="overlaps the bridge"):
        check_networks([("a", "10.88.0.0/16")], "10.88.0.0/24")
    with pytest.raises(NetworkError, match="network a is given twice"):
        check_networks([("a", "10.77.0.0/16"), ("a", "10.79.0.0/16")], "10.88.0.0/24")


def test_a_network_an_earlier_run_had_is_kept_for_the_tasks_on_it(tmp_path: Path) -> None:
    base = tmp_path / "networks"
    (base / "old").mkdir(parents=True)
    (base / "old" / "subnet").write_text("10.79.0.0/24\n")
    old = BridgeNetwork(base / "old", "agent-1", subnet="10.79.0.0/24", name="old")
    old.allocate("t1", [])
    (base / "Bad_Name").mkdir()  # not a network's directory
    (base / "nosubnet").mkdir()
    nets = agent_networks(base, "agent-1", [("dcos", "10.77.0.0/24")], None)
    assert sorted(nets) == ["dcos", "old"]
    assert nets["old"].bridge == old.bridge and nets["old"].address("t1") == "10.79.0.2"
    assert str(nets["old"].subnet) == "10.79.0.0/24"
    # given again, it is the operator's network, not a retired one
    again = agent_networks(base, "agent-1", [("old", "10.79.0.0/24")], None)
    assert sorted(again) == ["old"] and again["old"].address("t1") == "10.79.0.2"
