"""``Client``: the blocking client of a Pallet master, over the standard library's
``http.client`` (``wire``), or an httpx transport when given one (tests); does I/O.

with Client("http://127.0.0.1:8080") as pallet:
    app = pallet.create_app({"id": "/web", "cmd": "python3 -m http.server $PORT0"})
    ref = pallet.scale_app("/web", 3)
    for task in pallet.list_tasks("/web"):
        print(task.id, task.state, task.host)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

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
from pallet.client.transport import DEFAULT_TIMEOUT, auth_headers, master_urls, unreachable
from pallet.client.wire import Route

if TYPE_CHECKING:
    import httpx

__all__ = ["Client"]

T = TypeVar("T")


class Client:
    """Typed calls to one master; errors are ``pallet.client.errors.ClientError``.

    ``transport`` replaces the network (``httpx.MockTransport`` in tests); without one,
    calls go out through ``wire.Route`` (no httpx to import, no TLS to set up for a
    plain-HTTP master).
    """

    def __init__(
        self,
        master: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        token: str | None = None,
        ca: str | None = None,
    ) -> None:
        """``token`` (else ``$PALLET_TOKEN``) is sent as ``Authorization: token=...``;
        ``ca`` (else ``$PALLET_CA``) is the cluster's CA for an https master."""
        self.timeout = timeout
        self._http: httpx.Client | None = None
        self._route: Route | None = None
        if transport is None:
            self._route = Route(master, timeout, token, ca)
            self.masters = self._route.masters
        else:
            import httpx

            self.masters = master_urls(master)
            self._http = httpx.Client(
                base_url=self.masters[0],
                timeout=timeout,
                transport=transport,
                headers={"Accept": "application/json", **auth_headers(token)},
            )

    @property
    def master(self) -> str:
        """The master calls go to now (the leader, after a follower's redirect)."""
        return self._route.master if self._route is not None else self.masters[0]

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
        if self._route is not None:
            self._route.close()

    def run(self, call: Call[T]) -> T:
        """Send one call and read its answer."""
        if self._route is not None:
            answer = self._route.send(call.method, call.path, call.params, call.body)
            return finish(call, answer.status, answer.headers, answer.content, answer.reason)
        import httpx

        assert self._http is not None
        try:
            response = self._http.request(
                call.method, call.path, params=call.params, json=call.body
            )
        except httpx.TransportError as exc:
            raise unreachable(self.master, call, exc, self.timeout) from None
        return finish(
            call, response.status_code, response.headers, response.content, response.reason_phrase
        )

    # -- the master ------------------------------------------------------------------
    def ping(self) -> str:
        return self.run(calls.ping())

    def info(self) -> Info:
        return self.run(calls.info())

    # -- apps ------------------------------------------------------------------------
    def list_apps(self, embed: Iterable[str] = APPS_EMBED, id: str | None = None) -> list[App]:
        return self.run(calls.list_apps(embed, id))

    def get_app(self, app_id: str, embed: Iterable[str] = APP_EMBED) -> App:
        return self.run(calls.get_app(app_id, embed))

    def create_app(self, definition: Mapping[str, Any]) -> App:
        return self.run(calls.create_app(definition))

    def update_app(
        self, app_id: str, changes: Mapping[str, Any], force: bool = False, partial: bool = False
    ) -> DeploymentRef:
        return self.run(calls.update_app(app_id, changes, force, partial))

    def scale_app(self, app_id: str, instances: int, force: bool = False) -> DeploymentRef:
        return self.run(calls.scale_app(app_id, instances, force))

    def restart_app(self, app_id: str, force: bool = False) -> DeploymentRef:
        return self.run(calls.restart_app(app_id, force))

    def delete_app(self, app_id: str, force: bool = False) -> DeploymentRef:
        return self.run(calls.delete_app(app_id, force))

    def app_versions(self, app_id: str) -> list[str]:
        return self.run(calls.app_versions(app_id))

    # -- pods ------------------------------------------------------------------------
    def list_pods(self) -> list[dict[str, Any]]:
        """Every pod's status (Marathon's ``PodStatus``, its definition in ``spec``)."""
        return self.run(calls.list_pods())

    def pod_status(self, pod_id: str) -> dict[str, Any]:
        return self.run(calls.pod_status(pod_id))

    def create_pod(self, definition: Mapping[str, Any]) -> dict[str, Any]:
        return self.run(calls.create_pod(definition))

    def plan_pod(self, definition: Mapping[str, Any], force: bool = False) -> dict[str, Any]:
        return self.run(calls.plan_pod(definition, force))

    def delete_pod(self, pod_id: str, force: bool = False) -> str:
        return self.run(calls.delete_pod(pod_id, force))

    # -- tasks -----------------------------------------------------------------------
    def list_tasks(self, app_id: str | None = None) -> list[Task]:
        return self.run(calls.list_tasks(app_id))

    def get_task(self, task_id: str) -> Task | None:
        """The live task with this id, or None (Marathon lists live tasks only)."""
        return next((t for t in self.list_tasks() if t.id == task_id), None)

    def kill_tasks(
        self, task_ids: Iterable[str], scale: bool = False, force: bool = False
    ) -> KillResult:
        return self.run(calls.kill_tasks(task_ids, scale, force))

    def kill_app_task(self, app_id: str, task_id: str, scale: bool = False) -> KillResult:
        return self.run(calls.kill_app_task(app_id, task_id, scale))

    def task_log(
        self,
        task_id: str,
        stream: LogStream = "stdout",
        offset: int = 0,
        length: int = LOG_CHUNK,
        container: str | None = None,
    ) -> LogChunk:
        return self.run(calls.task_log(task_id, stream, offset, length, container))

    def read_log(
        self,
        task_id: str,
        stream: LogStream = "stdout",
        offset: int = 0,
        container: str | None = None,
    ) -> Iterator[bytes]:
        """The log as it is now, from ``offset`` to its end, in chunks."""
        while (chunk := self.task_log(task_id, stream, offset, container=container)).data:
            offset = chunk.next_offset
            yield chunk.data

    def follow_log(
        self,
        task_id: str,
        stream: LogStream = "stdout",
        offset: int = 0,
        *,
        container: str | None = None,
        interval: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Iterator[bytes]:
        """The log as it grows, until the task has ended and all it wrote was read.

        Polls with an increasing offset. A log the agent does not serve yet (the task
        is still staging) reads as empty while the task lives.
        """
        ended = False
        idle = 0
        while True:
            try:
                chunk = self.task_log(task_id, stream, offset, container=container)
            except NotFound:
                if ended or not self._live(task_id):
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
                ended = not self._live(task_id)
            if not ended:
                sleep(interval)

    def _live(self, task_id: str) -> bool:
        task = self.get_task(task_id)
        return task is not None and task.live

    # -- cluster ---------------------------------------------------------------------
    def plan_app(
        self, definition: Mapping[str, Any], create: bool, force: bool = False
    ) -> dict[str, Any]:
        return self.run(calls.plan_app(definition, create, force))

    def rollback_app(self, app_id: str, version: str, force: bool = False) -> DeploymentRef:
        return self.run(calls.rollback_app(app_id, version, force))

    def cancel_deployment(self, deployment_id: str, force: bool = False) -> DeploymentRef | None:
        return self.run(calls.cancel_deployment(deployment_id, force))

    def promote_deployment(self, deployment_id: str) -> Deployment:
        return self.run(calls.promote_deployment(deployment_id))

    def list_deployments(self) -> list[Deployment]:
        return self.run(calls.list_deployments())

    def list_queue(self) -> list[QueueItem]:
        return self.run(calls.list_queue())

    def discovery(self) -> dict[str, Any]:
        return self.run(calls.discovery())

    def app_discovery(self, app_id: str) -> dict[str, Any]:
        return self.run(calls.app_discovery(app_id))

    def list_nodes(self) -> list[Node]:
        return self.run(calls.list_nodes())

    def get_node(self, node_id: str) -> NodeDetail:
        return self.run(calls.get_node(node_id))

    def drain_node(self, node_id: str, deadline: float | None = None) -> Node:
        return self.run(calls.drain_node(node_id, deadline))

    def undrain_node(self, node_id: str) -> Node:
        return self.run(calls.undrain_node(node_id))

    def remove_node(self, node_id: str) -> Node:
        return self.run(calls.remove_node(node_id))
