"""Factories giving valid model objects for tests."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from pallet.api.marathon import InfoSettings
from pallet.control import Control, ControlConfig
from pallet.model import Constraint, Node, PlacementRequest, PortRange, Resources
from pallet.model.clock import FakeClock
from pallet.store import open_store

_counter = iter(range(10**9))

INFO = InfoSettings(
    version="0.1.0",
    leader="127.0.0.1:8080",
    elected=True,
    cluster_id="test-cluster",
    hostname="127.0.0.1",
    http_port=8080,
    store_url="memory://",
)
"""What ``/v2/info`` says of the test master ``create_api`` serves."""


def node(
    id: str | None = None,
    *,
    cpu: int = 8000,
    mem: int = 16384,
    disk: int = 0,
    gpus: int = 0,
    model: str = "",
    ports: tuple[PortRange, ...] = (),
    **attributes: str,
) -> Node:
    name = id or f"n{next(_counter)}"
    return Node.build(
        name,
        cpu_milli=cpu,
        mem_mib=mem,
        disk_mib=disk,
        gpus=gpus,
        gpu_model=model,
        ports=ports,
        attributes=attributes,
    )


def req(
    app: str = "/app",
    *,
    cpu: int = 1000,
    mem: int = 1024,
    disk: int = 0,
    gpu: int = 0,
    ports: tuple[int, ...] = (),
    models: frozenset[str] = frozenset(),
    constraints: tuple[Constraint, ...] = (),
    id: str | None = None,
    priority: int = 0,
) -> PlacementRequest:
    return PlacementRequest(
        id=id or f"{app}.{next(_counter)}",
        app_id=app,
        resources=Resources(cpu, mem, disk, gpu),
        ports=ports,
        gpu_models=models,
        constraints=constraints,
        priority=priority,
    )


@contextlib.asynccontextmanager
async def memory_control(
    clock: FakeClock,
    new_id: Callable[[], str] | None = None,
    kvs: Mapping[str, str] | None = None,
    **config: Any,
) -> AsyncIterator[Control]:
    """The master's real control over a memory store, loaded, on ``clock``; ids
    ``id0, id1, ...`` unless ``new_id`` says otherwise; the store holding ``kvs`` before
    the load; ``config``: ``ControlConfig``'s fields (a 5 s heartbeat grace unless
    given). Stopped and closed afterwards."""
    store = await open_store("memory://", clock=clock, expiry_interval=None)
    for key, value in (kvs or {}).items():
        await store.put(key, value.encode())
    counter = itertools.count()
    ctl = Control(
        store,
        ControlConfig(**{"heartbeat_grace": 5.0, **config}),
        clock=clock,
        new_id=new_id or (lambda: f"id{next(counter)}"),
    )
    await ctl.load()
    try:
        yield ctl
    finally:
        await ctl.stop()
        await store.close()
