"""``create_api``: the FastAPI application of the master, every route and error handler; I/O.

Bad input is answered in Marathon's shapes (422, 400, 413, 404, 409) before anything is
stored; an unexpected error is a JSON 500 without a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from pallet.api import (
    routes_agent,
    routes_apps,
    routes_discovery,
    routes_groups,
    routes_info,
    routes_jobs,
    routes_nodes,
    routes_pods,
    routes_tasks,
)
from pallet.api.context import ApiContext
from pallet.api.http import install_error_handlers
from pallet.api.leading import follow_the_leader
from pallet.api.marathon import InfoSettings
from pallet.api.marathon.support import Allowances
from pallet.api.routes_info import MetricsCollector
from pallet.control import Control
from pallet.ui.serve import mount_ui

__all__ = ["create_api"]


def create_api(
    control: Control,
    info: InfoSettings,
    *,
    manage_control: bool = True,
    terms: Callable[[ApiContext], Coroutine[Any, Any, None]] | None = None,
    allowances: Allowances | None = None,
) -> FastAPI:
    """The master's HTTP API over ``control``; with ``manage_control`` the app's lifespan
    starts and stops control's loops. ``terms`` (several masters): run instead, for the
    app's life, a loop that elects this master or follows another and swaps the control
    the API serves from (``ApiContext.use``). ``allowances``: what the operator allows
    apps beyond the defaults (host paths for volumes, privileged containers)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if terms is not None:
            runner: asyncio.Task[None] = asyncio.create_task(terms(ctx))
            try:
                yield
            finally:
                runner.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await runner
            return
        if manage_control:
            await control.start()
        try:
            yield
        finally:
            if manage_control:
                await control.stop()

    app = FastAPI(
        title="Pallet",
        lifespan=lifespan,
        docs_url="/v1/docs",
        redoc_url=None,
        openapi_url="/v1/openapi.json",
    )
    ctx = ApiContext(control, info, allowances=allowances or Allowances())
    app.state.pallet = ctx
    registry = CollectorRegistry(auto_describe=True)
    registry.register(MetricsCollector(ctx))
    app.state.metrics = registry
    install_error_handlers(app)
    app.middleware("http")(follow_the_leader)
    for module in (
        routes_apps,
        routes_pods,
        routes_groups,
        routes_jobs,
        routes_tasks,
        routes_info,
        routes_nodes,
        routes_agent,
        routes_discovery,
    ):
        app.include_router(module.router)
    mount_ui(app)  # the web dashboard (pallet.ui): its page at /, its assets under /ui
    return app
