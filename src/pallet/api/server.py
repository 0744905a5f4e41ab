"""``create_api``: the FastAPI application of the master, every route and error handler; I/O.

Bad input is answered in Marathon's shapes (422, 400, 413, 404, 409) before anything is
stored; an unexpected error is a JSON 500 without a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from pallet.api import (
    routes_acs,
    routes_apps,
    routes_discovery,
    routes_groups,
    routes_iam,
    routes_info,
    routes_jobs,
    routes_maintenance,
    routes_nodes,
    routes_pods,
    routes_secrets,
    routes_tasks,
)
from pallet.api.context import ApiContext
from pallet.api.guard import AuthGuard, StateLookup
from pallet.api.http import install_error_handlers
from pallet.api.leading import FollowTheLeader
from pallet.api.limits import LimitSettings, RateLimits
from pallet.api.marathon import InfoSettings
from pallet.api.marathon.support import Allowances
from pallet.api.openapi import describe_bodies
from pallet.api.routes_agent import AgentRoutes
from pallet.api.routes_info import MetricsCollector
from pallet.control import Control
from pallet.ui.serve import mount_ui

if TYPE_CHECKING:
    import ssl

    from pallet.auth.audit import AuditLog
    from pallet.auth.ca import CertificateAuthority
    from pallet.auth.secretstore import SecretStore
    from pallet.auth.service import AuthService

__all__ = ["create_api"]

_NO_TELEMETRY: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters
    else {}
)
"""FastAPI's own OpenTelemetry hooks off (newer FastAPI has them): Pallet configures no
OpenTelemetry provider, yet asking whether one is set costs every request a look through
the environment (3 % of the master's time at 5,000 agents)."""


def create_api(
    control: Control,
    info: InfoSettings,
    *,
    manage_control: bool = True,
    terms: Callable[[ApiContext], Coroutine[Any, Any, None]] | None = None,
    allowances: Allowances | None = None,
    auth: AuthService | None = None,
    audit: AuditLog | None = None,
    ca: CertificateAuthority | None = None,
    agent_tls: ssl.SSLContext | None = None,
    secrets: SecretStore | None = None,
    limits: LimitSettings | None = None,
) -> FastAPI:
    """The master's HTTP API over ``control``; with ``manage_control`` the app's lifespan
    starts and stops control's loops. ``terms`` (several masters): run instead, for the
    app's life, a loop that elects this master or follows another and swaps the control
    the API serves from (``ApiContext.use``). ``allowances``: what the operator allows
    apps beyond the defaults (host paths for volumes, privileged containers). With ``auth``
    every request passes ``AuthGuard`` (tokens, permissions, the audit log); without it
    the API is open. ``secrets``: the cluster's secret store (None: secrets are off).
    ``limits``: requests and event streams per client and token (429),
    outside everything else, the guard included; None: unlimited (in-process tests)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        background: list[asyncio.Task[None]] = []
        if terms is not None:
            background.append(asyncio.create_task(terms(ctx)))
        elif manage_control:
            await control.start()
        if auth is not None:
            background.append(asyncio.create_task(auth.follow()))
        if audit is not None:
            background.append(asyncio.create_task(audit.run()))
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            for task in background:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if manage_control and terms is None:
                await control.stop()

    app = FastAPI(
        title="Pallet",
        lifespan=lifespan,
        docs_url="/v1/docs",
        redoc_url=None,
        openapi_url="/v1/openapi.json",
        **_NO_TELEMETRY,
    )
    ctx = ApiContext(
        control,
        info,
        allowances=allowances or Allowances(),
        auth=auth,
        audit=audit,
        ca=ca,
        agent_tls=agent_tls,
        secrets=secrets,
    )
    app.state.pallet = ctx
    registry = CollectorRegistry(auto_describe=True)
    registry.register(MetricsCollector(ctx))
    app.state.metrics = registry
    install_error_handlers(app)
    # The agent protocol just outside the router, inside every middleware below.
    app.add_middleware(AgentRoutes)
    app.add_middleware(FollowTheLeader)
    for module in (
        routes_apps,
        routes_pods,
        routes_groups,
        routes_jobs,
        routes_tasks,
        routes_info,
        routes_nodes,
        routes_maintenance,
        routes_discovery,
        routes_iam,
        routes_acs,
        routes_secrets,
    ):
        app.include_router(module.router)
    describe_bodies(app)  # /v1/openapi.json names the bodies routes read themselves
    mount_ui(app)  # the web dashboard (pallet.ui): its page at /, its assets under /ui
    if auth is not None:
        # Around everything (routers, the UI, routes added later): nothing goes unchecked.
        app.add_middleware(
            AuthGuard, auth=auth, lookup=StateLookup(lambda: ctx.control.state), audit=audit
        )
    if limits is not None:  # outermost: a flood of bad tokens costs no signature check
        app.add_middleware(RateLimits, settings=limits)
    return app
