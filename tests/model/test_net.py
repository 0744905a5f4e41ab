"""What an agent may register as the address the master calls it at (server-side request
forgery): table-driven, pure."""

from __future__ import annotations

import pytest

from pallet.model import ValidationError
from pallet.model.net import agent_address, is_loopback


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
