"""Bridge networking for containers (Marathon's ``container/bridge``): a network namespace
per task, a veth pair to a Linux bridge the agent owns, and DNAT from each host port to
the task's container port; does I/O (``ip``, ``iptables``, /proc/sys).

    host :31005 ──DNAT──▶ 10.88.0.7:8080 ── veth ── bridge pb<key> (10.88.0.1/24) ── NAT ──▶ out

- The bridge, its address and one ``nat`` chain (``PALLET-<key>``) are the agent's; the
  chain is entered from PREROUTING and OUTPUT for packets to a local address (to the
  agent's own address when its hostname is one), so clients on other hosts and on this
  one, loopback included (``route_localnet`` on the bridge, and the source rewritten),
  reach the task. Containers reach out through MASQUERADE.
- Each task gets the lowest free address of the subnet, a namespace ``ip netns`` keeps
  (``/run/netns/...``, so it outlives the agent like the task does) and its DNAT rules,
  marked with the task id. What a task holds is written to ``<dir>/<task id>.json``:
  a restarted agent keeps the networks of the tasks it adopts and removes the others.

Named container networks (Marathon's ``networks: [{mode: container, name}]``, an IP per
task as DC/OS gave with CNI) are the same machinery on a bridge of their own: the
operator names each with ``--network name=dcos,subnet=10.77.0.0/16``; the task gets the
lowest free address of that subnet, reachable from the host and from the other tasks of
the network by that address (host ports in its ``portMappings`` are DNATed as above).
The network is the agent's own: agents whose tasks should reach each other across hosts
get disjoint subnets and routes between them from the operator.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import logging
import subprocess
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pallet.model import PalletError
from pallet.model.net import network_name_problem

__all__ = [
    "DEFAULT_SUBNET",
    "BridgeNetwork",
    "NetworkError",
    "PortMapping",
    "agent_networks",
    "check_networks",
    "named_networks",
    "parse_network",
    "retired_networks",
]

log = logging.getLogger(__name__)

DEFAULT_SUBNET = "10.88.0.0/24"


class NetworkError(PalletError):
    """A task's network could not be set up; the message says which step failed."""


@dataclass(frozen=True, slots=True)
class PortMapping:
    """Traffic to ``host_port`` goes to the task's ``container_port`` (``protocol`` is
    ``tcp``, ``udp`` or ``udp,tcp``)."""

    container_port: int
    host_port: int
    protocol: str = "tcp"


def _key(text: str, n: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


class BridgeNetwork:
    """The bridge network of one agent; thread-safe."""

    def __init__(
        self,
        directory: Path,
        agent_id: str,
        *,
        subnet: str = DEFAULT_SUBNET,
        host_address: str | None = None,
        name: str | None = None,
    ) -> None:
        """``name``: a named container network (``--network``) rather than the agent's
        bridge for ``container/bridge``; the same machinery on a bridge of its own."""
        self.directory = directory
        self.name = name
        self.key = _key(agent_id if name is None else f"{agent_id}/network/{name}", 6)
        self.bridge = f"{'pb' if name is None else 'pn'}{self.key}"
        self.chain = f"PALLET-{self.key}"
        self.subnet = ipaddress.ip_network(subnet)
        self.gateway = next(self.subnet.hosts())
        self.host_address = host_address
        self._lock = threading.Lock()
        self._ready = False

    # ------------------------------------------------------------ the agent's part

    def ensure(self) -> None:
        """Create the bridge, its address, sysctls and NAT rules (idempotent)."""
        with self._lock:
            if self._ready:
                return
            if not Path(f"/sys/class/net/{self.bridge}").exists():
                _run("ip", "link", "add", self.bridge, "type", "bridge")
            address = f"{self.gateway}/{self.subnet.prefixlen}"
            if address not in _run("ip", "-o", "addr", "show", "dev", self.bridge):
                _run("ip", "addr", "add", address, "dev", self.bridge)
            _run("ip", "link", "set", self.bridge, "up")
            for setting in ("route_localnet", "forwarding"):
                Path(f"/proc/sys/net/ipv4/conf/{self.bridge}/{setting}").write_text("1")
            _iptables_try("-N", self.chain)
            local = ["-m", "addrtype", "--dst-type", "LOCAL"]
            if self.host_address is not None:
                local = ["-d", self.host_address]
            for hook in ("PREROUTING", "OUTPUT"):
                _ensure_rule(hook, [*local, "-j", self.chain])
            _ensure_rule(
                "POSTROUTING", ["-s", "127.0.0.0/8", "-o", self.bridge, "-j", "MASQUERADE"]
            )
            _ensure_rule(
                "POSTROUTING", ["-s", str(self.subnet), "!", "-o", self.bridge, "-j", "MASQUERADE"]
            )
            self.directory.mkdir(parents=True, exist_ok=True)
            (self.directory / "subnet").write_text(f"{self.subnet}\n")  # for a later run
            self._ready = True

    def close(self) -> None:
        """Remove the bridge and its rules, if no task holds a network any more."""
        with self._lock:
            if list(self.directory.glob("*.json")) if self.directory.is_dir() else []:
                return
            local = ["-m", "addrtype", "--dst-type", "LOCAL"]
            if self.host_address is not None:
                local = ["-d", self.host_address]
            for hook in ("PREROUTING", "OUTPUT"):
                _iptables_try("-D", hook, *local, "-j", self.chain)
            _iptables_try(
                "-D", "POSTROUTING", "-s", "127.0.0.0/8", "-o", self.bridge, "-j", "MASQUERADE"
            )
            _iptables_try(
                "-D",
                "POSTROUTING",
                "-s",
                str(self.subnet),
                "!",
                "-o",
                self.bridge,
                "-j",
                "MASQUERADE",
            )
            _iptables_try("-F", self.chain)
            _iptables_try("-X", self.chain)
            with contextlib.suppress(NetworkError):
                _run("ip", "link", "del", self.bridge)
            self._ready = False

    # ------------------------------------------------------------ a task's part

    def netns(self, task_id: str) -> str:
        return f"pt-{self.key}-{_key(task_id, 10)}"

    def netns_path(self, task_id: str) -> str:
        return f"/run/netns/{self.netns(task_id)}"

    def attach(self, task_id: str, mappings: list[PortMapping]) -> str:
        """Give ``task_id`` a namespace on the bridge with its DNAT rules; return its
        address. NetworkError (and nothing left behind) if a step fails."""
        self.ensure()
        ns, host_end = self.netns(task_id), f"vh{_key(task_id, 10)}"
        peer = f"vc{_key(task_id, 10)}"
        address = self.allocate(task_id, mappings)
        try:
            _run("ip", "netns", "add", ns)
            _run("ip", "link", "add", host_end, "type", "veth", "peer", "name", peer)
            _run("ip", "link", "set", host_end, "master", self.bridge, "up")
            _run("ip", "link", "set", peer, "netns", ns)
            _run("ip", "-n", ns, "link", "set", peer, "name", "eth0")
            _run("ip", "-n", ns, "addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", "eth0")
            _run("ip", "-n", ns, "link", "set", "eth0", "up")
            _run("ip", "-n", ns, "link", "set", "lo", "up")
            _run("ip", "-n", ns, "route", "add", "default", "via", str(self.gateway))
            for m in mappings:
                for protocol in m.protocol.split(","):
                    _run(
                        "iptables", "-w", "-t", "nat", "-A", self.chain, "-p", protocol,
                        "--dport", str(m.host_port), "-j", "DNAT",
                        "--to-destination", f"{address}:{m.container_port or m.host_port}",
                        "-m", "comment", "--comment", f"pallet:{task_id}",
                    )  # fmt: skip
        except NetworkError:
            self.detach(task_id)
            raise
        return address

    def allocate(self, task_id: str, mappings: list[PortMapping]) -> str:
        """Record ``task_id``'s address: the lowest of the subnet no task holds (the
        gateway excluded), or the one it holds already."""
        with self._lock:
            held = self.address(task_id)
            return held if held is not None else self._allocate(task_id, mappings)

    def _allocate(self, task_id: str, mappings: list[PortMapping]) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        used = {str(self.gateway)}
        for path in self.directory.glob("*.json"):
            with contextlib.suppress(OSError, ValueError, KeyError):
                used.add(json.loads(path.read_text())["address"])
        for host in self.subnet.hosts():
            if str(host) not in used:
                doc = {
                    "task_id": task_id,
                    "address": str(host),
                    "netns": self.netns(task_id),
                    "ports": [[m.container_port, m.host_port, m.protocol] for m in mappings],
                }
                self._state(task_id).write_text(json.dumps(doc))
                return str(host)
        raise NetworkError(f"bridge {self.bridge}: no free address left in {self.subnet}")

    def _state(self, task_id: str) -> Path:
        return self.directory / f"{_key(task_id, 16)}.json"

    def address(self, task_id: str) -> str | None:
        with contextlib.suppress(OSError, ValueError, KeyError):
            return str(json.loads(self._state(task_id).read_text())["address"])
        return None

    def detach(self, task_id: str) -> None:
        """Remove the task's DNAT rules, veth pair and namespace (errors are logged)."""
        tag = f"pallet:{task_id}"
        with contextlib.suppress(NetworkError):
            for rule in _run("iptables", "-w", "-t", "nat", "-S", self.chain).splitlines():
                if f'"{tag}"' in rule or f" {tag} " in f"{rule} ":
                    args = rule.split()
                    args[0] = "-D"
                    _iptables_try(*[a.strip('"') for a in args])
        with contextlib.suppress(NetworkError):
            _run("ip", "link", "del", f"vh{_key(task_id, 10)}")
        with contextlib.suppress(NetworkError):
            _run("ip", "netns", "del", self.netns(task_id))
        self._state(task_id).unlink(missing_ok=True)

    def sweep(self, keep: frozenset[str]) -> list[str]:
        """Remove the networks of tasks an earlier run left that are not ``keep``."""
        gone = []
        for path in sorted(self.directory.glob("*.json")) if self.directory.is_dir() else []:
            try:
                task_id = str(json.loads(path.read_text())["task_id"])
            except (OSError, ValueError, KeyError):
                path.unlink(missing_ok=True)
                continue
            if task_id not in keep:
                self.detach(task_id)
                gone.append(task_id)
        return gone


def named_networks(
    directory: Path, agent_id: str, networks: Sequence[tuple[str, str]], host_address: str | None
) -> dict[str, BridgeNetwork]:
    """The agent's named container networks, each keeping its tasks' records in
    ``directory/<name>``."""
    return {
        name: BridgeNetwork(
            directory / name, agent_id, subnet=subnet, host_address=host_address, name=name
        )
        for name, subnet in networks
    }


def agent_networks(
    directory: Path, agent_id: str, networks: Sequence[tuple[str, str]], host_address: str | None
) -> dict[str, BridgeNetwork]:
    """The agent's named networks (``named_networks``) and those an earlier run had
    (``retired_networks``), by name."""
    names = [name for name, _ in networks]
    return {
        **retired_networks(directory, agent_id, names, host_address),
        **named_networks(directory, agent_id, networks, host_address),
    }


def retired_networks(
    directory: Path, agent_id: str, configured: Iterable[str], host_address: str | None
) -> dict[str, BridgeNetwork]:
    """Named networks an earlier run of the agent had and this one was not given: kept
    (not offered) so the tasks it adopts on them keep their network until they end, and
    the others' are swept."""
    known = set(configured)
    out = {}
    for d in sorted(directory.iterdir()) if directory.is_dir() else []:
        if d.name in known or network_name_problem(d.name) or not d.is_dir():
            continue
        try:
            subnet = str(ipaddress.ip_network((d / "subnet").read_text().strip()))
        except (OSError, ValueError):
            continue
        out[d.name] = BridgeNetwork(
            d, agent_id, subnet=subnet, host_address=host_address, name=d.name
        )
    return out


def parse_network(text: str) -> tuple[str, str]:
    """``name=dcos,subnet=10.77.0.0/16`` -> (name, subnet); NetworkError says what is
    wrong."""
    fields: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in ("name", "subnet") or key.strip() in fields:
            raise NetworkError(f"{text!r}: expected name=<network>,subnet=<CIDR>")
        fields[key.strip()] = value.strip()
    if set(fields) != {"name", "subnet"}:
        raise NetworkError(f"{text!r}: expected name=<network>,subnet=<CIDR>")
    problem = network_name_problem(fields["name"])
    if problem:
        raise NetworkError(f"network name {fields['name']!r} {problem}")
    try:
        subnet = ipaddress.ip_network(fields["subnet"])
    except ValueError as e:
        raise NetworkError(f"network {fields['name']}: subnet {e}") from None
    if subnet.version != 4 or subnet.num_addresses < 4:
        raise NetworkError(f"network {fields['name']}: subnet must be IPv4, /30 or larger")
    return fields["name"], str(subnet)


def check_networks(networks: list[tuple[str, str]], bridge_subnet: str) -> None:
    """Names unique, and no two subnets (nor the bridge's) overlapping."""
    seen: dict[str, str] = {}
    nets = [("the bridge (--bridge-subnet)", ipaddress.ip_network(bridge_subnet))]
    for name, subnet in networks:
        if name in seen:
            raise NetworkError(f"network {name} is given twice")
        seen[name] = subnet
        here = ipaddress.ip_network(subnet)
        for other, there in nets:
            if here.overlaps(there):
                raise NetworkError(f"network {name}: subnet {subnet} overlaps {other} ({there})")
        nets.append((f"network {name}", here))


def _run(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise NetworkError(f"{' '.join(argv[:4])}: {done.stderr.strip() or done.returncode}")
    return done.stdout


def _iptables_try(*args: str) -> None:
    with contextlib.suppress(NetworkError):
        _run("iptables", "-w", "-t", "nat", *args)


def _ensure_rule(chain: str, rule: list[str]) -> None:
    try:
        _run("iptables", "-w", "-t", "nat", "-C", chain, *rule)
    except NetworkError:
        _run("iptables", "-w", "-t", "nat", "-A", chain, *rule)
