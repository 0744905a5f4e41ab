"""Port ranges and host port assignment; pure.

A request lists the host ports it needs: ``0`` asks for any free port of the
node's ranges (assigned lowest first, so plans are deterministic), any other
number asks for exactly that port, which must lie in a range and be free.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Set
from dataclasses import dataclass

from pallet.model.errors import ValidationError

__all__ = ["PortRange", "assign_ports", "free_port_count", "parse_port_ranges"]

_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+))?\s*$")


@dataclass(frozen=True, slots=True, order=True)
class PortRange:
    """An inclusive range of TCP/UDP port numbers."""

    begin: int
    end: int

    def __post_init__(self) -> None:
        if not (0 < self.begin <= self.end <= 65535):
            raise ValidationError("/ports", f"invalid port range {self.begin}-{self.end}")

    def __len__(self) -> int:
        return self.end - self.begin + 1

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.begin <= port <= self.end

    def __str__(self) -> str:
        return f"{self.begin}-{self.end}"


def parse_port_ranges(text: str, field: str = "/ports") -> tuple[PortRange, ...]:
    """Parse Mesos' range syntax: ``[31000-32000,33000-33010]`` (brackets optional)."""
    body = text.strip()
    if body.startswith("[") and body.endswith("]"):
        body = body[1:-1]
    ranges: list[PortRange] = []
    for part in filter(None, (p.strip() for p in body.split(","))):
        m = _RANGE.match(part)
        if not m:
            raise ValidationError(field, f"cannot read port range {part!r}; write e.g. 31000-32000")
        begin = int(m.group(1))
        end = int(m.group(2) or begin)
        if not (0 < begin <= end <= 65535):
            raise ValidationError(
                field, f"port range {part!r} must lie within 1-65535, low to high"
            )
        ranges.append(PortRange(begin, end))
    ranges.sort()
    for a, b in itertools.pairwise(ranges):
        if b.begin <= a.end:
            raise ValidationError(field, f"port ranges {a} and {b} overlap")
    return tuple(ranges)


def free_port_count(ranges: Iterable[PortRange], used: Set[int]) -> int:
    """How many ports of ``ranges`` are not in ``used``."""
    total = 0
    for r in ranges:
        total += len(r) - sum(1 for p in used if p in r)
    return total


def assign_ports(
    requested: tuple[int, ...], ranges: tuple[PortRange, ...], used: Set[int]
) -> tuple[int, ...] | None:
    """Host ports for ``requested`` on a node with ``ranges`` where ``used`` are taken,
    or None if they cannot all be had. Fixed ports first, then dynamic ones lowest first."""
    taken = set(used)
    result = list(requested)
    for port in requested:
        if port:
            if port in taken or not any(port in r for r in ranges):
                return None
            taken.add(port)
    for i, port in enumerate(requested):
        if port:
            continue
        chosen = _lowest_free(ranges, taken)
        if chosen is None:
            return None
        taken.add(chosen)
        result[i] = chosen
    return tuple(result)


def _lowest_free(ranges: tuple[PortRange, ...], taken: Set[int]) -> int | None:
    for r in ranges:
        for p in range(r.begin, r.end + 1):
            if p not in taken:
                return p
    return None
