"""``pallet master``: store + control + API, served by uvicorn; the composition root.

open_store(url) ─▶ Control(store, policy, grace) ─▶ create_api(control, info) ─▶ uvicorn
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from pallet import __version__
from pallet.api import create_api
from pallet.api.context import ApiContext
from pallet.api.limits import LimitSettings
from pallet.api.marathon import InfoSettings
from pallet.api.marathon.support import Allowances
from pallet.auth.secretbox import KEY_ENV, SecretBox
from pallet.auth.secretstore import SecretStore
from pallet.control import Control, ControlConfig
from pallet.control.leader import Election, Leader
from pallet.master.protocol import guarded_protocol
from pallet.master.security import SecuritySettings, secure_parts
from pallet.master.terms import Terms
from pallet.model.net import is_loopback
from pallet.store import Store, StoreUnavailable, open_store

__all__ = ["MasterConfig", "serve_master"]

log = logging.getLogger(__name__)

_CLUSTER_ID_KEY = "/pallet/cluster-id"

UNAUTHENTICATED = (
    "WARNING: {what} listens on {host}, beyond this machine, and its API is "
    "UNAUTHENTICATED: anyone who can reach it can run commands on the cluster. Bind "
    "127.0.0.1 unless this network is trusted."
)


@dataclass(frozen=True, slots=True)
class MasterConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    store_url: str = "sqlite:pallet-state.db"
    policy: str = "pallet"
    heartbeat_grace: float = 15.0
    reconcile_interval: float = 1.0
    node_gone_after: float | None = 600.0
    max_heartbeats_per_second: float | None = 50.0
    advertise: str | None = None
    """The host other masters and clients reach this one at (default: ``host``)."""
    leader_ttl: int = 5
    """Seconds a leader's lease lasts unless renewed (several masters on etcd)."""
    allowed_host_paths: tuple[str, ...] = ()
    """Host directories apps may mount as volumes (none by default)."""
    allow_privileged: bool = False
    security: SecuritySettings | None = None
    """Authentication (and TLS unless ``security.tls`` is off); None: open, as before."""
    secrets_key_file: Path | None = None
    """The key sealing secrets (default: the secure dir's, else ``$PALLET_SECRETS_KEY``)."""
    limits: LimitSettings = field(default_factory=LimitSettings)
    """Requests, streams and connections per client; deadlines for slow requests."""


async def _secret_store(
    store: Store, config: MasterConfig, auth_box: SecretBox | None
) -> SecretStore | None:
    """The cluster's secrets, sealed with the key file given, else the secure dir's key,
    else ``$PALLET_SECRETS_KEY``; None (secrets off) without any. Values sealed with an
    older key are sealed again with the newest one."""
    if config.secrets_key_file is not None:
        box: SecretBox | None = SecretBox.load(config.secrets_key_file)
    elif auth_box is not None:
        box = auth_box
    elif os.environ.get(KEY_ENV):
        box = SecretBox.load(None)
    else:
        return None
    assert box is not None
    secrets = SecretStore(store, box)
    if resealed := await secrets.reseal():
        log.info("sealed %d secrets again with the newest key", resealed)
    return secrets


async def _cluster_id(store: Store) -> str:
    """The cluster's id, made once and kept in the store."""
    await store.create(_CLUSTER_ID_KEY, str(uuid.uuid4()).encode())
    kv = await store.get(_CLUSTER_ID_KEY)
    assert kv is not None
    return kv.value.decode()


async def wait_for_store(store: Store, url: str, *, first_delay: float = 1.0) -> str:
    """The cluster id, once the store takes a write: a master whose store (etcd) is down
    says so and keeps trying, instead of exiting, until it is up."""
    delay = first_delay
    while True:
        try:
            return await _cluster_id(store)  # a create-if-absent: safe to send again
        except StoreUnavailable as e:
            log.error("store %s is unreachable, retrying in %.0f s: %s", url, delay, e.detail)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 30.0)


class _Server(uvicorn.Server):
    """Ends long-polls and event streams as soon as shutdown starts, so stopping the
    master waits for no client."""

    def __init__(self, config: uvicorn.Config, ctx: ApiContext) -> None:
        super().__init__(config)
        self.ctx = ctx

    async def shutdown(self, sockets: list[Any] | None = None) -> None:
        self.ctx.control.state.release_waiters()
        self.ctx.control.bus.close()
        await super().shutdown(sockets)


async def serve_master(config: MasterConfig) -> None:
    """Serve until SIGINT/SIGTERM, then stop the loops and close the store."""
    if not is_loopback(config.host) and config.security is None:
        print(UNAUTHENTICATED.format(what="the master", host=config.host), file=sys.stderr)
    store = await open_store(config.store_url)
    try:
        cluster_id = await wait_for_store(store, config.store_url)
        control_config = ControlConfig(
            policy=config.policy,
            heartbeat_grace=config.heartbeat_grace,
            reconcile_interval=config.reconcile_interval,
            node_gone_after=config.node_gone_after,
            max_heartbeats_per_second=config.max_heartbeats_per_second,
        )
        control = Control(store, control_config)
        address = f"{config.advertise or config.host}:{config.port}"
        ha = config.store_url.startswith("etcd:")
        info = InfoSettings(
            version=__version__,
            leader=None if ha else address,
            elected=not ha,
            cluster_id=cluster_id,
            hostname=config.host,
            http_port=config.port,
            store_url=config.store_url,
            ha=ha,
        )
        terms = None
        if ha:
            # Several masters may share this store: lead only when elected, with every
            # write fenced; follow (redirect to the leader) otherwise.
            election = Election(store, Leader(str(uuid.uuid4()), address), ttl=config.leader_ttl)
            terms = Terms(election, lambda: Control(store, control_config))
        allowances = Allowances(config.allowed_host_paths, config.allow_privileged)
        tls: dict[str, Any] = {}
        if config.security is None:
            secrets = await _secret_store(store, config, None)
            app = create_api(
                control,
                info,
                terms=terms,
                allowances=allowances,
                secrets=secrets,
                limits=config.limits,
            )
        else:
            parts = await secure_parts(store, cluster_id, config.host, config.port, config.security)
            if parts.new_password is not None:
                print(
                    f"The superuser is {config.security.superuser}, password "
                    f"{parts.new_password} (shown this once: log in with pallet auth login "
                    "and change it, or give --superuser-password-file next time).",
                    file=sys.stderr,
                )
            app = create_api(
                control,
                info,
                terms=terms,
                allowances=allowances,
                auth=parts.auth,
                audit=parts.audit,
                ca=parts.ca,
                agent_tls=parts.agent_tls,
                secrets=await _secret_store(store, config, parts.auth.box),
                limits=config.limits,
            )
            if parts.cert is not None and parts.key is not None:
                tls = {"ssl_certfile": str(parts.cert), "ssl_keyfile": str(parts.key)}
        server = _Server(
            uvicorn.Config(
                app,
                host=config.host,
                port=config.port,
                http=guarded_protocol(config.limits),
                log_level="warning",
                access_log=False,
                timeout_graceful_shutdown=2,
                lifespan="on",
                **tls,
            ),
            app.state.pallet,
        )
        await server.serve()
    finally:
        await store.close()
