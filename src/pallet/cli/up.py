"""``pallet up``: a master and N agents on this machine, in one terminal, until Ctrl-C."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from pallet.master.up import Cluster, UpConfig, agent_address, default_state_dir, run_up
from pallet.master.up_discovery import lb_ports
from pallet.model import ValidationError

__all__ = ["up"]


def _announce(cluster: Cluster) -> None:
    c = cluster.config
    typer.echo(f"Pallet is up: {c.agents} agent{'s' if c.agents != 1 else ''} and a master.")
    typer.echo(f"  dashboard      {cluster.url}/")
    typer.echo(f"  Marathon API   {cluster.url}/v2/apps")
    typer.echo(f"  nodes          {cluster.url}/v1/nodes")
    typer.echo(f"  metrics        {cluster.url}/metrics")
    typer.echo(f"  events         {cluster.url}/v2/events")
    agents = ", ".join(
        agent_address(i) + (" (public)" if c.is_public(i) else "") for i in range(c.agents)
    )
    typer.echo(f"  agents         {agents}")
    if c.discovery:
        typer.echo(f"  DNS            127.0.0.1:{c.dns_port} (pallet dns lookup NAME)")
        public = [agent_address(i) for i in range(c.agents) if c.is_public(i)]
        if public:
            http, _, stats = c.lb_ports
            typer.echo(
                f"  edge LB        http://{public[0]}:{http}/  stats http://{public[0]}:{stats}/haproxy?stats"
            )
    typer.echo(f"  state and logs {c.state_dir}")
    typer.echo("Press Ctrl-C to stop the agents, their tasks and the master.")
    sys.stdout.flush()


def up(
    agents: int = typer.Option(3, help="How many agents to run."),
    port: int = typer.Option(8080, help="The master's port."),
    resources: str | None = typer.Option(
        None, help="What each agent offers (default: an equal share of this machine)."
    ),
    state_dir: Path = typer.Option(default_state_dir(), help="Store, sandboxes and logs."),
    policy: str = typer.Option("pallet", help="Placement policy (pallet, k8s-default, ...)."),
    heartbeat_interval: float = typer.Option(2.0, help="Seconds between agent heartbeats."),
    heartbeat_grace: float = typer.Option(
        15.0, help="Seconds of silence before a node is UNREACHABLE."
    ),
    agent_port: int = typer.Option(5051, help="Port of each agent's log server (0 = any free)."),
    public_agents: int = typer.Option(
        0, help="How many of the agents are public (role slave_public), as DC/OS's edge."
    ),
    discovery: bool | None = typer.Option(
        None,
        "--discovery/--no-discovery",
        help="Run the DNS server, a VIP proxy per agent and, with public agents, the edge "
        "LB (default: on when there are public agents).",
    ),
    dns_port: int = typer.Option(8053, min=1, max=65535, help="Port of the DNS server."),
    lb_http_port: int | None = typer.Option(
        None, min=1, max=65535, help="Edge LB's HTTP port (80; 10080 when not root)."
    ),
    lb_stats_port: int | None = typer.Option(
        None, min=1, max=65535, help="Edge LB's stats port (9090; 19090 when not root)."
    ),
) -> None:
    """Run a whole cluster here: a master on 127.0.0.1 and agents on 127.0.0.2, .3, ..."""
    from pallet.core import POLICY_NAMES

    if not 1 <= agents <= 200:
        raise ValidationError("--agents", "run between 1 and 200 agents")
    if not 0 <= public_agents <= agents:
        raise ValidationError("--public-agents", f"run between 0 and {agents} public agents")
    if policy not in POLICY_NAMES:
        raise ValidationError(
            "--policy", f"unknown policy {policy!r}; choose from {', '.join(POLICY_NAMES)}"
        )
    config = UpConfig(
        agents=agents,
        port=port,
        resources=resources,
        state_dir=state_dir,
        policy=policy,
        heartbeat_interval=heartbeat_interval,
        heartbeat_grace=heartbeat_grace,
        agent_port=agent_port,
        public_agents=public_agents,
        discovery=public_agents > 0 if discovery is None else discovery,
        dns_port=dns_port,
        lb_ports=(
            lb_http_port or lb_ports()[0],
            lb_ports()[1],  # bound only with a certificate, which up does not give
            lb_stats_port or lb_ports()[2],
        ),
    )
    try:
        code = run_up(config, _announce)
    except RuntimeError as e:
        typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    raise typer.Exit(code)
