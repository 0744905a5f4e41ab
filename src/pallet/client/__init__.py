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

Calls are data (``calls``), sent by ``Client`` (httpx, blocking) or ``AsyncClient``
(httpx, asyncio); answers become frozen dataclasses (``models``); HTTP errors and
failed connections become the ``ClientError`` tree (``errors``).
"""

from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from pallet.client.aio import AsyncClient

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


def __getattr__(name: str) -> object:
    # AsyncClient is loaded on first use: asyncio costs the CLI's blocking calls a tenth
    # of their start-up and they never need it.
    if name == "AsyncClient":
        from pallet.client.aio import AsyncClient

        return AsyncClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
