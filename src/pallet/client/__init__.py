"""A typed HTTP client of Pallet's API, used by the CLI and the tests.

    from pallet.client import Client, InvalidRequest

    with Client() as pallet:                      # --master / $PALLET_MASTER / 127.0.0.1:8080
        try:
            app = pallet.create_app({"id": "/web", "cmd": "sleep 600", "instances": 2})
        except InvalidRequest as exc:
            for field in exc.details:             # Marathon's 422 details
                print(field.describe())           # "cpus: is below its minimum"
        for progress in watch_deployment(pallet, app.id, app.deployment_ids[0]):
            print(progress.running, "/", progress.target)

Calls are data (``calls``), sent by ``Client`` (``http.client`` through ``wire``, blocking)
or ``AsyncClient`` (httpx, asyncio); answers become frozen dataclasses (``models``); HTTP
errors and failed connections become the ``ClientError`` tree (``errors``). Each name here
is imported on first use, so the CLI's fast path can load ``wire`` and ``transport``
alone.
"""

import sys
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pallet.client.aio import AsyncClient
    from pallet.client.calls import APP_EMBED, APPS_EMBED, Call, LogStream, app_path, calls
    from pallet.client.errors import (
        ApiError,
        BadRequest,
        ClientError,
        Conflict,
        FieldError,
        InvalidRequest,
        MasterUnreachable,
        NotFound,
        ProtocolError,
        ServerError,
        WaitTimeout,
        field_label,
    )
    from pallet.client.models import (
        LIVE_TASK_STATES,
        App,
        Deployment,
        DeploymentRef,
        Info,
        KillResult,
        LogChunk,
        Node,
        NodeDetail,
        NodeResources,
        QueueItem,
        RejectCount,
        Task,
        TaskFailure,
    )
    from pallet.client.sync import Client
    from pallet.client.transport import DEFAULT_MASTER, MASTER_ENV, master_url
    from pallet.client.wait import Progress, describe_waiting, watch_deployment

__all__ = [
    "APPS_EMBED",
    "APP_EMBED",
    "DEFAULT_MASTER",
    "LIVE_TASK_STATES",
    "MASTER_ENV",
    "ApiError",
    "App",
    "AsyncClient",
    "BadRequest",
    "Call",
    "Client",
    "ClientError",
    "Conflict",
    "Deployment",
    "DeploymentRef",
    "FieldError",
    "Info",
    "InvalidRequest",
    "KillResult",
    "LogChunk",
    "LogStream",
    "MasterUnreachable",
    "Node",
    "NodeDetail",
    "NodeResources",
    "NotFound",
    "Progress",
    "ProtocolError",
    "QueueItem",
    "RejectCount",
    "ServerError",
    "Task",
    "TaskFailure",
    "WaitTimeout",
    "app_path",
    "calls",
    "describe_waiting",
    "field_label",
    "master_url",
    "watch_deployment",
]


_WHERE: dict[str, str] = {
    "APPS_EMBED": "pallet.client.calls",
    "APP_EMBED": "pallet.client.calls",
    "ApiError": "pallet.client.errors",
    "App": "pallet.client.models",
    "AsyncClient": "pallet.client.aio",
    "BadRequest": "pallet.client.errors",
    "Call": "pallet.client.calls",
    "Client": "pallet.client.sync",
    "ClientError": "pallet.client.errors",
    "Conflict": "pallet.client.errors",
    "DEFAULT_MASTER": "pallet.client.transport",
    "Deployment": "pallet.client.models",
    "DeploymentRef": "pallet.client.models",
    "FieldError": "pallet.client.errors",
    "Info": "pallet.client.models",
    "InvalidRequest": "pallet.client.errors",
    "KillResult": "pallet.client.models",
    "LIVE_TASK_STATES": "pallet.client.models",
    "LogChunk": "pallet.client.models",
    "LogStream": "pallet.client.calls",
    "MASTER_ENV": "pallet.client.transport",
    "MasterUnreachable": "pallet.client.errors",
    "Node": "pallet.client.models",
    "NodeDetail": "pallet.client.models",
    "NodeResources": "pallet.client.models",
    "NotFound": "pallet.client.errors",
    "Progress": "pallet.client.wait",
    "ProtocolError": "pallet.client.errors",
    "QueueItem": "pallet.client.models",
    "RejectCount": "pallet.client.models",
    "ServerError": "pallet.client.errors",
    "Task": "pallet.client.models",
    "TaskFailure": "pallet.client.models",
    "WaitTimeout": "pallet.client.errors",
    "app_path": "pallet.client.calls",
    "calls": "pallet.client.calls",
    "describe_waiting": "pallet.client.wait",
    "field_label": "pallet.client.errors",
    "master_url": "pallet.client.transport",
    "watch_deployment": "pallet.client.wait",
}


def __getattr__(name: str) -> object:
    # Each name is imported on first use: `pallet app list`'s fast path needs the wire and
    # the transport only, and the models, calls and asyncio (AsyncClient) cost it a tenth
    # of its start-up.
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(where), name)
    globals()[name] = value
    return value


class _Package(ModuleType):
    """Importing the submodule ``calls`` makes Python set this package's attribute
    ``calls`` to that module; the name ``calls`` here is the object of calls, as it was
    when this package imported everything at once."""

    def __setattr__(self, name: str, value: object) -> None:
        if name == "calls" and isinstance(value, ModuleType):
            value = value.calls
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
