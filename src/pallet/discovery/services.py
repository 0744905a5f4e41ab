"""Apps and their tasks as discovery sees them, read from ``GET /v2/apps?embed=apps.tasks``; pure.

Only what names, VIPs and load balancers need: each app's labels and ports (service
port, protocol, port labels), and each task's agent, address, host ports and whether it
is *ready*: RUNNING, and healthy when the app has health checks (Marathon-LB's rule: a
task whose checks have no verdict yet, or any failing, gets no traffic).

A task of an app on a named container network (``networks: [{mode: container}]``) is
reached at its own address (its ``ipAddresses``) on its container ports, as Mesos-DNS
(IP sources: netinfo first) and Marathon-LB reach IP-per-task apps; any other task at
its agent on its host ports.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Endpoint", "PortInfo", "Service", "services_from_apps"]


@dataclass(frozen=True, slots=True)
class PortInfo:
    """One of an app's ports: ``portDefinitions[i]`` or ``container.portMappings[i]``."""

    index: int
    service_port: int
    protocol: str = "tcp"
    name: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One task: where it runs, the address it is reached at (``ip``) and the ports
    there, one per port of its app (host ports; container ports for a task with an
    address of its own, ``own_ip``)."""

    task_id: str
    node_id: str
    host: str
    ip: str
    ports: tuple[int, ...]
    state: str
    ready: bool
    own_ip: bool = False


@dataclass(frozen=True, slots=True)
class Service:
    """One app: its labels, ports and tasks."""

    app_id: str
    labels: Mapping[str, str]
    ports: tuple[PortInfo, ...]
    endpoints: tuple[Endpoint, ...]
    health_checked: bool = False

    @property
    def ready(self) -> tuple[Endpoint, ...]:
        return tuple(e for e in self.endpoints if e.ready)


def _str_map(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): str(v) for k, v in value.items() if isinstance(v, str)}


def _ports(app: Mapping[str, Any]) -> tuple[PortInfo, ...]:
    defs = app.get("portDefinitions")
    container = app.get("container") or {}
    mappings = container.get("portMappings") if isinstance(container, Mapping) else None
    out: list[PortInfo] = []
    if isinstance(defs, list) and defs:
        for i, d in enumerate(defs):
            if isinstance(d, Mapping):
                out.append(
                    PortInfo(
                        i,
                        int(d.get("port") or 0),
                        str(d.get("protocol") or "tcp"),
                        str(d.get("name") or ""),
                        _str_map(d.get("labels")),
                    )
                )
    elif isinstance(mappings, list):
        for i, m in enumerate(mappings):
            if isinstance(m, Mapping):
                out.append(
                    PortInfo(
                        i,
                        int(m.get("servicePort") or 0),
                        str(m.get("protocol") or "tcp"),
                        str(m.get("name") or ""),
                        _str_map(m.get("labels")),
                    )
                )
    return tuple(out)


def _container_network(app: Mapping[str, Any]) -> bool:
    networks = app.get("networks")
    return isinstance(networks, list) and any(
        isinstance(n, Mapping) and n.get("mode", "container") == "container" for n in networks
    )


def _container_ports(app: Mapping[str, Any]) -> tuple[int, ...]:
    container = app.get("container") or {}
    mappings = container.get("portMappings") if isinstance(container, Mapping) else None
    out = []
    for m in mappings if isinstance(mappings, list) else ():
        port = m.get("containerPort") if isinstance(m, Mapping) else None
        out.append(port if isinstance(port, int) else 0)
    return tuple(out)


def _endpoint(
    task: Mapping[str, Any], checks: int, container_ports: tuple[int, ...] | None = None
) -> Endpoint:
    """``container_ports``: the app's, when it is on a container network."""
    state = str(task.get("state") or "")
    results = task.get("healthCheckResults") or []
    healthy = (
        isinstance(results, list)
        and len(results) >= checks
        and all(isinstance(r, Mapping) and r.get("alive") is True for r in results)
    )
    host = str(task.get("host") or "")
    addresses = task.get("ipAddresses") or []
    ip = host
    for a in addresses if isinstance(addresses, list) else ():
        if isinstance(a, Mapping) and a.get("ipAddress"):
            ip = str(a["ipAddress"])
            break
    ports = tuple(int(p) for p in task.get("ports") or () if isinstance(p, int))
    own = container_ports is not None and ip != host
    if own and container_ports is not None:
        ports = container_ports
    return Endpoint(
        task_id=str(task.get("id") or ""),
        node_id=str(task.get("slaveId") or task.get("agentId") or ""),
        host=host,
        ip=ip,
        ports=ports,
        state=state,
        ready=state == "TASK_RUNNING" and (checks == 0 or healthy),
        own_ip=own,
    )


def services_from_apps(apps: Iterable[Mapping[str, Any]]) -> list[Service]:
    """Services from the ``apps`` of ``GET /v2/apps?embed=apps.tasks``, sorted by id."""
    out = []
    for app in apps:
        checks = len(app.get("healthChecks") or ())
        tasks = app.get("tasks") or ()
        ports = _container_ports(app) if _container_network(app) else None
        endpoints = tuple(
            sorted(
                (_endpoint(t, checks, ports) for t in tasks if isinstance(t, Mapping)),
                key=lambda e: e.task_id,
            )
        )
        out.append(
            Service(
                app_id=str(app["id"]),
                labels=_str_map(app.get("labels")),
                ports=_ports(app),
                endpoints=endpoints,
                health_checked=checks > 0,
            )
        )
    return sorted(out, key=lambda s: s.app_id)
