"""The master's real API and control (``create_api`` over a memory store) for client and
CLI tests: run in a thread of its own with a fake clock, reached through a synchronous or
an asynchronous httpx transport, with agents played over the agent protocol.

Nothing here answers a request itself: every answer is the master's. ``step()`` is what
time passing does on a cluster: control's loops run once each, then every agent starts
what it is asked to run (TASK_STARTING, TASK_RUNNING, healthy where the task has health
checks) and reports what it was told to kill as TASK_KILLED; the tests' ``sleep`` calls
it, so a ``--wait`` follows a real deployment without real time.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import httpx

from factories import INFO, memory_control
from pallet.api import create_api
from pallet.control import Control
from pallet.model.clock import FakeClock

T = TypeVar("T")


def node_body(i: int, mem: int = 1024, gpus: int = 0) -> dict[str, Any]:
    """What an agent registers (the agent protocol): 2 cpus, ``mem`` MiB, 100 ports."""
    return {
        "node": {
            "id": f"node-{i}",
            "hostname": f"127.0.0.{i + 2}",
            "capacity": [2000, mem, 1000, gpus * 1000],
            "ports": [f"{31000 + 100 * i}-{31099 + 100 * i}"],
            "attributes": {"rack": f"r{i}"},
        },
        "address": f"http://127.0.0.{i + 2}:5051",
        "boot_id": "boot-1",
    }


class RealMaster:
    """A real master in a background event loop. ``requests`` keeps every request a
    client sent (``calls`` filters them); ``clock`` is the master's own time."""

    def __init__(
        self, node_mem: tuple[int, ...] = (1024, 1024), new_id: Callable[[], str] | None = None
    ) -> None:
        ids = itertools.count(1)
        self._new_id = new_id or (lambda: f"{next(ids):04d}")
        self.clock = FakeClock()
        self.requests: list[httpx.Request] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.control: Control = self.run(self._start())
        self._asgi = httpx.ASGITransport(app=create_api(self.control, INFO, manage_control=False))
        self._seq: dict[str, int] = {}
        self._running: dict[str, set[str]] = {}
        for i, mem in enumerate(node_mem):
            self.agent_post("/v1/agent/register", node_body(i, mem))
            self._running[f"node-{i}"] = set()

    async def _start(self) -> Control:
        self._stack = contextlib.AsyncExitStack()
        return await self._stack.enter_async_context(
            memory_control(self.clock, new_id=self._new_id, heartbeat_grace=1e9, seed=3)
        )

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` in the master's loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=60)

    def close(self) -> None:
        self.run(self._stack.aclose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    # ------------------------------------------------------------ clients' side

    async def _send(self, request: httpx.Request, body: bytes) -> httpx.Response:
        inner = httpx.Request(request.method, request.url, headers=request.headers, content=body)
        response = await self._asgi.handle_async_request(inner)
        content = b"".join([chunk async for chunk in response.aiter_raw()])  # as sent
        return httpx.Response(
            response.status_code, headers=response.headers, content=content, request=request
        )

    def transport(self) -> httpx.BaseTransport:
        master = self

        class Sync(httpx.BaseTransport):
            def handle_request(self, request: httpx.Request) -> httpx.Response:
                master.requests.append(request)
                return master.run(master._send(request, request.read()))

        return Sync()

    def async_transport(self) -> httpx.AsyncBaseTransport:
        master = self

        class Async(httpx.AsyncBaseTransport):
            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                master.requests.append(request)
                body = await request.aread()
                future = asyncio.run_coroutine_threadsafe(master._send(request, body), master._loop)
                return await asyncio.wrap_future(future)

        return Async()

    def calls(self, method: str, path_prefix: str = "") -> list[httpx.Request]:
        return [
            r for r in self.requests if r.method == method and r.url.path.startswith(path_prefix)
        ]

    # ------------------------------------------------------------ agents' side

    def agent_post(self, path: str, doc: Any) -> Any:
        request = httpx.Request("POST", f"http://master{path}", json=doc)
        response = self.run(self._send(request, request.read()))
        assert response.status_code == 200, response.text
        return response.json()

    def agent_get(self, path: str) -> Any:
        request = httpx.Request("GET", f"http://master{path}")
        response = self.run(self._send(request, b""))
        assert response.status_code == 200, response.text
        return response.json()

    def report(self, node_id: str, task_id: str, state: str, **fields: Any) -> None:
        """One status from the agent of ``node_id``, with the next sequence number."""
        self._seq[task_id] = seq = self._seq.get(task_id, 0) + 1
        status = {"task_id": task_id, "state": state, "seq": seq, **fields}
        self.agent_post(f"/v1/agent/nodes/{node_id}/status", {"statuses": [status]})
        if state in ("TASK_STARTING", "TASK_RUNNING"):
            self._running[node_id].add(task_id)
        else:
            self._running[node_id].discard(task_id)

    def agents_act(self) -> None:
        """Every agent starts what it is asked to run and reports what it stopped."""
        for node_id, running in self._running.items():
            desired = self.agent_get(f"/v1/agent/nodes/{node_id}/desired?wait=0")
            wanted = {spec["task_id"]: spec for spec in desired["tasks"]}
            for task_id, spec in wanted.items():
                if task_id in running:
                    continue
                checks = spec.get("health_checks") or []
                self.report(node_id, task_id, "TASK_STARTING")
                health = (
                    {"healthy": True, "health": [{"alive": True} for _ in checks]} if checks else {}
                )
                self.report(node_id, task_id, "TASK_RUNNING", **health)
            for task_id in sorted(running - set(wanted)):
                self.report(node_id, task_id, "TASK_KILLED")

    def step(self, seconds: float = 0.0) -> None:
        """Time passes on the cluster: control's loops run, then the agents act, then
        control sees what they reported."""
        self.clock.advance(seconds)

        async def loops() -> None:
            await self.control.controller.reconcile()
            await self.control.scheduler.run_once()

        self.run(loops())
        self.agents_act()
        self.run(self.control.controller.reconcile())

    def tasks(self) -> dict[str, Any]:
        """The master's tasks by id (its authoritative state)."""
        return dict(self.control.state.tasks)

    def apps(self) -> list[str]:
        return [a for a, app in self.control.state.apps.items() if not app.is_pod]
