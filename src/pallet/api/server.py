"""``create_api``: the FastAPI application of the master, every route and error handler; I/O.

Bad input is answered in Marathon's shapes (422, 400, 413, 404, 409) before anything is
stored; an unexpected error is a JSON 500 without a traceback.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

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
    routes_tasks,
)
from pallet.api.context import ApiContext
from pallet.api.http import install_error_handlers
from pallet.api.marathon import InfoSettings
from pallet.api.routes_info import MetricsCollector
from pallet.control import Control
from pallet.ui.serve import mount_ui

__all__ = ["create_api"]


def create_api(control: Control, info: InfoSettings, *, manage_control: bool = True) -> FastAPI:
    """The master's HTTP API over ``control``; with ``manage_control`` the app's lifespan
    starts and stops control's loops."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
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
    ctx = ApiContext(control, info)
    app.state.pallet = ctx
    registry = CollectorRegistry(auto_describe=True)
    registry.register(MetricsCollector(ctx))
    app.state.metrics = registry
    install_error_handlers(app)
    for module in (
        routes_apps,
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
