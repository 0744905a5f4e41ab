"""``AsyncClient``: the asyncio twin of ``Client``, over ``httpx.AsyncClient``; does I/O.

async with AsyncClient("http://127.0.0.1:8080") as pallet:
    apps = await pallet.list_apps()
    async for chunk in pallet.follow_log(task_id):
        ...
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, TypeVar

import httpx

from pallet.client.calls import (
    APP_EMBED,
    APPS_EMBED,
    LIVENESS_EVERY,
    LOG_CHUNK,
    Call,
    LogStream,
    calls,
    finish,
)
from pallet.client.errors import NotFound
from pallet.client.models import (
    App,
    Deployment,
    DeploymentRef,
    Info,
    KillResult,
    LogChunk,
    Node,
    NodeDetail,
    QueueItem,
    Task,
)
from pallet.client.transport import (
    DEFAULT_TIMEOUT,
    KeepToken,
    auth_headers,
    master_url,
    tls_context,
    unreachable,
)

__all__ = ["AsyncClient"]

T = TypeVar("T")


class AsyncClient:
    """``Client``'s calls as coroutines; errors are ``pallet.client.errors.ClientError``.

    ``transport`` replaces the network (``httpx.MockTransport`` in tests).
    """

    def __init__(
        self,
        master: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
        token: str | None = None,
        ca: str | None = None,
    ) -> None:
        self.master = master_url(master)
        self.timeout = timeout
        context = tls_context(ca)
        headers = auth_headers(token)
        keep = KeepToken(self.master, headers, pinned=context is not None)
        self._http = httpx.AsyncClient(
            base_url=self.master,
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/json", **headers},
            verify=context if context is not None else True,
            follow_redirects=True,  # a follower master sends every call to the leader
            event_hooks={"request": [keep.on_request_async]},
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def run(self, call: Call[T]) -> T:
        """Send one call and read its answer."""
        try:
            response = await self._http.request(
                call.method, call.path, params=call.params, json=call.body
            )
        except httpx.TransportError as exc:
            raise unreachable(self.master, call, exc, self.timeout) from None
        return finish(
            call, response.status_code, response.headers, response.content, response.reason_phrase
        )

    # -- the master ------------------------------------------------------------------
    async def ping(self) -> str:
        return await self.run(calls.ping())

    async def info(self) -> Info:
        return await self.run(calls.info())

    # -- apps ------------------------------------------------------------------------
    async def list_apps(
        self, embed: Iterable[str] = APPS_EMBED, id: str | None = None
    ) -> list[App]:
        return await self.run(calls.list_apps(embed, id))

    async def get_app(self, app_id: str, embed: Iterable[str] = APP_EMBED) -> App:
        return await self.run(calls.get_app(app_id, embed))

    async def create_app(self, definition: Mapping[str, Any]) -> App:
        return await self.run(calls.create_app(definition))

    async def update_app(
        self, app_id: str, changes: Mapping[str, Any], force: bool = False, partial: bool = False
    ) -> DeploymentRef:
        return await self.run(calls.update_app(app_id, changes, force, partial))

    async def scale_app(self, app_id: str, instances: int, force: bool = False) -> DeploymentRef:
        return await self.run(calls.scale_app(app_id, instances, force))

    async def restart_app(self, app_id: str, force: bool = False) -> DeploymentRef:
        return await self.run(calls.restart_app(app_id, force))

    async def delete_app(self, app_id: str, force: bool = False) -> DeploymentRef:
        return await self.run(calls.delete_app(app_id, force))

    async def list_pods(self) -> list[dict[str, Any]]:
        return await self.run(calls.list_pods())

    async def pod_status(self, pod_id: str) -> dict[str, Any]:
        return await self.run(calls.pod_status(pod_id))

    async def create_pod(self, definition: Mapping[str, Any]) -> dict[str, Any]:
        return await self.run(calls.create_pod(definition))

    async def plan_pod(self, definition: Mapping[str, Any], force: bool = False) -> dict[str, Any]:
        return await self.run(calls.plan_pod(definition, force))

    async def delete_pod(self, pod_id: str, force: bool = False) -> str:
        return await self.run(calls.delete_pod(pod_id, force))

    async def app_versions(self, app_id: str) -> list[str]:
        return await self.run(calls.app_versions(app_id))

    # -- tasks -----------------------------------------------------------------------
    async def list_tasks(self, app_id: str | None = None) -> list[Task]:
        return await self.run(calls.list_tasks(app_id))

    async def get_task(self, task_id: str) -> Task | None:
        """The live task with this id, or None (Marathon lists live tasks only)."""
        return next((t for t in await self.list_tasks() if t.id == task_id), None)

    async def kill_tasks(
        self, task_ids: Iterable[str], scale: bool = False, force: bool = False
    ) -> KillResult:
        return await self.run(calls.kill_tasks(task_ids, scale, force))

    async def kill_app_task(self, app_id: str, task_id: str, scale: bool = False) -> KillResult:
        return await self.run(calls.kill_app_task(app_id, task_id, scale))

    async def task_log(
        self,
        task_id: str,
        stream: LogStream = "stdout",
        offset: int = 0,
        length: int = LOG_CHUNK,
        container: str | None = None,
    ) -> LogChunk:
        return await self.run(calls.task_log(task_id, stream, offset, length, container))

    async def read_log(
        self,
        task_id: str,
        stream: LogStream = "stdout",
        offset: int = 0,
        container: str | None = None,
    ) -> AsyncIterator[bytes]:
        """The log as it is now, from ``offset`` to its end, in chunks."""
        while (chunk := await self.task_log(task_id, stream, offset, container=container)).data:
            offset = chunk.next_offset
            yield chunk.data

    async def follow_log(
        self,
        task_id: str,
        stream: LogStream = "stdout",
        offset: int = 0,
        *,
        container: str | None = None,
        interval: float = 0.5,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> AsyncIterator[bytes]:
        """The log as it grows, until the task has ended and all it wrote was read.

        Polls with an increasing offset. A log the agent does not serve yet (the task
        is still staging) reads as empty while the task lives.
        """
        ended = False
        idle = 0
        while True:
            try:
                chunk = await self.task_log(task_id, stream, offset, container=container)
            except NotFound:
                if ended or not await self._live(task_id):
                    raise
                chunk = LogChunk(b"", offset, offset)
            if chunk.data:
                offset = chunk.next_offset
                idle = 0
                yield chunk.data
                continue
            if ended:
                return
            idle += 1
            if idle % LIVENESS_EVERY == 1:
                # Read once more after the task ended: it may have written since the last read.
                ended = not await self._live(task_id)
            if not ended:
                await sleep(interval)

    async def _live(self, task_id: str) -> bool:
        task = await self.get_task(task_id)
        return task is not None and task.live

    # -- cluster ---------------------------------------------------------------------
    async def plan_app(
        self, definition: Mapping[str, Any], create: bool, force: bool = False
    ) -> dict[str, Any]:
        return await self.run(calls.plan_app(definition, create, force))

    async def rollback_app(self, app_id: str, version: str, force: bool = False) -> DeploymentRef:
        return await self.run(calls.rollback_app(app_id, version, force))

    async def cancel_deployment(
        self, deployment_id: str, force: bool = False
    ) -> DeploymentRef | None:
        return await self.run(calls.cancel_deployment(deployment_id, force))

    async def promote_deployment(self, deployment_id: str) -> Deployment:
        return await self.run(calls.promote_deployment(deployment_id))

    async def list_deployments(self) -> list[Deployment]:
        return await self.run(calls.list_deployments())

    async def list_queue(self) -> list[QueueItem]:
        return await self.run(calls.list_queue())

    async def discovery(self) -> dict[str, Any]:
        return await self.run(calls.discovery())

    async def app_discovery(self, app_id: str) -> dict[str, Any]:
        return await self.run(calls.app_discovery(app_id))

    async def list_nodes(self) -> list[Node]:
        return await self.run(calls.list_nodes())

    async def get_node(self, node_id: str) -> NodeDetail:
        return await self.run(calls.get_node(node_id))

    async def drain_node(self, node_id: str, deadline: float | None = None) -> Node:
        return await self.run(calls.drain_node(node_id, deadline))

    async def undrain_node(self, node_id: str) -> Node:
        return await self.run(calls.undrain_node(node_id))

    async def remove_node(self, node_id: str) -> Node:
        return await self.run(calls.remove_node(node_id))
