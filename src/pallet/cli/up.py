"""``pallet up``: a master and N agents on this machine, in one terminal, until Ctrl-C.

Everything is checked before anything starts: the options, the addresses the master and
the agents will listen on, and that no other ``pallet up`` runs on the same state
directory. The banner comes only once the master answers and every agent registered.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from pathlib import Path

import typer

from pallet.master.up import Cluster, run_up
from pallet.master.up_plan import (
    StartFailed,
    UpConfig,
    agent_plans,
    default_state_dir,
    master_urls,
)
from pallet.model import ValidationError

__all__ = ["parse_up_attributes", "up"]

_ATTRIBUTE = re.compile(r"^\s*([A-Za-z0-9_.\-/]+)\s*=\s*([^=,;:]*?)\s*$")


def _networks(options: list[str], agents: int) -> tuple[tuple[str, str], ...]:
    """``--network`` options, checked: each splits into one share per agent."""
    from pallet.agent.bridge import NetworkError, check_networks, parse_network
    from pallet.model.net import agent_subnet

    try:
        networks = [parse_network(text) for text in options]
        for i in range(agents):
            shares = [(name, agent_subnet(subnet, i, agents)) for name, subnet in networks]
            check_networks(shares, f"10.88.{i % 256}.0/24")
    except (NetworkError, ValueError) as e:
        raise ValidationError("--network", str(e)) from None
    return tuple(networks)


def parse_up_attributes(text: str, agents: int) -> tuple[str, ...]:
    """``rack=r1,zone=a;rack=r2,zone=b`` (one list per agent, ``;`` between agents) as each
    agent's ``--attributes`` (``rack:r1;zone:a``). One list alone goes to every agent;
    otherwise there is one per agent."""
    from pallet.agent.fingerprint import parse_attributes

    groups = [g for g in text.split(";")]
    if len(groups) not in (1, agents):
        raise ValidationError(
            "--attributes",
            f"gives {len(groups)} agents' attributes for {agents} agents; give one list "
            "per agent, separated by ';', or one list for all",
        )
    out = []
    for i, group in enumerate(groups):
        items = []
        for item in (part for part in group.split(",") if part.strip()):
            m = _ATTRIBUTE.match(item)
            if not m or not m.group(2):
                raise ValidationError(
                    "--attributes",
                    f"agent {i + 1}: cannot read {item.strip()!r}; write name=value, "
                    "such as 'rack=r1,zone=a;rack=r2,zone=b'",
                )
            items.append(f"{m.group(1)}:{m.group(2)}")
        converted = ";".join(items)
        if converted:
            parse_attributes(converted, "--attributes")  # names, duplicates
        out.append(converted)
    return tuple(out * agents if len(out) == 1 else out)


def _check_state_dir(state: Path) -> None:
    """Two ``pallet up`` on one state directory would run each agent twice."""
    import psutil

    try:
        doc = json.loads((state / "up.json").read_text())
        pid = int(doc["master"]["pid"])
        url = str(doc["master"]["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return
    with contextlib.suppress(psutil.Error):
        command = " ".join(psutil.Process(pid).cmdline())
        if "pallet.cli.master" in command and str(state) in command:
            raise ValidationError(
                "--state-dir",
                f"{state} is in use by the cluster at {url} (master pid {pid}); stop that "
                "`pallet up` first, or give this one another --state-dir and --port",
            )


def _preflight(config: UpConfig) -> None:
    from pallet.cli.ports import check_listen

    _check_state_dir(config.state_dir.resolve())
    for i in range(config.masters):
        check_listen(config.host, config.port + i, "--port", f"master {i}")
    if config.masters > 1 and not (config.state_dir.resolve() / "etcd" / "cluster.json").exists():
        for i in range(config.masters):
            check_listen(config.host, config.port + 100 + i, "--port", f"etcd member {i}")
    if config.registry_port is not None:
        check_listen("127.0.0.1", config.registry_port, "--registry-port", "the registry")
    for plan in agent_plans(config, config.state_dir):
        check_listen(
            plan.address, config.agent_port, "--agent-port", f"agent {plan.index}'s log server"
        )


def _log_in(cluster: Cluster) -> list[str]:
    """Keep a superuser's token and the CA for this master in the CLI's config, so the
    commands after ``pallet up --secure`` just work; the lines saying where the secrets
    are."""
    from pallet.cli.credentials import remember
    from pallet.master.up import admin_client
    from pallet.master.up_secure import secure_dir

    directory = secure_dir(cluster.config.state_dir.resolve())
    with admin_client(cluster) as client:
        r = client.get("/v1/auth/whoami")
        r.raise_for_status()
        token = r.request.headers["Authorization"].removeprefix("token=")
    for url in master_urls(cluster.config):  # any master may be the one a command names
        path = remember(url, token=token, uid="admin", ca=str(directory / "ca.crt"))
    return [
        f"  secured        TLS from the cluster CA {directory / 'ca.crt'}",
        f"  superuser      admin, password in {directory / 'admin-password'}",
        f"  CLI            logged in as admin (token in {path})",
    ]


def _announce(cluster: Cluster, user_note: str = "") -> None:
    c = cluster.config
    # Before saying "up": a command run the moment it is printed finds its token.
    secured = _log_in(cluster) if c.secure else []
    heads = "a master" if c.masters == 1 else f"{c.masters} masters"
    typer.echo(f"Pallet is up: {c.agents} agent{'s' if c.agents != 1 else ''} and {heads}.")
    if c.masters > 1:
        urls = ", ".join(master_urls(c))
        typer.echo(f"  masters        {urls} (one leads; the others redirect to it)")
        assert cluster.etcd is not None
        typer.echo(f"  etcd           {cluster.etcd.url.split('?')[0]}")
    typer.echo(f"  dashboard      {cluster.url}/")
    typer.echo(f"  Marathon API   {cluster.url}/v2/apps")
    typer.echo(f"  nodes          {cluster.url}/v1/nodes")
    typer.echo(f"  metrics        {cluster.url}/metrics")
    typer.echo(f"  events         {cluster.url}/v2/events")
    for plan in cluster.plans:
        label = "agents" if plan.index == 0 else ""
        shown = (plan.attributes or "").replace(":", "=").replace(";", ",")
        attributes = f"  {shown}" if shown else ""
        public = " (public)" if c.is_public(plan.index) else ""
        typer.echo(f"  {label:<14} {plan.address:<11} ports {plan.ports}{attributes}{public}")
    if c.agents > 1:
        typer.echo(
            "  The agents share this machine's ports, so each offers its own slice of\n"
            "  31000-32000: an app asking for a fixed port runs only where it is in the slice."
        )
    if c.discovery:
        typer.echo(f"  DNS            127.0.0.1:{c.dns_port} (pallet dns lookup NAME)")
        edge = [plan.address for plan in cluster.plans if c.is_public(plan.index)]
        if edge:
            http, _, stats = c.lb_ports
            typer.echo(f"  edge LB        http://{edge[0]}:{http}/")
            typer.echo(f"  LB stats       http://{edge[0]}:{stats}/haproxy?stats")
    if c.registry_port is not None:
        typer.echo(f"  registry       127.0.0.1:{c.registry_port} (pallet image load FILE.tar)")
    for line in secured:
        typer.echo(line)
    typer.echo(f"  state and logs {c.state_dir}")
    who = c.task_user or "the user running pallet up"
    if c.secure and c.task_user is not None:  # the agents' --dynamic-task-users
        who = f"a uid of each app's own (apps may name {c.task_user})"
    typer.echo(f"  tasks run as   {who}{user_note}")
    typer.echo("Press Ctrl-C to stop the agents, their tasks and the master.")
    sys.stdout.flush()


def _unprivileged_user(state_dir: Path, secure: bool = False) -> tuple[str | None, str]:
    """``nobody`` when up runs as root, the machine has it and it can reach the sandboxes
    under ``state_dir``; else None (tasks run as up's own user) and why not. A secure
    cluster runs them as nobody even where it cannot reach them by their path: a task
    then finds its sandbox as its working directory only, not by ``$MESOS_SANDBOX``."""
    import os

    from pallet.agent.users import UnknownUser, lookup_user, unreachable_by

    if os.geteuid() != 0:
        return None, ""
    try:
        nobody = lookup_user("nobody")
    except UnknownUser:
        return None, " (this machine has no user nobody)"
    blocked = unreachable_by(nobody, state_dir.absolute())
    if blocked is not None and secure:
        return nobody.name, f" (it cannot search {blocked}: $MESOS_SANDBOX is not reachable)"
    if blocked is not None:
        return None, f" (nobody cannot search {blocked}: pick another --state-dir)"
    return nobody.name, ""


def up(
    agents: int = typer.Option(3, help="How many agents to run."),
    masters: int = typer.Option(
        1,
        help="Masters to run: 1 (on SQLite), or 3, 5 or 7 on an etcd with as many members, "
        "started with them (high availability: one leads, a new one takes over if it dies).",
    ),
    port: int = typer.Option(8080, help="The master's port."),
    resources: str | None = typer.Option(
        None,
        help="What each agent offers instead of its equal share of this machine, item by "
        "item: 'gpus:1' adds a GPU to each, 'cpus:2;mem:4096' sets those.",
    ),
    attributes: str | None = typer.Option(
        None,
        help="Each agent's attributes, agents separated by ';': 'zone=a;zone=b;zone=c' "
        "(one list alone goes to every agent).",
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
    task_user: str | None = typer.Option(
        None,
        help="Run tasks whose app sets no `user` as this user. Default: `nobody` when up "
        "runs as root and the machine has it, else up's own user.",
    ),
    allow_task_user: list[str] = typer.Option(
        [],
        help="A user apps may name in `user` (repeat; * for any, root included). Default: "
        "any; with --secure only the task user.",
    ),
    allow_host_path: list[str] = typer.Option(
        [], help="A host directory apps and jobs may mount as a hostPath volume (repeat for more)."
    ),
    allow_privileged: bool = typer.Option(
        False, help="Let apps and jobs run privileged containers (docker.privileged)."
    ),
    registry: bool = typer.Option(
        False, help="Run a registry for the agents (`pallet image load FILE.tar` fills it)."
    ),
    registry_port: int = typer.Option(5000, min=1, max=65535, help="The registry's port."),
    network: list[str] = typer.Option(
        [],
        help="A container network, name=dcos,subnet=9.0.0.0/8 (repeatable): each agent gets "
        "a /24 of it, and apps on networks [{mode: container, name: dcos}] an IP per task.",
    ),
    token_ttl: float | None = typer.Option(
        None, help="With --secure: seconds a login token is valid (the master's default: 3600)."
    ),
    secure: bool = typer.Option(
        False,
        "--secure",
        help="Authentication and TLS: a cluster CA, HTTPS, agents joining with a bootstrap "
        "secret, the superuser admin (the CLI is logged in as it).",
    ),
) -> None:
    """Run a whole cluster here: a master on 127.0.0.1 and agents on 127.0.0.2, .3, ..."""
    from pallet.agent.fingerprint import parse_resources
    from pallet.cli.ports import valid_port
    from pallet.core import POLICY_NAMES
    from pallet.master.up_discovery import lb_ports

    if not 1 <= agents <= 200:
        raise ValidationError("--agents", f"{agents}: run between 1 and 200 agents")
    from pallet.master.up_ha import quorum_problem

    if problem := quorum_problem(masters):
        raise ValidationError("--masters", problem)
    if not 0 <= public_agents <= agents:
        raise ValidationError("--public-agents", f"run between 0 and {agents} public agents")
    valid_port(port, "--port")
    valid_port(agent_port, "--agent-port", allow_any=True)
    if policy not in POLICY_NAMES:
        raise ValidationError(
            "--policy", f"unknown policy {policy!r}; choose from {', '.join(POLICY_NAMES)}"
        )
    if not heartbeat_interval > 0 or not heartbeat_grace > 0:
        raise ValidationError("--heartbeat-interval/--heartbeat-grace", "must be positive")
    if resources:
        parse_resources(resources)
    note = ""
    if task_user is None:
        task_user, note = _unprivileged_user(state_dir, secure)
    else:
        from pallet.agent.users import UnknownUser, resolve_task_user

        try:
            resolve_task_user(task_user)
        except UnknownUser as e:
            raise ValidationError("--task-user", str(e)) from None
    config = UpConfig(
        agents=agents,
        port=port,
        resources=resources,
        state_dir=state_dir,
        policy=policy,
        heartbeat_interval=heartbeat_interval,
        heartbeat_grace=heartbeat_grace,
        agent_port=agent_port,
        attributes=parse_up_attributes(attributes, agents) if attributes else (),
        masters=masters,
        public_agents=public_agents,
        discovery=public_agents > 0 if discovery is None else discovery,
        secure=secure,
        dns_port=dns_port,
        lb_ports=(
            lb_http_port or lb_ports()[0],
            lb_ports()[1],  # bound only with a certificate, which up does not give
            lb_stats_port or lb_ports()[2],
        ),
        task_user=task_user,
        allowed_task_users=tuple(allow_task_user),
        token_ttl=token_ttl,
        allowed_host_paths=tuple(allow_host_path),
        allow_privileged=allow_privileged,
        registry_port=registry_port if registry else None,
        networks=_networks(network, agents),
    )
    if token_ttl is not None and not (config.secure and 60 <= token_ttl <= 30 * 86400):
        raise ValidationError("--token-ttl", "needs --secure, and 60 s to 30 days")
    _preflight(config)
    try:
        code = run_up(config, lambda cluster: _announce(cluster, note))
    except StartFailed as e:
        typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    raise typer.Exit(code)
