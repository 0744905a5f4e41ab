"""Service ports two apps may not share: each app port's ``servicePort`` (or its
``HAPROXY_{n}_PORT``), where load balancers bind it; pure over the master's apps.

Marathon refuses a requested service port another app already uses; so does Pallet,
and it counts Marathon-LB's port label too, since the LB would bind both to one port.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from pallet.api.marathon import AppSpec, Violation
from pallet.discovery import services_from_apps

__all__ = ["bound_ports", "may_claim_service_ports", "service_port_violations"]

_cache: dict[tuple[str, str], dict[int, int]] = {}
A = TypeVar("A")


def bound_ports(definition: Mapping[str, Any]) -> dict[int, int]:
    """Port -> port index of each non-zero service port an app's definition claims."""
    (service,) = services_from_apps([definition])
    out: dict[int, int] = {}
    for p in service.ports:
        port = int(service.labels.get(f"HAPROXY_{p.index}_PORT") or p.service_port or 0)
        if port:
            out.setdefault(port, p.index)
    return out


def may_claim_service_ports(spec: AppSpec) -> bool:
    """Whether ``spec``'s Marathon definition may claim a service port (``bound_ports``
    not empty): False only when no port definition or port mapping names a non-zero
    service port and no label is a Marathon-LB port (``HAPROXY_{n}_PORT``), so the
    check can be skipped without rendering the definition."""
    if any(p.port for p in spec.port_definitions or ()):
        return True
    mappings = spec.container.get("portMappings") if spec.container else None
    if mappings:
        return True
    return any(k.startswith("HAPROXY_") for k in spec.labels)


def _claimed(
    app_id: str, version: str, app: A, marathon: Callable[[A], Mapping[str, Any]]
) -> dict[int, int]:
    key = (app_id, version)
    if key not in _cache:
        if len(_cache) > 20_000:
            _cache.clear()
        _cache[key] = bound_ports(marathon(app))
    return _cache[key]


def service_port_violations(
    app_id: str,
    definition: Mapping[str, Any],
    others: Iterable[tuple[str, str, A]],
    marathon: Callable[[A], Mapping[str, Any]],
) -> list[Violation]:
    """Why ``definition``'s service ports clash with those of ``others`` (id, version,
    app), on the path of the port at fault; ``marathon`` gives an app's Marathon
    definition (asked only for a version not seen before)."""
    mine = bound_ports(definition)
    if not mine:
        return []
    prefix = "/portDefinitions" if definition.get("portDefinitions") else "/container/portMappings"
    out = []
    for other_id, version, other in others:
        if other_id == app_id:
            continue
        for port in sorted(mine.keys() & _claimed(other_id, version, other, marathon).keys()):
            out.append(
                Violation(
                    f"{prefix}({mine[port]})",
                    f"Requested service port {port} conflicts with a service port in use by app {other_id}",
                )
            )
    return out
