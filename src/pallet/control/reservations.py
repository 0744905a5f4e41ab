"""Instance slots of resident apps (Marathon's reservations with their local persistent
volumes): the record, and the choices about slots (which are free, which to destroy);
pure.

A resident app (one with ``persistent`` volumes) holds one slot per instance it ever
placed: ``/pallet/reservations/<app id>@<slot id>`` = {node, volumes}. A slot is written
in the transaction that places its first task, and its disk is counted on its node in
the view whether a task runs or not. A task takes a slot (``TaskRecord.reservation``);
when it ends the slot waits, and the next task the app needs is pinned to the slot's
node with the same volumes. Scaling down keeps the slots (as Marathon does: scaling up
again finds the data); they are destroyed when the app is deleted, when the app's
volumes change, or when their node is gone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pallet.control.layout import ROOT
from pallet.control.records import AppRecord, RunSpec, TaskRecord
from pallet.model import PersistentVolume, Placement, PlacementRequest, Resources, VolumeNeed

__all__ = [
    "RESERVATIONS",
    "ReservationRecord",
    "busy_slots",
    "new_slot",
    "reservation_key",
]

RESERVATIONS = ROOT + "reservations/"
VIEW_PREFIX = "reservation:"
"""The view holds a slot's disk as a placement of this id (and app id) prefix."""


def reservation_key(app_id: str, slot: str) -> str:
    """App ids never contain ``@``: one app's slots never share a prefix with another's."""
    return f"{RESERVATIONS}{app_id}@{slot}"


@dataclass(frozen=True, slots=True)
class ReservationRecord:
    """One instance slot of a resident app: its node and its volumes (ids set)."""

    id: str
    app_id: str
    node_id: str
    volumes: tuple[PersistentVolume, ...]
    created_at: float

    @property
    def key(self) -> str:
        return reservation_key(self.app_id, self.id)

    @property
    def disk(self) -> int:
        """MiB of the node's own disk the slot holds (its ``root`` volumes)."""
        return sum(v.size for v in self.volumes if v.type == "root")

    @property
    def view_id(self) -> str:
        return VIEW_PREFIX + self.id

    def placement(self) -> Placement:
        """The slot's disk as the view counts it."""
        request = PlacementRequest(
            id=self.view_id,
            app_id=VIEW_PREFIX + self.app_id,
            resources=Resources(0, 0, self.disk, 0),
            volume_disks=tuple(
                VolumeNeed(v.type, v.size, v.source) for v in self.volumes if v.type != "root"
            ),
        )
        return Placement(request, self.node_id)

    def fits(self, run: RunSpec) -> bool:
        """Whether the app (as it is now) asks for exactly these volumes."""
        return _shape(self.volumes) == _shape(run.persistent)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "app_id": self.app_id,
            "node_id": self.node_id,
            "volumes": [v.to_json() for v in self.volumes],
            "created_at": self.created_at,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ReservationRecord:
        return cls(
            id=doc["id"],
            app_id=doc["app_id"],
            node_id=doc["node_id"],
            volumes=tuple(PersistentVolume.from_json(v) for v in doc["volumes"]),
            created_at=float(doc["created_at"]),
        )


def _shape(volumes: Iterable[PersistentVolume]) -> list[tuple[str, int, str, int]]:
    return [(v.container_path, v.size, v.type, v.max_size) for v in volumes]


def new_slot(
    app: AppRecord, slot: str, node_id: str, now: float, disks: tuple[str, ...] = ()
) -> ReservationRecord:
    """A new slot of ``app`` on ``node_id``; its volume ids read like Marathon's
    (``app#path#slot``), unique on the node. ``disks``: the roots the view chose for
    its path and mount volumes, in order."""
    name = app.id.strip("/").replace("/", "_")
    sources = iter(disks)
    volumes = tuple(
        PersistentVolume(
            v.container_path,
            v.size,
            f"{name}#{v.container_path}#{slot}",
            v.type,
            "" if v.type == "root" else next(sources),
            v.max_size,
        )
        for v in app.run.persistent
    )
    return ReservationRecord(slot, app.id, node_id, volumes, now)


def busy_slots(tasks: Iterable[TaskRecord]) -> set[str]:
    """The slots taken by a task that has not ended (whatever its goal)."""
    return {t.reservation for t in tasks if t.reservation is not None and t.live}
