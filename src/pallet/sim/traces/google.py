"""Google cluster trace 2011 machine shapes -> a heterogeneous cluster; does file I/O.

``google_2011/machine_configs_joint_pct.csv`` gives the share of the 12,583 machines of
the cell per joint (CPU, memory) configuration, both normalized to the largest machine
(1.0). The trace never says what 1.0 is; we scale it to ``GoogleScale`` (default
**1.0 = 32 cores / 128 GiB**). Why that size: the dominant configuration (0.5, 0.5,
53 %) then is a 16-core / 64 GiB two-socket server and the 0.5 / 0.25 one (31 %) a
16-core / 32 GiB one, which is what a 2011 warehouse-scale machine looked like (two
8-core sockets, 2-4 GiB per core), and the largest one is twice that. Every shape keeps
the trace's 4 GiB-per-core ratio at 1.0, so pass another scale (e.g. 64 cores / 256
GiB) to model today's hardware with the same heterogeneity.

``google_cluster(n)`` apportions ``n`` nodes to the configurations by the largest
remainder method (Hamilton), so the counts sum to ``n`` and each is within one node of
its exact share. Platform ids (``machine_dist_platform.csv``) are only marginal counts,
not joint with the shapes, so nodes carry no platform attribute.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from pallet.model import Node
from pallet.model.errors import TraceError
from pallet.sim.traces.csvrows import read_rows
from pallet.sim.traces.paths import traces_dir

__all__ = [
    "GOOGLE_CELL_MACHINES",
    "GoogleScale",
    "MachineConfig",
    "apportion",
    "google_cluster",
    "google_dir",
    "read_machine_configs",
]

GOOGLE_CELL_MACHINES = 12_583
"""Machines in the clusterdata-2011-2 cell the shares come from."""


def google_dir() -> Path:
    return traces_dir() / "google_2011"


@dataclass(frozen=True, slots=True)
class GoogleScale:
    """What normalized 1.0 stands for."""

    cores: int = 32
    mem_gib: int = 128


@dataclass(frozen=True, slots=True)
class MachineConfig:
    """A joint (cpu, mem) configuration, normalized, with its share of machines (%)."""

    cpu: float
    mem: float
    percent: float

    def node(self, node_id: str, scale: GoogleScale) -> Node:
        return Node.build(
            node_id,
            cpu_milli=round(self.cpu * scale.cores * 1000),
            mem_mib=round(self.mem * scale.mem_gib * 1024),
            attributes={"cpu_normalized": f"{self.cpu:g}", "mem_normalized": f"{self.mem:g}"},
        )


def read_machine_configs(path: Path | None = None) -> list[MachineConfig]:
    """The configurations in file order (most common first). Shares must add up to
    100 % within the file's rounding (0.1 point)."""
    path = path or google_dir() / "machine_configs_joint_pct.csv"
    configs = []
    last_line = 1
    for row in read_rows(path, ("cpu_normalized", "mem_normalized", "pct_machines")):
        cpu = row.number("cpu_normalized")
        mem = row.number("mem_normalized")
        pct = row.number("pct_machines")
        for name, value in (("cpu_normalized", cpu), ("mem_normalized", mem)):
            if not 0 < value <= 1:
                raise row.error(name, f"{value:g} is outside (0, 1]")
        if pct > 100:
            raise row.error("pct_machines", f"{pct:g} is above 100")
        configs.append(MachineConfig(cpu, mem, pct))
        last_line = row.line
    total = sum(c.percent for c in configs)
    if not math.isclose(total, 100.0, abs_tol=0.1):
        raise TraceError(str(path), last_line, "pct_machines", f"shares add up to {total:g} %")
    return configs


def apportion(shares: list[float], n: int) -> list[int]:
    """Whole counts summing to ``n`` in proportion to ``shares`` (largest remainder;
    ties go to the earlier share). Pure."""
    total = sum(shares)
    if n < 0 or total <= 0:
        raise ValueError("need n >= 0 and a positive total share")
    exact = [s * n / total for s in shares]
    counts = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(shares)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in by_remainder[: n - sum(counts)]:
        counts[i] += 1
    return counts


def google_cluster(
    n: int = GOOGLE_CELL_MACHINES,
    scale: GoogleScale | None = None,
    configs: list[MachineConfig] | None = None,
) -> list[Node]:
    """``n`` nodes with the cell's joint (cpu, mem) shares, grouped by configuration in
    file order; ids ``google-00000`` ... . Reads the shared file unless ``configs`` given."""
    scale = scale or GoogleScale()
    configs = configs if configs is not None else read_machine_configs()
    counts = apportion([c.percent for c in configs], n)
    nodes: list[Node] = []
    for config, count in zip(configs, counts, strict=True):
        for _ in range(count):
            nodes.append(config.node(f"google-{len(nodes):05d}", scale))
    return nodes
