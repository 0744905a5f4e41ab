"""What an agent may register as the address the master calls it at (server-side request
forgery): table-driven, pure."""

from __future__ import annotations

import pytest

from pallet.model import ValidationError
from pallet.model.net import agent_address, agent_subnet, is_loopback, network_name_problem


@pytest.mark.parametrize(
    ("address", "peer", "expected"),
    [
        ("http://127.0.0.2:5051", "127.0.0.1", "http://127.0.0.2:5051"),  # pallet up
        ("http://127.0.0.2:5051/", None, "http://127.0.0.2:5051"),
        ("http://localhost:5051", "127.0.0.1", "http://127.0.0.1:5051"),
        ("https://10.250.0.2:5051", "10.250.0.2", "https://10.250.0.2:5051"),
        ("http://0.0.0.0:5051", "10.250.0.2", "http://10.250.0.2:5051"),  # bound to all
        ("http://[::1]:5051", "::1", "http://[::1]:5051"),
    ],
)
def test_an_agent_registers_its_own_address(address: str, peer: str | None, expected: str) -> None:
    assert agent_address(address, peer) == expected


@pytest.mark.parametrize(
    ("address", "peer", "why"),
    [
        ("http://169.254.169.254:80", "10.250.0.2", "not the address the agent connected"),
        ("http://127.0.0.1:2379", "10.250.0.2", "not the address the agent connected"),
        ("http://10.250.0.2:5051/latest/meta-data?", "10.250.0.2", "no path or query"),
        ("http://10.250.0.2:5051?x=1", "10.250.0.2", "no path or query"),
        ("http://10.250.0.2:5051#frag", "10.250.0.2", "no path or query"),
        ("http://user:pw@10.250.0.2:5051", "10.250.0.2", "user or password"),
        ("http://metadata.internal:80", "10.250.0.2", "must be an IP address"),
        ("file:///etc/shadow", None, "http:// or https://"),
        ("gopher://10.250.0.2:70", "10.250.0.2", "http:// or https://"),
        ("http://10.250.0.2", "10.250.0.2", "port"),
        ("http://10.250.0.2:99999", "10.250.0.2", "not a URL"),
        ("http://0.0.0.0:5051", None, "cannot be connected to"),
        ("http://224.0.0.1:5051", None, "cannot be connected to"),
    ],
)
def test_an_address_the_master_should_not_call_is_refused(
    address: str, peer: str | None, why: str
) -> None:
    with pytest.raises(ValidationError, match=why) as caught:
        agent_address(address, peer)
    assert caught.value.field == "/address"


def test_loopback() -> None:
    assert is_loopback("127.0.0.5") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.com")


@pytest.mark.parametrize(
    ("subnet", "index", "agents", "share"),
    [
        # a /24 each, as DC/OS's overlay gave each agent of 9.0.0.0/8
        ("9.0.0.0/8", 0, 3, "9.0.0.0/24"),
        ("9.0.0.0/8", 2, 3, "9.0.2.0/24"),
        ("10.77.0.0/16", 7, 8, "10.77.7.0/24"),
        # fewer /24s than agents need: equal parts (3 agents: 4 parts of a /24)
        ("10.77.0.0/24", 1, 3, "10.77.0.64/26"),
        ("10.77.0.0/24", 0, 1, "10.77.0.0/24"),
    ],
)
def test_each_agent_of_one_host_gets_its_share_of_a_network(
    subnet: str, index: int, agents: int, share: str
) -> None:
    assert agent_subnet(subnet, index, agents) == share


def test_a_network_too_small_for_the_agents_is_refused() -> None:
    with pytest.raises(ValueError, match="too small for 8 agents"):
        agent_subnet("10.0.0.0/28", 0, 8)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("dcos", None),
        ("my-net-1", None),
        ("", "must be 1-63 characters"),
        ("n" * 64, "must be 1-63 characters"),
        ("-x", "must match ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"),
        ("Dcos", "must match ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"),
        ("a_b", "must match ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"),
    ],
)
def test_network_names_are_marathons_name(name: str, problem: str | None) -> None:
    assert network_name_problem(name) == problem
