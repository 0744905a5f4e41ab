"""From Marathon's app spec to control's records and back: the stored definition, task
records for rendering; pure. Registers the reader that upgrades app records stored as
Marathon JSON (formats 1 and 2) with ``control.records``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from pallet.api.marathon import (
    AppSpec,
    HealthResult,
    LocalVolume,
    MesosTaskState,
    TaskView,
    Violation,
    app_json,
    normalize_app,
    not_valid,
    read_app,
)
from pallet.api.marathon.support import (
    Allowances,
    unsupported,
)
from pallet.control import RunSpec, TaskGoal, TaskRecord, TaskState
from pallet.control.records import read_legacy_apps_with
from pallet.control.reservations import ReservationRecord
from pallet.model import HealthResult as ModelHealth
from pallet.model.app_codec import stored_form
from pallet.model.app_run import image_of, run_spec

__all__ = [
    "app_document",
    "check_runnable",
    "epoch",
    "marathon_task",
    "moment",
    "stored_app",
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
    if (r0.cpu_milli, r0.mem_mib, r0.disk_mib, before.host_ports) != (
        r1.cpu_milli,
        r1.mem_mib,
        r1.disk_mib,
        after.host_ports,
    ):
        out.append(Violation("/", "Resident Tasks may not change resource requirements!"))
    return out


def app_document(spec: AppSpec) -> dict[str, Any]:
    """The Marathon JSON of ``spec`` without its version (what a dry run compares)."""
    doc = app_json(spec, _EPOCH)
    doc.pop("version", None)
    return doc


def stored_app(spec: AppSpec) -> tuple[AppSpec, RunSpec]:
    """``spec`` as an ``AppRecord`` keeps it: its definition (the spec without its count,
    which control keeps in ``RunSpec`` only) and its ``RunSpec``, both of the spec as
    the store gives it back (objects' keys sorted: free-form objects such as
    ``container`` render in that order, whether the app was just taken or loaded after
    a restart, and ``run`` is what a reload computes)."""
    stored = stored_form(spec)
    return replace(stored, instances=0), run_spec(stored)


def _read_stored_marathon(definition: dict[str, Any], instances: int) -> AppSpec:
    """An app record's Marathon definition of format 1 or 2, read as a request's."""
    return normalize_app(read_app({**definition, "instances": instances}))


read_legacy_apps_with(_read_stored_marathon)


_STATES = {s.value: s for s in MesosTaskState}


def _state(task: TaskRecord) -> MesosTaskState:
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


def _addresses(task: TaskRecord) -> tuple[str, ...]:
    """A task on a container network has its own address (known once its agent has
    reported it); any other task is reached at its agent's."""
    container = task.launch.container
    if container is not None and container.network == "container":
        return task.ip_addresses
    return task.ip_addresses or _ip(task.host)


def marathon_task(
    task: TaskRecord,
    service_ports: tuple[int, ...] = (),
    reservations: Mapping[str, ReservationRecord] | None = None,
) -> TaskView:
    """A control task as the Marathon renderers want it; ``reservations`` (the state's
    instance slots) give a resident task its ``localVolumes``."""
    slot = (reservations or {}).get(task.reservation or "")
    return TaskView(
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
