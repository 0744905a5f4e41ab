"""The one projection of an app to what control acts on: ``run_spec(AppSpec) ->
RunSpec`` (resources, ports, checks with their ports resolved on container networks,
the container, volumes, secrets as references, strategies); pure.

It reads the parts ``AppSpec`` keeps as frozen JSON in Marathon's normalised form
(every default written out; the defaults below are Marathon's, for JSON written before
a default existed). Nothing else builds a ``RunSpec`` from an app (a pod's comes from
``api.pod_spec``).
"""

from __future__ import annotations

from pallet.model.app import AppSpec, NetworkMode, RunSpec, SecretRef
from pallet.model.checks import CheckProtocol, HealthCheckSpec, ReadinessCheckSpec
from pallet.model.frozen import FrozenMap
from pallet.model.messages import (
    ContainerPort,
    ContainerSpec,
    FetchUri,
    PersistentVolume,
    VolumeSpec,
)
from pallet.model.secrets import TaskSecret, check_secret_path

__all__ = [
    "container_spec",
    "health_checks",
    "host_volumes",
    "image_of",
    "persistent_volumes",
    "readiness_checks",
    "run_spec",
    "secret_volumes",
    "task_secrets",
]


def health_checks(spec: AppSpec) -> tuple[HealthCheckSpec, ...]:
    """The app's health checks as control stores them and agents run them; the port is
    still an index into the task's host ports (``launch_spec`` resolves it)."""
    out = []
    container_ports = _network_ports(spec)
    for check in spec.health_checks:
        index, port = _opt_int(check.get("portIndex")), _opt_int(check.get("port"))
        if index is not None and index < len(container_ports) and container_ports[index]:
            # On a container network the index is into portMappings: the container port.
            port = container_ports[index]
            index = None
        command = check.get("command")
        value = command.get("value") if isinstance(command, FrozenMap) else None
        out.append(
            HealthCheckSpec(
                protocol=CheckProtocol(str(check.get("protocol", "HTTP"))),
                port_index=index,
                port=port,
                path=str(check.get("path") or "/"),
                command=None if value is None else str(value),
                grace_period=_number(check, "gracePeriodSeconds", 300),
                interval=_number(check, "intervalSeconds", 60),
                timeout=_number(check, "timeoutSeconds", 20),
                max_consecutive_failures=int(_number(check, "maxConsecutiveFailures", 3)),
                delay=_number(check, "delaySeconds", 15),
                ignore_http1xx=bool(check.get("ignoreHttp1xx")),
            )
        )
    return tuple(out)


def readiness_checks(spec: AppSpec) -> tuple[ReadinessCheckSpec, ...]:
    """The app's readiness checks as agents probe them (the port still a name; on a
    container network the named mapping's container port)."""
    out = []
    named = _network_port_names(spec)
    for check in spec.readiness_checks:
        port_name = str(check.get("portName", "http-api"))
        codes = check.get("httpStatusCodesForReady")
        out.append(
            ReadinessCheckSpec(
                name=str(check.get("name", "readinessCheck")),
                protocol=CheckProtocol(str(check.get("protocol", "HTTP"))),
                path=str(check.get("path", "/")),
                port_name=port_name,
                port=named.get(port_name) or None,
                interval=_number(check, "intervalSeconds", 30),
                timeout=_number(check, "timeoutSeconds", 10),
                status_codes=tuple(int(c) for c in codes)
                if isinstance(codes, tuple) and codes
                else (200,),
                preserve_last_response=bool(check.get("preserveLastResponse", False)),
            )
        )
    return tuple(out)


def _network_ports(spec: AppSpec) -> tuple[int, ...]:
    """The container port of each of ``portMappings`` when the app is on a named
    container network (where its tasks are reached); empty otherwise."""
    if _network(spec) != "container" or spec.container is None:
        return ()
    mappings = spec.container.get("portMappings", ())
    out = []
    for m in mappings if isinstance(mappings, tuple) else ():
        port = m.get("containerPort", 0) if isinstance(m, FrozenMap) else 0
        out.append(port if isinstance(port, int) else 0)
    return tuple(out)


def _network_port_names(spec: AppSpec) -> dict[str, int]:
    """Container port by mapping name, on a named container network."""
    if not _network_ports(spec) or spec.container is None:
        return {}
    mappings = spec.container.get("portMappings", ())
    return {
        str(m.get("name")): int(port)
        for m in (mappings if isinstance(mappings, tuple) else ())
        if isinstance(m, FrozenMap)
        and m.get("name")
        and isinstance(port := m.get("containerPort"), int)
    }


def task_secrets(spec: AppSpec) -> tuple[TaskSecret, ...]:
    """Where each task gets the app's secrets: ``env: {VAR: {secret: name}}`` and secret
    volumes (``{containerPath, secret}``), as references to the store's paths."""
    out = []
    for var, value in spec.env.items():
        if isinstance(value, SecretRef) and value.secret in spec.secrets:
            source = check_secret_path(spec.secrets[value.secret])
            out.append(TaskSecret(value.secret, source, env=var))
    for target, name in secret_volumes(spec.container):
        if name in spec.secrets:
            out.append(TaskSecret(name, check_secret_path(spec.secrets[name]), file=target))
    return tuple(out)


def run_spec(spec: AppSpec) -> RunSpec:
    """What control needs of ``spec``."""
    unreachable = spec.unreachable_strategy
    ports = spec.port_definitions or ()
    grace = spec.task_kill_grace_period_seconds
    return RunSpec(
        instances=spec.instances,
        resources=spec.resources,
        host_ports=spec.host_ports,
        port_names=tuple(p.name or "" for p in ports),
        constraints=spec.constraints,
        role=spec.role,
        accepted_roles=spec.accepted_resource_roles or ("*",),
        cmd=spec.cmd,
        args=spec.args,
        env={k: v for k, v in spec.env.items() if isinstance(v, str)},
        labels=dict(spec.labels),
        kill_grace_seconds=3.0 if grace is None else float(grace),
        backoff_seconds=float(spec.backoff_seconds),
        backoff_factor=float(spec.backoff_factor),
        max_launch_delay_seconds=float(spec.max_launch_delay_seconds),
        kill_selection=spec.kill_selection.value,
        unreachable_inactive_after_seconds=(
            None if unreachable is None else float(unreachable.inactive_after_seconds)
        ),
        unreachable_expunge_after_seconds=(
            0.0 if unreachable is None else float(unreachable.expunge_after_seconds)
        ),
        minimum_health_capacity=spec.upgrade_strategy.minimum_health_capacity,
        maximum_over_capacity=spec.upgrade_strategy.maximum_over_capacity,
        progress_deadline_seconds=spec.upgrade_strategy.progress_deadline_seconds,
        auto_rollback=bool(spec.upgrade_strategy.auto_rollback),
        canary_instances=spec.upgrade_strategy.canary_instances or 0,
        auto_promote_after_seconds=spec.upgrade_strategy.auto_promote_after_seconds,
        health_checks=health_checks(spec),
        readiness_checks=readiness_checks(spec),
        user=spec.user,
        fetch=tuple(_fetch_item(f) for f in spec.fetch),
        container=container_spec(spec),
        persistent=tuple(
            PersistentVolume(path, size, type=kind, max_size=most)
            for path, size, kind, most in persistent_volumes(spec.container)
        ),
        secrets=task_secrets(spec),
        dependencies=spec.dependencies,
    )


def image_of(spec: AppSpec) -> str | None:
    """The image the app runs (``container.docker.image``, for either container type)."""
    docker = spec.container.get("docker") if spec.container is not None else None
    image = docker.get("image") if isinstance(docker, FrozenMap) else None
    return image if isinstance(image, str) else None


def container_spec(spec: AppSpec) -> ContainerSpec | None:
    """The agent's ``ContainerSpec`` for an app with an image; None for a plain command
    (an app without a container, or a ``MESOS`` one without an image, runs on the host
    as Mesos runs it)."""
    image = image_of(spec)
    if image is None or spec.container is None:
        return None
    docker = spec.container["docker"]
    assert isinstance(docker, FrozenMap)
    return ContainerSpec(
        type=str(spec.container.get("type", "DOCKER")),
        image=image,
        force_pull=bool(docker.get("forcePullImage", False)),
        privileged=bool(docker.get("privileged", False)),
        volumes=tuple(
            VolumeSpec(target, host, mode) for target, host, mode in host_volumes(spec.container)
        ),
        network=_network(spec),
        port_mappings=_container_ports(spec) if not spec.on_host_network else (),
        network_name=_network_name(spec),
    )


def _network(spec: AppSpec) -> str:
    """The agent's name for the app's network: ``host``, ``bridge`` or ``container``."""
    modes = {n.mode for n in spec.networks}
    if NetworkMode.BRIDGE in modes:
        return "bridge"
    return "container" if NetworkMode.CONTAINER in modes else "host"


def _network_name(spec: AppSpec) -> str:
    names = [n.name for n in spec.networks if n.mode is NetworkMode.CONTAINER and n.name]
    return names[0] if names else ""


def _container_ports(spec: AppSpec) -> tuple[ContainerPort, ...]:
    """The container ports of the mappings that take a host port, in the order of the
    task's host ports (``AppSpec.host_ports``)."""
    assert spec.container is not None
    mappings = spec.container.get("portMappings", ())
    out = []
    for mapping in mappings if isinstance(mappings, tuple) else ():
        if isinstance(mapping, FrozenMap) and isinstance(mapping.get("hostPort"), int):
            port = mapping.get("containerPort", 0)
            out.append(
                ContainerPort(
                    port if isinstance(port, int) else 0, str(mapping.get("protocol", "tcp"))
                )
            )
    return tuple(out)


def _fetch_item(item: FrozenMap[object]) -> FetchUri:
    """A ``fetch`` item as the agent takes it (Mesos' ``CommandInfo.URI``)."""
    dest = item.get("destPath")
    return FetchUri(
        str(item.get("uri")),
        bool(item.get("extract", True)),
        bool(item.get("executable", False)),
        bool(item.get("cache", False)),
        None if dest is None else str(dest),
    )


def _opt_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _number(check: FrozenMap[object], key: str, default: float) -> float:
    """A number of a normalised check (Marathon's default when it is absent)."""
    value = check.get(key, default)
    return float(value) if isinstance(value, int | float) else float(default)


def host_volumes(container: FrozenMap[object] | None) -> list[tuple[str, str, str]]:
    """The host volumes of a normalised ``container``: (containerPath, hostPath, mode)."""
    out = []
    volumes = container.get("volumes", ()) if container is not None else ()
    for volume in volumes if isinstance(volumes, tuple) else ():
        if isinstance(volume, FrozenMap) and isinstance(volume.get("hostPath"), str):
            out.append(
                (str(volume.get("containerPath")), str(volume["hostPath"]), str(volume.get("mode")))
            )
    return out


def secret_volumes(container: FrozenMap[object] | None) -> list[tuple[str, str]]:
    """The file-based secrets of a normalised ``container``: (containerPath, secret name)."""
    out = []
    volumes = container.get("volumes", ()) if container is not None else ()
    for volume in volumes if isinstance(volumes, tuple) else ():
        if isinstance(volume, FrozenMap) and isinstance(volume.get("secret"), str):
            out.append((str(volume.get("containerPath")), str(volume["secret"])))
    return out


def persistent_volumes(container: FrozenMap[object] | None) -> list[tuple[str, int, str, int]]:
    """The local persistent volumes of a normalised ``container``: (containerPath, size,
    type, maxSize or 0)."""
    out = []
    volumes = container.get("volumes", ()) if container is not None else ()
    for volume in volumes if isinstance(volumes, tuple) else ():
        persistent = volume.get("persistent") if isinstance(volume, FrozenMap) else None
        if isinstance(persistent, FrozenMap) and isinstance(volume, FrozenMap):
            size = persistent.get("size")
            kind = str(persistent.get("type", "root"))
            most = persistent.get("maxSize")
            out.append(
                (
                    str(volume.get("containerPath")),
                    size if isinstance(size, int) else 0,
                    kind,
                    most if isinstance(most, int) else 0,
                )
            )
    return out
