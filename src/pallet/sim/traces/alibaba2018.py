"""Alibaba cluster trace 2018 machines (``alibaba_2018/machine_meta.csv``); does file I/O.

The file has no header; its columns are ``machine_id, time_stamp, failure_domain_1,
failure_domain_2, cpu_num, mem_size, status`` (``UPSTREAM_schema.txt``), with several
event rows per machine. A machine's capacity and status come from its latest row (by
``time_stamp``, then line); each failure domain is its latest non-empty value.

Capacity: every machine has 96 cores, and memory is normalized to 100. We scale 100 to
**384 GiB** by default: 96 logical CPUs is a two-socket Xeon Platinum 8163 host
(2 x 24 cores x 2 threads), the CPU Alibaba built its 2017-18 fleet on, and Alibaba
Cloud's bare-metal instance on that host (``ecs.ebmg5``) offers exactly 96 vCPU and
384 GiB, i.e. 4 GiB per logical CPU. Pass ``mem_gib`` to choose another size.

Nodes carry the attributes ``failure_domain_1`` (292 values, about 14 machines each:
rack-like), ``failure_domain_2`` (21 values: a coarser level) and ``status``; a
machine whose latest status is not ``USING`` is ``DRAINING`` (it takes no new tasks).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from pallet.model import Node, NodeState
from pallet.model.errors import TraceError
from pallet.sim.traces.csvrows import Row
from pallet.sim.traces.paths import traces_dir

__all__ = [
    "COLUMNS",
    "DEFAULT_MEM_GIB",
    "MachineMeta",
    "alibaba2018_dir",
    "alibaba2018_nodes",
    "read_machine_meta",
]

COLUMNS = (
    "machine_id",
    "time_stamp",
    "failure_domain_1",
    "failure_domain_2",
    "cpu_num",
    "mem_size",
    "status",
)
DEFAULT_MEM_GIB = 384


def alibaba2018_dir() -> Path:
    return traces_dir() / "alibaba_2018"


@dataclass(frozen=True, slots=True)
class MachineMeta:
    """One machine as of its latest event."""

    machine_id: str
    cores: int
    mem_normalized: int
    failure_domain_1: str
    failure_domain_2: str
    status: str

    def node(self, mem_gib: int = DEFAULT_MEM_GIB) -> Node:
        attributes = {"status": self.status}
        if self.failure_domain_1:
            attributes["failure_domain_1"] = self.failure_domain_1
        if self.failure_domain_2:
            attributes["failure_domain_2"] = self.failure_domain_2
        return Node.build(
            self.machine_id,
            cpu_milli=self.cores * 1000,
            mem_mib=self.mem_normalized * mem_gib * 1024 // 100,
            attributes=attributes,
            state=NodeState.ACTIVE if self.status == "USING" else NodeState.DRAINING,
        )


def _rows(path: Path) -> list[Row]:
    if not path.is_file():
        raise TraceError(str(path), 0, "-", "file not found")
    rows = []
    with open(path, newline="") as fh:
        for number, cells in enumerate(csv.reader(fh), start=1):
            if not cells or all(not c.strip() for c in cells):
                continue
            if number == 1 and cells[0].strip() == COLUMNS[0]:
                continue  # tolerate a header row
            if len(cells) != len(COLUMNS):
                raise TraceError(
                    str(path), number, "-", f"{len(cells)} cells; expected {len(COLUMNS)}"
                )
            rows.append(Row(str(path), number, dict(zip(COLUMNS, cells, strict=True))))
    return rows


def read_machine_meta(path: Path | None = None) -> list[MachineMeta]:
    """One ``MachineMeta`` per machine, in order of first appearance in the file."""
    path = path or alibaba2018_dir() / "machine_meta.csv"
    latest: dict[str, tuple[int, Row]] = {}
    domains: dict[str, dict[str, tuple[int, str]]] = {}
    for row in _rows(path):
        machine = row.text("machine_id")
        if not machine:
            raise row.error("machine_id", "is empty")
        stamp = row.integer("time_stamp")
        row.integer("cpu_num", low=1)  # checked on every row, not only the latest
        row.integer("mem_size", low=1, high=100)
        if not row.text("status"):
            raise row.error("status", "is empty")
        seen = latest.get(machine)
        if seen is None or stamp >= seen[0]:
            latest[machine] = (stamp, row)
        known = domains.setdefault(machine, {})
        for name in ("failure_domain_1", "failure_domain_2"):
            value = row.text(name, default="")
            if value and (name not in known or stamp >= known[name][0]):
                known[name] = (stamp, value)
    machines = []
    for machine, (_, row) in latest.items():
        known = domains[machine]
        machines.append(
            MachineMeta(
                machine_id=machine,
                cores=row.integer("cpu_num", low=1),
                mem_normalized=row.integer("mem_size", low=1, high=100),
                failure_domain_1=known.get("failure_domain_1", (0, ""))[1],
                failure_domain_2=known.get("failure_domain_2", (0, ""))[1],
                status=row.text("status"),
            )
        )
    return machines


def alibaba2018_nodes(path: Path | None = None, mem_gib: int = DEFAULT_MEM_GIB) -> list[Node]:
    """The 4,034 machines as nodes (see the module docstring for the memory scale)."""
    return [m.node(mem_gib) for m in read_machine_meta(path)]
