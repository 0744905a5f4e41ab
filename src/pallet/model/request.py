"""What the scheduler is asked to place: one task's needs and rules; pure."""

from __future__ import annotations

from dataclasses import dataclass

from pallet.model.constraints import Constraint
from pallet.model.errors import ValidationError
from pallet.model.node import GPU_MILLI
from pallet.model.resources import Resources

__all__ = ["ANY_UNRESERVED", "PlacementRequest", "VolumeNeed"]

ANY_UNRESERVED = frozenset({"*"})
"""Marathon's default ``acceptedResourceRoles``: unreserved resources only."""


@dataclass(frozen=True, slots=True)
class VolumeNeed:
    """A persistent volume on an operator's disk: ``type`` ``path`` or ``mount``, ``size``
    MiB, the disk's ``root`` (``""``: the scheduler chooses one with room) and, for a
    mount volume, ``max_size`` (Marathon's ``maxSize``: no disk larger; 0: any)."""

    type: str
    size: int
    root: str = ""
    max_size: int = 0


@dataclass(frozen=True, slots=True)
class PlacementRequest:
    """One task to place.

    ``resources.gpu`` below ``GPU_MILLI`` is a share of one device; otherwise it must
    be a whole number of devices. ``ports``: 0 = any free port, else that exact port.
    ``gpu_models``: allowed GPU models (empty = any). ``accepted_roles``: the node
    roles whose resources it may use (Marathon's ``acceptedResourceRoles``; ``*`` is
    unreserved). ``role`` is the role it runs as (fair sharing, quota). ``networks``:
    the container networks it joins (a node must have each).
    """

    id: str
    app_id: str
    resources: Resources
    ports: tuple[int, ...] = ()
    gpu_models: frozenset[str] = frozenset()
    constraints: tuple[Constraint, ...] = ()
    role: str = "*"
    priority: int = 0
    accepted_roles: frozenset[str] = ANY_UNRESERVED
    node_id: str | None = None
    reservation: str | None = None
    networks: tuple[str, ...] = ()
    """The named container networks the task joins: only nodes that have them all."""
    volume_disks: tuple[VolumeNeed, ...] = ()
    """Persistent volumes on the operator's disks."""

    def __post_init__(self) -> None:
        if not self.resources.is_nonnegative():
            raise ValidationError("/resources", f"task {self.id}: resources must be >= 0")
        g = self.resources.gpu_milli
        if g > GPU_MILLI and g % GPU_MILLI:
            raise ValidationError(
                "/gpus",
                f"task {self.id}: above one GPU, ask for whole GPUs (got {g / GPU_MILLI:g})",
            )
        for p in self.ports:
            if not 0 <= p <= 65535:
                raise ValidationError("/ports", f"task {self.id}: port {p} is outside 0-65535")
        if not self.accepted_roles:
            raise ValidationError(
                "/acceptedResourceRoles", f"task {self.id}: accept at least one role"
            )
        fixed = [p for p in self.ports if p]
        if len(fixed) != len(set(fixed)):
            raise ValidationError("/ports", f"task {self.id}: the same host port is asked twice")

    @property
    def gpu_count(self) -> int:
        """GPU devices touched: 0, 1 for a share, else whole devices."""
        g = self.resources.gpu_milli
        if g == 0:
            return 0
        return 1 if g <= GPU_MILLI else g // GPU_MILLI

    @property
    def gpu_milli_per_device(self) -> int:
        """Milli-GPUs taken from each device touched."""
        g = self.resources.gpu_milli
        return g if g <= GPU_MILLI else GPU_MILLI

    def shape_key(self) -> tuple[object, ...]:
        """Requests with equal keys are interchangeable for feasibility and scoring."""
        return (
            self.app_id,
            self.resources,
            len(self.ports),
            tuple(p for p in self.ports if p),
            self.gpu_models,
            self.constraints,
            self.accepted_roles,
            self.node_id,
            self.networks,
            self.volume_disks,
        )
