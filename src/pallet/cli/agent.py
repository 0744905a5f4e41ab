"""``pallet agent``: run the node daemon that runs this machine's tasks for a master."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import typer

from pallet.agent.daemon import AgentConfig, serve_agent
from pallet.agent.fingerprint import parse_attributes, parse_resources
from pallet.agent.isolation import DEFAULT_TASK_PIDS_MAX
from pallet.model import ValidationError
from pallet.model.limits import PIDS_MAX_CEILING
from pallet.model.roles import role_messages

__all__ = ["agent"]


def agent(
    master: str = typer.Option(
        ...,
        help="The master's URL, e.g. http://127.0.0.1:8080, or several masters' separated by "
        "commas: the agent finds the leader itself.",
    ),
    resources: str | None = typer.Option(
        None, help='Override what is offered: "cpus:8;mem:16384;disk:10000;ports:[31000-32000]".'
    ),
    attributes: str | None = typer.Option(None, help='Node attributes: "rack:r1;zone:a".'),
    role: str = typer.Option(
        "*",
        help="The role this node's resources are reserved for: * (any app) or e.g. "
        "slave_public (a public agent: only apps whose acceptedResourceRoles name it).",
    ),
    work_dir: Path = typer.Option(
        Path("pallet-agent"), help="Where sandboxes and the node id live."
    ),
    hostname: str | None = typer.Option(None, help="The node's hostname (HOST of its tasks)."),
    bind: str = typer.Option(
        "127.0.0.1", help="Address of the agent's log server; beyond loopback it warns."
    ),
    port: int = typer.Option(5051, help="Port of the agent's log server (0 = any free)."),
    heartbeat_interval: float = typer.Option(5.0, help="Seconds between heartbeats."),
    task_user: str | None = typer.Option(
        None,
        help="Run tasks whose app sets no `user` as this user (default: the agent's own). "
        "Running tasks as other users needs the agent to run as root.",
    ),
    fetcher_cache_mib: int = typer.Option(
        2048, help="MiB of fetched URIs (fetch with cache: true) kept for later tasks."
    ),
    image_store_mib: int = typer.Option(
        20480, help="MiB of container images kept (least recently used, unused ones go)."
    ),
    registry_auth_file: Path | None = typer.Option(
        None,
        help='Registry credentials, Docker\'s format: {"auths": {"host:port": {"auth": ...}}}.',
    ),
    insecure_registry: list[str] = typer.Option(
        [], help="A registry (host:port) that may answer plain HTTP; loopback ones always may."
    ),
    bridge_subnet: str = typer.Option(
        "10.88.0.0/24", help="Subnet of the agent's bridge for container/bridge networking."
    ),
    disk_path: list[str] = typer.Option(
        [],
        help="A disk for persistent volumes of type path, DIR or DIR:MiB (repeatable; "
        "default size: the free space of DIR's filesystem); volumes share it.",
    ),
    disk_mount: list[str] = typer.Option(
        [],
        help="A mount point for persistent volumes of type mount, DIR or DIR:MiB "
        "(repeatable; default size: its filesystem's); one volume takes it whole.",
    ),
    network: list[str] = typer.Option(
        [],
        help="A named container network, name=dcos,subnet=10.77.0.0/16 (repeatable): tasks "
        "of apps on networks [{mode: container, name: dcos}] get an address of their own in it.",
    ),
    container_pids_limit: int = typer.Option(
        4096, help="Processes and threads each container may have at once."
    ),
    task_pids_max: int = typer.Option(
        DEFAULT_TASK_PIDS_MAX,
        help="Processes and threads each command task may have at once (its pids cgroup); "
        "an app's label PALLET_PIDS_MAX sets its own, for containers too.",
    ),
    dynamic_task_users: bool = typer.Option(
        False,
        help="Run each task whose app names no `user` as a uid and gid of its app's own (no "
        "passwd entry), so no app's tasks can read another's; needs root.",
    ),
    allow_task_user: list[str] = typer.Option(
        [],
        help="A user apps may name in `user` besides --task-user (repeat; * for any). "
        "Without it apps may name any user.",
    ),
    ca: Path | None = typer.Option(
        None, help="The cluster's CA certificate: check the master with it (https), serve TLS."
    ),
    bootstrap_secret_file: Path | None = typer.Option(
        None,
        help="File holding the cluster's bootstrap secret: join a secured cluster (once; the "
        "agent keeps its own credential in --work-dir).",
    ),
    insecure: bool = typer.Option(
        False, help="Allow binding beyond loopback without TLS and authentication."
    ),
    log_level: str = typer.Option("info", help="debug, info, warning or error."),
) -> None:
    """Run an agent: fingerprint this machine, register, run the tasks the master assigns.

    Ctrl-C or SIGTERM stops it and leaves its tasks running;
    started again with the same --work-dir, it adopts them (as for an upgrade).
    SIGUSR1 drains it: it kills its tasks, reports that, and exits."""
    if resources:
        parse_resources(resources)  # fail here, with the item named, not in the daemon
    if attributes:
        parse_attributes(attributes)
    problems = role_messages(role)
    if problems:
        raise ValidationError("--role", " ".join(problems))
    if heartbeat_interval <= 0:
        raise ValidationError("--heartbeat-interval", "must be a positive number of seconds")
    from pallet.agent.credentials import SecurityConfig
    from pallet.agent.masters import parse_masters

    try:
        parse_masters(master)
    except ValueError as e:
        raise ValidationError("--master", str(e)) from None
    from pallet.cli.ports import check_listen, valid_port
    from pallet.model.net import is_loopback

    secret = None
    if bootstrap_secret_file is not None:
        try:
            secret = bootstrap_secret_file.read_text().strip()
        except OSError as e:
            raise ValidationError(
                "--bootstrap-secret-file", f"cannot read {bootstrap_secret_file}: {e.strerror}"
            ) from None
    if ca is not None and not ca.is_file():
        raise ValidationError("--ca", f"{ca} is not a file")
    secured = ca is not None and (secret is not None or (work_dir / "credential").exists())
    if not is_loopback(bind) and not secured and not insecure:
        raise ValidationError(
            "--bind",
            f"{bind} is reachable from other machines, and without --ca and "
            "--bootstrap-secret-file anyone there could read this node's task logs; secure "
            "the cluster (pallet up --secure prints both) or add --insecure",
        )
    security = SecurityConfig(ca, secret) if ca is not None or secret is not None else None

    valid_port(port, "--port", allow_any=True)
    check_listen(bind, port, "--port", "the agent's log server")
    if fetcher_cache_mib < 0:
        raise ValidationError("--fetcher-cache-mib", "must be 0 or more")
    if image_store_mib < 0:
        raise ValidationError("--image-store-mib", "must be 0 or more")
    import ipaddress

    try:
        if ipaddress.ip_network(bridge_subnet).num_addresses < 4:
            raise ValueError("it has fewer than 4 addresses")
    except ValueError as e:
        raise ValidationError("--bridge-subnet", f"{bridge_subnet!r}: {e}") from None
    from pallet.agent.bridge import NetworkError, check_networks, parse_network
    from pallet.agent.disks import DiskError, parse_disk

    disks = []
    for kind, given in (("path", disk_path), ("mount", disk_mount)):
        for text in given:
            try:
                disks.append(parse_disk(kind, text))
            except (DiskError, ValidationError) as e:
                raise ValidationError(f"--disk-{kind}", str(e)) from None
    if len({d.root for d in disks}) != len(disks):
        raise ValidationError("--disk-path", "a directory is given twice")

    try:
        networks = tuple(parse_network(text) for text in network)
        check_networks(list(networks), bridge_subnet)
    except NetworkError as e:
        raise ValidationError("--network", str(e)) from None
    if container_pids_limit < 1:
        raise ValidationError("--container-pids-limit", "must be 1 or more")
    if not 1 <= task_pids_max <= PIDS_MAX_CEILING:
        raise ValidationError("--task-pids-max", f"must be from 1 to {PIDS_MAX_CEILING}")
    if dynamic_task_users and os.geteuid() != 0:
        raise ValidationError("--dynamic-task-users", "switching to a task's own uid needs root")
    for name in allow_task_user:
        if not name or any(c.isspace() or c == "/" for c in name):
            raise ValidationError("--allow-task-user", f"{name!r} is not a user name")
    if registry_auth_file is not None and not registry_auth_file.is_file():
        raise ValidationError("--registry-auth-file", f"{registry_auth_file} is not a file")
    if task_user is not None:
        from pallet.agent.users import UnknownUser, resolve_task_user, unreachable_by

        try:
            user = resolve_task_user(task_user)
        except UnknownUser as e:
            raise ValidationError("--task-user", str(e)) from None
        blocked = unreachable_by(user, work_dir.absolute())
        if blocked is not None:
            typer.secho(
                f"warning: user {task_user} cannot search {blocked}: its tasks reach their "
                "sandbox only as their working directory, not by $MESOS_SANDBOX",
                fg=typer.colors.YELLOW,
                err=True,
            )
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s agent %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise
    serve_agent(
        AgentConfig(
            master=master,
            work_dir=work_dir,
            hostname=hostname,
            bind=bind,
            port=port,
            resources=resources,
            attributes=attributes,
            role=role,
            heartbeat_interval=heartbeat_interval,
            task_user=task_user,
            fetcher_cache_mib=fetcher_cache_mib,
            image_store_mib=image_store_mib,
            registry_auth_file=registry_auth_file,
            insecure_registries=frozenset(insecure_registry),
            container_pids_limit=container_pids_limit,
            bridge_subnet=bridge_subnet,
            networks=networks,
            disks=tuple(disks),
            security=security,
            task_pids_max=task_pids_max,
            allowed_task_users=frozenset(allow_task_user) if allow_task_user else None,
            dynamic_task_users=dynamic_task_users,
        )
    )


if __name__ == "__main__":  # `pallet up` starts `python -m pallet.cli.agent`: fewer imports
    from pallet.cli.main import run_one

    run_one(agent)
