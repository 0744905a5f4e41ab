"""``pallet up``'s options: bad ones are one line and exit 2 before anything starts; a
taken port is named with what holds it; attributes are given agent by agent."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pallet.bench.cluster import free_port
from pallet.cli.up import parse_up_attributes
from pallet.model import ValidationError


def _up(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pallet.cli.main", "up", "--state-dir", str(tmp_path), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--port", "99999"), "--port: 99999 is not a port"),
        (("--agents", "0"), "--agents: 0: run between 1 and 200 agents"),
        (("--agent-port", "-1"), "--agent-port: -1 is not a port"),
        (("--attributes", "zone"), "--attributes: agent 1: cannot read 'zone'"),
        (("--agents", "3", "--attributes", "zone=a;zone=b"), "gives 2 agents' attributes for 3"),
        (("--resources", "cpus:lots"), "--resources: 'cpus:lots'"),
        (("--policy", "best"), "--policy: unknown policy 'best'"),
        (("--masters", "2"), "--masters: 2: an even number of members"),
        (("--masters", "9"), "--masters: 9: run 1 master, or 3, 5 or 7"),
    ],
)
def test_bad_options_are_one_line_and_start_nothing(
    tmp_path: Path, args: tuple[str, ...], fragment: str
) -> None:
    done = _up(tmp_path, *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert fragment in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stdout == ""
    assert not (tmp_path / "master.log").exists()


def test_a_taken_port_is_named_with_its_holder_and_the_flag(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        done = _up(tmp_path, "--port", str(port))
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"--port: 127.0.0.1:{port} is in use by pid {os.getpid()}" in done.stderr
    assert "another port with --port" in done.stderr
    assert "Pallet is up" not in done.stdout
    assert not (tmp_path / "master.log").exists()
    assert time.monotonic() - started < 60


def test_an_agents_taken_port_names_the_agent(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.3", 0))  # agent 1's address
        taken.listen()
        port = taken.getsockname()[1]
        done = _up(tmp_path, "--agents", "2", "--agent-port", str(port), "--port", str(free_port()))
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"--agent-port: 127.0.0.3:{port} is in use" in done.stderr
    assert "give agent 1's log server another port with --agent-port" in done.stderr


def test_attributes_are_given_agent_by_agent() -> None:
    assert parse_up_attributes("rack=r1,zone=a;rack=r2,zone=b", 2) == (
        "rack:r1;zone:a",
        "rack:r2;zone:b",
    )
    assert parse_up_attributes("zone=a", 3) == ("zone:a", "zone:a", "zone:a")
    assert parse_up_attributes(" zone = a ;", 2) == ("zone:a", "")
    with pytest.raises(ValidationError, match="zone is given twice"):
        parse_up_attributes("zone=a,zone=b", 1)
    with pytest.raises(ValidationError, match="cannot read 'zone=a:b'"):
        parse_up_attributes("zone=a:b", 1)
