"""``pallet master``: serve the master (Marathon API, control loops, SQLite or etcd store)."""

from __future__ import annotations

import asyncio
import gc
import logging
from pathlib import Path

import typer

from pallet.model import ValidationError

__all__ = ["master"]


def master(
    port: int = typer.Option(8080, help="HTTP port (Marathon's is 8080)."),
    host: str = typer.Option("127.0.0.1", help="Address to bind; beyond loopback it warns."),
    store: str = typer.Option(
        "sqlite:pallet-state.db",
        help="State store: sqlite:///abs/path.db, sqlite:rel.db, memory://, or an etcd 3 "
        "cluster: etcd://h1:2379,h2:2379,h3:2379 (its members, tried in turn).",
    ),
    policy: str = typer.Option("pallet", help="Placement policy (pallet, k8s-default, ...)."),
    heartbeat_grace: float = typer.Option(
        15.0, help="Seconds without an agent heartbeat before its node is UNREACHABLE."
    ),
    max_heartbeats_per_second: float = typer.Option(
        50.0,
        help="Heartbeats per second the master asks of all agents together at most: each "
        "beats every nodes/this seconds when that is longer than its own interval, and "
        "its grace grows by as much (0: no bound).",
    ),
    node_gone_after: float = typer.Option(
        600.0,
        help="Seconds an unreachable node may stay silent before it is GONE: its tasks are "
        "replaced for good and its resources leave the totals (0: never).",
    ),
    advertise: str | None = typer.Option(
        None,
        help="The host clients and the other masters reach this one at, when it differs "
        "from --host (several masters on one etcd store elect a leader among them).",
    ),
    leader_ttl: int = typer.Option(
        5, help="Seconds a leader's lease lasts unless renewed (several masters on etcd)."
    ),
    allow_host_path: list[str] = typer.Option(
        [], help="A host directory apps and jobs may mount as a hostPath volume (repeat for more)."
    ),
    allow_privileged: bool = typer.Option(
        False, help="Let apps and jobs run privileged containers (docker.privileged)."
    ),
    secure_dir: Path | None = typer.Option(
        None,
        help="Turn on authentication and TLS: the cluster CA, keys, the bootstrap secret for "
        "agents and the secrets key live (or are made) here.",
    ),
    secrets_key_file: Path | None = typer.Option(
        None,
        help="The key file sealing the cluster's secrets (lines <id>:<64 hex digits>, 0600; "
        "newest first). Default: <secure dir>/secrets.key with --secure-dir, else "
        "$PALLET_SECRETS_KEY; without either, secrets are off.",
    ),
    tls: bool = typer.Option(True, help="With --secure-dir, serve HTTPS (--no-tls: tokens only)."),
    superuser: str = typer.Option("admin", help="The first superuser's id (made at first start)."),
    superuser_password_file: Path | None = typer.Option(
        None, help="The first superuser's password (else one is made up and printed once)."
    ),
    token_ttl: float = typer.Option(3600.0, help="Seconds a login token is valid."),
    insecure: bool = typer.Option(
        False, help="Allow binding beyond loopback without authentication and TLS."
    ),
    rate_limit: float = typer.Option(
        10_000.0, help="Requests a second one client address, or one token, may send (0: off)."
    ),
    rate_burst: int = typer.Option(20_000, help="Requests a client may send at once."),
    max_streams: int = typer.Option(
        256, help="Event streams one client address, or one token, may hold open (0: no cap)."
    ),
    max_connections: int = typer.Option(
        20_000, help="Connections one client address may hold open (0: no cap)."
    ),
    header_timeout: float = typer.Option(
        10.0, help="Seconds a connection has to send a request's headers (0: no deadline)."
    ),
    body_timeout: float = typer.Option(
        30.0, help="Seconds a request has to send its body after its headers (0: no deadline)."
    ),
    log_level: str = typer.Option("info", help="debug, info, warning or error."),
) -> None:
    """Run the master: the Marathon-compatible API and the scheduler, until Ctrl-C."""
    from pallet.core import POLICY_NAMES  # imported here: the other commands start faster
    from pallet.master.server import MasterConfig, serve_master
    from pallet.store.factory import check_store_url

    try:
        check_store_url(store)
    except ValueError as e:  # InvalidArgument: the URL is named by its flag, not "url"
        raise ValidationError("--store", str(e).removeprefix("url: ")) from None

    if policy not in POLICY_NAMES:
        raise ValidationError(
            "--policy", f"unknown policy {policy!r}; choose from {', '.join(POLICY_NAMES)}"
        )
    if not 1 <= leader_ttl <= 600:
        raise ValidationError("--leader-ttl", "must be between 1 and 600 seconds")
    if heartbeat_grace <= 0:
        raise ValidationError("--heartbeat-grace", "must be a positive number of seconds")
    if not 0 <= max_heartbeats_per_second < float("inf"):
        raise ValidationError(
            "--max-heartbeats-per-second", "must be 0 (no bound) or a positive rate"
        )
    if not 0 <= node_gone_after < float("inf"):
        raise ValidationError("--node-gone-after", "must be 0 (never) or a number of seconds")
    from pallet.cli.ports import check_listen, valid_port
    from pallet.master.security import SecuritySettings
    from pallet.model.net import is_loopback

    if not is_loopback(host) and (secure_dir is None or not tls) and not insecure:
        raise ValidationError(
            "--host",
            f"{host} is reachable from other machines, and without --secure-dir (with TLS) "
            "anyone there could run commands on the cluster; add --secure-dir DIR, or "
            "--insecure on a network you trust",
        )
    if superuser_password_file is not None and not superuser_password_file.is_file():
        raise ValidationError(
            "--superuser-password-file", f"{superuser_password_file} is not a file"
        )
    if not 60 <= token_ttl <= 30 * 86400:
        raise ValidationError("--token-ttl", "must be 60 s to 30 days")
    from pallet.api.limits import LimitSettings

    for flag, value in (
        ("--rate-limit", rate_limit),
        ("--rate-burst", rate_burst),
        ("--max-streams", max_streams),
        ("--max-connections", max_connections),
        ("--header-timeout", header_timeout),
        ("--body-timeout", body_timeout),
    ):
        if not 0 <= value < float("inf"):
            raise ValidationError(flag, "must be 0 (off) or a positive number")
    if rate_limit > 0 and rate_burst < 1:
        raise ValidationError("--rate-burst", "must be 1 or more while --rate-limit is on")
    limits = LimitSettings(
        requests_per_second=rate_limit,
        burst=rate_burst,
        streams=max_streams,
        connections=max_connections,
        header_timeout=header_timeout,
        body_timeout=body_timeout,
    )
    security = (
        SecuritySettings(
            secure_dir.resolve(),
            tls=tls,
            superuser=superuser,
            superuser_password_file=superuser_password_file,
            token_ttl=token_ttl,
        )
        if secure_dir is not None
        else None
    )
    if secrets_key_file is not None:
        from pallet.auth.secretbox import SecretBox

        try:
            SecretBox.load(secrets_key_file)
        except (OSError, ValueError) as e:
            raise ValidationError("--secrets-key-file", str(e)) from None
    valid_port(port, "--port")
    check_listen(host, port, "--port", "the master")  # before anything is opened or said
    for path in allow_host_path:
        if not path.startswith("/") or ".." in path.split("/"):
            raise ValidationError("--allow-host-path", f"{path!r} is not an absolute path")
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s master %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise
    config = MasterConfig(
        host=host,
        port=port,
        store_url=store,
        policy=policy,
        heartbeat_grace=heartbeat_grace,
        node_gone_after=node_gone_after or None,
        max_heartbeats_per_second=max_heartbeats_per_second or None,
        advertise=advertise,
        leader_ttl=leader_ttl,
        allowed_host_paths=tuple(allow_host_path),
        allow_privileged=allow_privileged,
        security=security,
        secrets_key_file=None if secrets_key_file is None else secrets_key_file.resolve(),
        limits=limits,
    )
    # The master holds hundreds of thousands of long-lived objects (tasks, specs, nodes)
    # and allocates per request: with the default thresholds the cyclic collector walked
    # them all again and again (bench scale, 2,500 nodes: 29 s inside the collector by
    # the time the master had used 45 CPU-s, 18 of them in full passes; 8 s with these).
    # Only when cyclic garbage is collected changes, never what is.
    gc.set_threshold(20_000, 20, 100)
    asyncio.run(serve_master(config))


if __name__ == "__main__":  # `pallet up` starts `python -m pallet.cli.master`: fewer imports
    from pallet.cli.main import run_one

    run_one(master)
