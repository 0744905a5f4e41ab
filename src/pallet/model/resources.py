"""Integer resource vectors and their algebra; pure.

Allocations are fixed point, as in Mesos: millicpus, MiB of memory, MiB of disk and
milli-GPUs. Floats appear only at the edges (Marathon's ``cpus: 0.5``) and are
converted once, here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pallet.model.errors import ValidationError

__all__ = ["DIMENSIONS", "Resources"]

DIMENSIONS = ("cpu", "mem", "disk", "gpu")


@dataclass(frozen=True, slots=True)
class Resources:
    """A vector of millicpus, MiB memory, MiB disk and milli-GPUs."""

    cpu: int = 0
    mem: int = 0
    disk: int = 0
    gpu: int = 0

    @classmethod
    def from_marathon(
        cls, cpus: float = 0.0, mem: float = 0.0, disk: float = 0.0, gpus: float = 0.0
    ) -> Resources:
        """Convert Marathon's float units (cores, MiB, MiB, GPUs), rounding up so a
        request is never silently shrunk."""
        values = {"cpus": cpus, "mem": mem, "disk": disk, "gpus": gpus}
        for name, value in values.items():
            if not isinstance(value, int | float) or math.isnan(value) or math.isinf(value):
                raise ValidationError(f"/{name}", "must be a finite number")
            if value < 0:
                raise ValidationError(f"/{name}", "must be >= 0")
        return cls(
            cpu=math.ceil(round(cpus * 1000, 6)),
            mem=math.ceil(round(mem, 6)),
            disk=math.ceil(round(disk, 6)),
            gpu=math.ceil(round(gpus * 1000, 6)),
        )

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.cpu, self.mem, self.disk, self.gpu)

    def __add__(self, other: Resources) -> Resources:
        return Resources(
            self.cpu + other.cpu,
            self.mem + other.mem,
            self.disk + other.disk,
            self.gpu + other.gpu,
        )

    def __sub__(self, other: Resources) -> Resources:
        return Resources(
            self.cpu - other.cpu,
            self.mem - other.mem,
            self.disk - other.disk,
            self.gpu - other.gpu,
        )

    def __mul__(self, k: int) -> Resources:
        return Resources(self.cpu * k, self.mem * k, self.disk * k, self.gpu * k)

    __rmul__ = __mul__

    def fits(self, capacity: Resources) -> bool:
        """True if this request fits inside ``capacity`` in every dimension."""
        return (
            self.cpu <= capacity.cpu
            and self.mem <= capacity.mem
            and self.disk <= capacity.disk
            and self.gpu <= capacity.gpu
        )

    def is_nonnegative(self) -> bool:
        return self.cpu >= 0 and self.mem >= 0 and self.disk >= 0 and self.gpu >= 0

    def shortfalls(self, capacity: Resources) -> list[str]:
        """The dimensions in which this request exceeds ``capacity``."""
        return [d for d in DIMENSIONS if getattr(self, d) > getattr(capacity, d)]

    def __str__(self) -> str:
        return f"cpus={self.cpu / 1000:g} mem={self.mem}MiB disk={self.disk}MiB gpus={self.gpu / 1000:g}"
