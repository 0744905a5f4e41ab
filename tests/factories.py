"""Factories giving valid model objects for tests."""

from __future__ import annotations

from pallet.model import Constraint, Node, PlacementRequest, PortRange, Resources

_counter = iter(range(10**9))


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
        cpu=cpu,
        mem=mem,
        disk=disk,
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
