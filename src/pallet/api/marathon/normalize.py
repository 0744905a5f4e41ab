"""From a request body to an ``AppSpec``: read, validate, translate and default; pure.

The steps and their order are Marathon's (``AppHelpers.appNormalization``,
``AppNormalization.scala``): check the deprecated fields, translate them (``ports``
-> ``portDefinitions``, ``uris`` -> ``fetch``, ``ipAddress`` and ``docker.network``
-> ``networks``, ``docker.portMappings`` -> ``container.portMappings``), default the
role, check the canonical rules, then fill in the remaining defaults. No clock is
read: versions are the caller's business.
"""

from __future__ import annotations

from typing import Any

import pydantic

from pallet.api.marathon.app import AppDefinition, AppUpdate
from pallet.api.marathon.errors import Violation, not_valid, shape_error
from pallet.api.marathon.parts import (
    Artifact,
    Container,
    HealthCheck,
    Network,
    PortDefinition,
    PortMapping,
    ReadinessCheck,
    Residency,
    UnreachableStrategy,
)
from pallet.api.marathon.pathid import canonical_path
from pallet.api.marathon.specbuild import build_spec
from pallet.api.marathon.validation import canonical_violations, deprecated_violations
from pallet.model.app import AppSpec

__all__ = [
    "MESOS_BRIDGE_NAME",
    "normalize_app",
    "read_app",
    "read_update",
    "translate_deprecated",
    "translate_networks",
]

MESOS_BRIDGE_NAME = "mesos-bridge"
_EXTRACTABLE = (".tar", ".tar.gz", ".tar.bz2", ".tar.xz", ".gz", ".tgz", ".tbz2", ".txz", ".zip")


def read_app(body: object, app_id: str | None = None) -> AppDefinition:
    """Read a whole app from a decoded JSON body, or raise Marathon's 422 ``Invalid JSON``.

    ``app_id`` (from the URL of a ``PUT``) replaces any id in the body, as in Marathon.
    """
    if app_id is not None and isinstance(body, dict):
        body = {**body, "id": app_id}
    try:
        return AppDefinition.model_validate(body)
    except pydantic.ValidationError as exc:
        raise shape_error(exc) from None


def read_update(body: object) -> AppUpdate:
    """Read a partial update (``PUT``/``PATCH``), or raise Marathon's 422 ``Invalid JSON``."""
    try:
        return AppUpdate.model_validate(body)
    except pydantic.ValidationError as exc:
        raise shape_error(exc) from None


def normalize_app(app: AppDefinition, default_role: str = "*") -> AppSpec:
    """Validate ``app`` by Marathon's rules and return it with every default filled in.

    Raises ``MarathonApiError`` (422 ``Object is not valid``) listing every broken rule.
    """
    _raise_if(deprecated_violations(app))
    migrated = translate_deprecated(app)
    if migrated.role is None:
        migrated = migrated.model_copy(update={"role": default_role})
    _raise_if(canonical_violations(migrated))
    return build_spec(_post_validation(migrated))


def _raise_if(violations: list[Violation]) -> None:
    if violations:
        raise not_valid(violations)


def translate_deprecated(app: AppDefinition) -> AppDefinition:
    """Marathon's ``forDeprecated``: the same app in canonical fields only."""
    networks = translate_networks(app)
    migrated_defs = app.port_definitions
    if migrated_defs is None and app.ports is not None:
        migrated_defs = [PortDefinition(port=p) for p in app.ports]
    non_host = any(n.mode != "host" for n in networks)
    port_definitions = None if non_host else migrated_defs
    if port_definitions is None and not non_host:
        port_definitions = [PortDefinition(name="default")]
    container = app.container
    if container is None and app.ip_address is not None:
        container = Container(type="MESOS")
    if container is not None:
        container = _canonical_container(container, app, networks, migrated_defs)
    health_checks = app.health_checks
    if health_checks and (app.port_definitions or (container and container.port_mappings)):
        health_checks = [_with_port_index(c) for c in health_checks]
    residency = app.residency
    if residency is None and container is not None and _has_persistent_volume(container):
        residency = Residency()
    update: dict[str, Any] = {
        "id": canonical_path(app.id),
        "dependencies": [canonical_path(d) for d in app.dependencies or []] or None,
        "fetch": _fetch(app),
        "uris": None,
        "networks": networks,
        "ip_address": None,
        "container": container,
        "port_definitions": port_definitions,
        "ports": None,
        "health_checks": health_checks,
        "residency": residency,
        "readiness_checks": [_with_status_codes(r) for r in app.readiness_checks or []] or None,
    }
    return app.model_copy(update=update)


def translate_networks(app: AppUpdate) -> list[Network]:
    """``networks`` from the deprecated ``ipAddress`` / ``container.docker.network``."""
    ip = app.ip_address
    docker = app.container.docker if app.container else None
    kind = docker.network if docker else None
    if ip is None and kind is None:
        return list(app.networks or [])
    labels = ip.labels if ip else {}
    if kind is None and ip is not None:
        if ip.network_name == MESOS_BRIDGE_NAME:
            return [Network(mode="container/bridge", labels=labels)]
        return [Network(mode="container", name=ip.network_name, labels=labels)]
    if kind == "HOST":
        return [Network(mode="host")]
    if kind == "BRIDGE":
        return [Network(mode="container/bridge", labels=labels)]
    if kind == "USER":
        return [Network(mode="container", name=ip.network_name if ip else None, labels=labels)]
    raise not_valid(
        [Violation("/container/docker/network", f"unsupported docker network type {kind}")]
    )


def _canonical_container(
    container: Container,
    app: AppDefinition,
    networks: list[Network],
    migrated_defs: list[PortDefinition] | None,
) -> Container:
    mappings = container.port_mappings
    docker = container.docker
    if docker is not None and docker.port_mappings is not None:
        if mappings and docker.port_mappings:
            raise not_valid(
                [
                    Violation(
                        "/container", "cannot specify both portMappings and docker.portMappings"
                    )
                ]
            )
        if not mappings:
            mappings = docker.port_mappings
    discovery_ports = _discovery_ports(app)
    if discovery_ports:
        if mappings:
            message = "container.portMappings and ipAddress.discovery.ports must not both be set"
            raise not_valid([Violation("/container", message)])
        mappings = discovery_ports
    if docker is not None:
        docker = docker.model_copy(update={"network": None, "port_mappings": None})
    host = not networks or any(n.mode == "host" for n in networks)
    if host:
        mappings = None
    elif mappings is None:
        mappings = [PortMapping(name="default")]
    if not host and migrated_defs:
        missing = len(migrated_defs) - len(mappings or [])
        mappings = list(mappings or []) + [PortMapping() for _ in range(max(0, missing))]
    return container.model_copy(update={"docker": docker, "port_mappings": mappings})


def _discovery_ports(app: AppDefinition) -> list[PortMapping]:
    discovery = app.ip_address.discovery if app.ip_address else None
    ports = discovery.ports if discovery else []
    return [
        PortMapping(container_port=p.number, name=p.name, protocol=p.protocol, labels=p.labels)
        for p in ports
    ]


def _with_port_index(check: HealthCheck) -> HealthCheck:
    if check.protocol == "COMMAND" or check.port is not None or check.port_index is not None:
        return check
    return check.model_copy(update={"port_index": 0})


def _with_status_codes(check: ReadinessCheck) -> ReadinessCheck:
    if check.http_status_codes_for_ready:
        return check
    return check.model_copy(update={"http_status_codes_for_ready": [200]})


def _has_persistent_volume(container: Container) -> bool:
    return any("persistent" in v for v in container.volumes)


def _fetch(app: AppUpdate) -> list[Artifact] | None:
    if app.uris and not app.fetch:
        return [Artifact(uri=u, extract=_is_extract(u)) for u in app.uris]
    return app.fetch


def _is_extract(uri: str) -> bool:
    path = uri.split("?", 1)[0].split("#", 1)[0]
    return path.endswith(_EXTRACTABLE)


def _post_validation(app: AppDefinition) -> AppDefinition:
    """Marathon's ``forPostValidation``: default networks, container and unreachable
    strategy, bridge host ports, ``requirePorts`` only on the host network."""
    networks = app.networks or [Network(mode="host")]
    container = app.container
    if container is None and any(n.mode != "host" for n in networks):
        # Off the host network an app without a container gets a Mesos one with one port.
        container = Container(type="MESOS", port_mappings=[PortMapping(name="default")])
    bridged = any(n.mode == "container/bridge" for n in networks)
    if container is not None and container.port_mappings is not None and bridged:
        # Backwards compatibility: in bridge mode a missing host port means "any port".
        mappings = [
            m if m.host_port is not None else m.model_copy(update={"host_port": 0})
            for m in container.port_mappings
        ]
        container = container.model_copy(update={"port_mappings": mappings})
    unreachable = app.unreachable_strategy
    if unreachable is None:
        resident = container is not None and _has_persistent_volume(container)
        unreachable = UnreachableStrategy.model_validate("disabled" if resident else {})
    require_ports = bool(app.require_ports) and all(n.mode == "host" for n in networks)
    return app.model_copy(
        update={
            "networks": networks,
            "container": container,
            "unreachable_strategy": unreachable,
            "require_ports": require_ports,
        }
    )
