"""From Marathon's app spec to control's records and back: ``RunSpec``, stored definitions,
task records for rendering; pure except for the spec cache.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pallet.api.marathon import (
    AppSpec,
    HealthResult,
    LocalVolume,
    MesosTaskState,
    TaskRecord,
    Violation,
    app_json,
    normalize_app,
    not_valid,
    read_app,
    thaw,
)
from pallet.api.marathon.parts import Artifact, HealthCheck, ReadinessCheck
from pallet.api.marathon.support import (
    Allowances,
    host_volumes,
    persistent_volumes,
    secret_volumes,
    unsupported,
)
from pallet.control import AppRecord, RunSpec, TaskGoal, TaskState
from pallet.control import TaskRecord as ControlTask
from pallet.control.records import decode, encode
from pallet.control.reservations import ReservationRecord
from pallet.model import (
    CheckProtocol,
    ContainerPort,
    ContainerSpec,
    FetchUri,
    HealthCheckSpec,
    PersistentVolume,
    ReadinessCheckSpec,
    VolumeSpec,
)
from pallet.model import HealthResult as ModelHealth
from pallet.model.app import NetworkMode, SecretRef
from pallet.model.frozen import FrozenMap
from pallet.model.secrets import TaskSecret, check_secret_path

__all__ = [
    "SpecCache",
    "app_document",
    "check_runnable",
    "container_spec",
    "definition_of",
    "epoch",
    "health_checks",
    "marathon_task",
    "moment",
    "readiness_checks",
    "run_spec",
    "task_secrets",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def moment(version: str) -> datetime:
    """A stored version text (``2024-05-06T07:08:09.123Z``) as a datetime."""
    return datetime.fromisoformat(version)


def epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def check_runnable(spec: AppSpec, allow: Allowances = Allowances()) -> None:
    """Refuse (422) an app Pallet could only run by ignoring some of its fields
    (``marathon.support``), one the operator does not allow, or one with nothing to run."""
    violations = unsupported(spec, allow)
    if spec.cmd is None and not spec.args and image_of(spec) is None and not violations:
        message = "nothing to run: set cmd or args, or a container image"
        violations.append(Violation("/cmd", message))
    if violations:
        raise not_valid(violations)


def health_checks(spec: AppSpec) -> tuple[HealthCheckSpec, ...]:
    """The app's health checks as control stores them and agents run them; the port is
    still an index into the task's host ports (``launch_spec`` resolves it)."""
    out = []
    container_ports = _network_ports(spec)
    for frozen in spec.health_checks:
        check = HealthCheck.model_validate(thaw(frozen))
        index, port = check.port_index, check.port
        if index is not None and index < len(container_ports) and container_ports[index]:
            # On a container network the index is into portMappings: the container port.
            port = container_ports[index]
            index = None
        out.append(
            HealthCheckSpec(
                protocol=CheckProtocol(check.protocol),
                port_index=index,
                port=port,
                path=check.path or "/",
                command=check.command.value if check.command is not None else None,
                grace_period=float(check.grace_period_seconds),
                interval=float(check.interval_seconds),
                timeout=float(check.timeout_seconds),
                max_consecutive_failures=check.max_consecutive_failures,
                delay=float(check.delay_seconds),
                ignore_http1xx=bool(check.ignore_http1xx),
            )
        )
    return tuple(out)


def readiness_checks(spec: AppSpec) -> tuple[ReadinessCheckSpec, ...]:
    """The app's readiness checks as agents probe them (the port still a name; on a
    container network the named mapping's container port)."""
    out = []
    named = _network_port_names(spec)
    for frozen in spec.readiness_checks:
        check = ReadinessCheck.model_validate(thaw(frozen))
        out.append(
            ReadinessCheckSpec(
                name=check.name,
                protocol=CheckProtocol(check.protocol),
                path=check.path,
                port_name=check.port_name,
                port=named.get(check.port_name) or None,
                interval=float(check.interval_seconds),
                timeout=float(check.timeout_seconds),
                status_codes=tuple(check.http_status_codes_for_ready or (200,)),
                preserve_last_response=check.preserve_last_response,
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


def resident_update_violations(before: RunSpec, after: RunSpec) -> list[Violation]:
    """Marathon's rules for changing a resident app: its persistent volumes stay as they
    are (their data would be left behind), and so do its resources (its instances are
    pinned to nodes that had room for them)."""
    if not before.persistent:
        return []
    out = []
    shape = sorted((v.container_path, v.size, v.type, v.max_size) for v in before.persistent)
    if shape != sorted((v.container_path, v.size, v.type, v.max_size) for v in after.persistent):
        out.append(Violation("/", "Persistent volumes can not be changed!"))
    r0, r1 = before.resources, after.resources
    if (r0.cpu, r0.mem, r0.disk, before.host_ports) != (r1.cpu, r1.mem, r1.disk, after.host_ports):
        out.append(Violation("/", "Resident Tasks may not change resource requirements!"))
    return out


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


def _fetch_item(frozen: Any) -> FetchUri:
    """A ``fetch`` item as the agent takes it (Mesos' ``CommandInfo.URI``)."""
    item = Artifact.model_validate(thaw(frozen))
    return FetchUri(item.uri, item.extract, item.executable, item.cache, item.dest_path)


def app_document(spec: AppSpec) -> dict[str, Any]:
    """The Marathon JSON of ``spec`` without its version (what a dry run compares)."""
    doc = app_json(spec, _EPOCH)
    doc.pop("version", None)
    return doc


def definition_of(spec: AppSpec) -> dict[str, Any]:
    """The Marathon JSON of ``spec`` as ``AppRecord.definition`` stores it: without its
    version, without ``instances`` (control keeps the count in ``RunSpec`` only), its
    objects' keys in the order the store's encoding gives them back (free-form objects
    such as ``container`` are rendered in that order, whether the app was just taken or
    loaded after a restart)."""
    doc = app_document(spec)
    doc.pop("instances", None)
    return decode(encode(doc))  # in the store's key order, so memory and a reload agree


class SpecCache:
    """``AppSpec`` by (app id, version), read from the stored record (the count put back
    into its definition): what every rendering of an app starts from, so the same
    record renders the same bytes whichever route stored it and across restarts.
    Reading a stored definition back is not free; a version never changes."""

    def __init__(self, size: int = 10_000) -> None:
        self._specs: dict[tuple[str, str], AppSpec] = {}
        self._size = size

    def get(self, record: AppRecord) -> AppSpec:
        key = (record.id, record.version)
        spec = self._specs.get(key)
        if spec is None:
            spec = normalize_app(read_app({**record.definition, "instances": record.instances}))
            if len(self._specs) >= self._size:
                self._specs.clear()
            self._specs[key] = spec
        return spec


_STATES = {s.value: s for s in MesosTaskState}


def _state(task: ControlTask) -> MesosTaskState:
    if task.goal is TaskGoal.KILL and task.live:
        return MesosTaskState.TASK_KILLING
    if task.state is TaskState.LOST:
        return MesosTaskState.TASK_UNREACHABLE
    if task.state is TaskState.GONE_BY_OPERATOR:
        return MesosTaskState.TASK_GONE
    return _STATES.get(task.state.value, MesosTaskState.TASK_UNKNOWN)


def _ip(host: str) -> tuple[str, ...]:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return ()
    return (host,)


def _addresses(task: ControlTask) -> tuple[str, ...]:
    """A task on a container network has its own address (known once its agent has
    reported it); any other task is reached at its agent's."""
    container = task.launch.container
    if container is not None and container.network == "container":
        return task.ip_addresses
    return task.ip_addresses or _ip(task.host)


def marathon_task(
    task: ControlTask,
    service_ports: tuple[int, ...] = (),
    reservations: Mapping[str, ReservationRecord] | None = None,
) -> TaskRecord:
    """A control task as the Marathon renderers want it; ``reservations`` (the state's
    instance slots) give a resident task its ``localVolumes``."""
    slot = (reservations or {}).get(task.reservation or "")
    return TaskRecord(
        id=task.id,
        app_id=task.app_id,
        host=task.host,
        state=_state(task),
        role=task.role,
        agent_id=task.node_id,
        host_ports=task.ports,
        service_ports=service_ports,
        ip_addresses=_addresses(task),
        staged_at=epoch(task.staged_at),
        started_at=epoch(task.started_at) if task.started_at is not None else None,
        version=moment(task.version),
        health=tuple(_health(h) for h in task.health),
        local_volumes=() if slot is None else _local_volumes(task.app_id, slot),
    )


def _local_volumes(app_id: str, slot: ReservationRecord) -> tuple[LocalVolume, ...]:
    return tuple(
        LocalVolume(
            run_spec_id=app_id,
            container_path=v.container_path,
            uuid=slot.id,
            persistence_id=v.id,
        )
        for v in slot.volumes
    )


def _health(result: ModelHealth) -> HealthResult:
    def when(value: float | None) -> datetime | None:
        return None if value is None else epoch(value)

    return HealthResult(
        alive=result.alive,
        consecutive_failures=result.consecutive_failures,
        first_success=when(result.first_success),
        last_success=when(result.last_success),
        last_failure=when(result.last_failure),
        last_failure_cause=result.last_failure_cause,
    )
