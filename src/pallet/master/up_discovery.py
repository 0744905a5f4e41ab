"""What ``pallet up`` runs for service discovery besides the master and agents: the DNS
server, one VIP proxy per agent and, with public agents, the edge load balancer on the
first public agent's address; pure (the commands, not the processes).

    dns      python -m pallet.cli.dns serve     127.0.0.1:8053 (unbound, fed at run time)
    vip i    python -m pallet.cli.lb vip        agent i's VIP proxy (HAProxy, TCP)
    lb       python -m pallet.cli.lb run        HAProxy on the public agent: :80, :443, :9090
                                                (:10080, :10443, :19090 when not root)

On one machine every agent's VIP proxy binds the same VIP addresses (HAProxy sets
SO_REUSEPORT), so the kernel spreads connections over them and a VIP keeps answering
while any one of them is down; on many hosts each agent's proxy serves its own tasks'
clients, as dcos-l4lb (Minuteman) does with IPVS on every agent.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DNS_PORT", "DiscoveryMember", "discovery_members", "lb_ports"]

DNS_PORT = 8053


@dataclass(frozen=True, slots=True)
class DiscoveryMember:
    name: str
    args: list[str]
    log: Path


def lb_ports() -> tuple[int, int, int]:
    """HTTP, HTTPS and stats ports of the edge LB: Marathon-LB's, or above 10000 when
    this process may not bind ports below 1024."""
    if os.geteuid() == 0:
        return 80, 443, 9090
    return 10080, 10443, 19090


def discovery_members(
    url: str,
    state: Path,
    agents: int,
    public: list[str],
    dns_port: int = DNS_PORT,
    lb: tuple[int, int, int] | None = None,
) -> list[DiscoveryMember]:
    """The processes to start for ``agents`` agents, ``public`` being the addresses of
    the public ones (the edge LB binds the first, on ``lb``'s HTTP, HTTPS and stats
    ports; default ``lb_ports()``)."""
    out = [
        DiscoveryMember(
            "dns",
            [
                "dns",
                "serve",
                "--master",
                url,
                "--port",
                str(dns_port),
                "--work-dir",
                str(state / "dns"),
            ],
            state / "dns.log",
        )
    ]
    for i in range(agents):
        work = state / f"agent-{i}" / "vip"
        out.append(
            DiscoveryMember(
                f"vip {i}",
                [
                    "lb",
                    "vip",
                    "--master",
                    url,
                    "--name",
                    f"vip-agent-{i}",
                    "--state-dir",
                    str(work),
                ],
                state / f"agent-{i}" / "vip.log",
            )
        )
    if public:
        http, https, stats = lb or lb_ports()
        out.append(
            DiscoveryMember(
                "lb",
                [
                    "lb",
                    "run",
                    "--master",
                    url,
                    "--bind",
                    public[0],
                    "--http-port",
                    str(http),
                    "--https-port",
                    str(https),
                    "--stats-port",
                    str(stats),
                    "--state-dir",
                    str(state / "lb"),
                ],
                state / "lb.log",
            )
        )
    return out
