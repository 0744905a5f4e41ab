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

    cpu_milli: int = 0
    mem_mib: int = 0
    disk_mib: int = 0
    gpu_milli: int = 0

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
            cpu_milli=math.ceil(round(cpus * 1000, 6)),
            mem_mib=math.ceil(round(mem, 6)),
            disk_mib=math.ceil(round(disk, 6)),
            gpu_milli=math.ceil(round(gpus * 1000, 6)),
        )

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.cpu_milli, self.mem_mib, self.disk_mib, self.gpu_milli)

    def __add__(self, other: Resources) -> Resources:
        return Resources(
            self.cpu_milli + other.cpu_milli,
            self.mem_mib + other.mem_mib,
            self.disk_mib + other.disk_mib,
            self.gpu_milli + other.gpu_milli,
        )

    def __sub__(self, other: Resources) -> Resources:
        return Resources(
            self.cpu_milli - other.cpu_milli,
            self.mem_mib - other.mem_mib,
            self.disk_mib - other.disk_mib,
            self.gpu_milli - other.gpu_milli,
        )

    def __mul__(self, k: int) -> Resources:
        return Resources(
            self.cpu_milli * k, self.mem_mib * k, self.disk_mib * k, self.gpu_milli * k
        )

    __rmul__ = __mul__

    def fits(self, capacity: Resources) -> bool:
        """True if this request fits inside ``capacity`` in every dimension."""
        return (
            self.cpu_milli <= capacity.cpu_milli
            and self.mem_mib <= capacity.mem_mib
            and self.disk_mib <= capacity.disk_mib
            and self.gpu_milli <= capacity.gpu_milli
        )

    def is_nonnegative(self) -> bool:
        return (
            self.cpu_milli >= 0 and self.mem_mib >= 0 and self.disk_mib >= 0 and self.gpu_milli >= 0
        )

    def shortfalls(self, capacity: Resources) -> list[str]:
        """The dimensions in which this request exceeds ``capacity``."""
        mine, theirs = self.as_tuple(), capacity.as_tuple()
        return [d for d, a, b in zip(DIMENSIONS, mine, theirs, strict=True) if a > b]

    def __str__(self) -> str:
        return f"cpus={self.cpu_milli / 1000:g} mem={self.mem_mib}MiB disk={self.disk_mib}MiB gpus={self.gpu_milli / 1000:g}"
