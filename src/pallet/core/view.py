"""The scheduler's picture of the cluster: one numpy row per node, updated in place; pure.

A view is built once from the nodes and then changed incrementally: ``assume`` binds a
placement, ``release`` frees a task, ``set_state`` marks a node. Nothing here is
rebuilt per placement, so placing one task costs at most a few vector operations
over the rows. ``copy`` gives the scheduling worker a snapshot it may change freely.
"""

from __future__ import annotations

import copy as _copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pallet.core.disks import assign_disks
from pallet.model import GPU_MILLI, Node, NodeState, Placement, PortRange, field_value
from pallet.model.errors import PlanError

__all__ = ["ClusterView", "FieldIndex", "gpu_tag"]

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(slots=True)
class FieldIndex:
    """A node field (hostname or attribute) integer-coded: ``codes[row]`` indexes
    ``values``; -1 where the node lacks the field."""

    codes: npt.NDArray[np.int64]
    values: list[str]
    lookup: dict[str, int]
    unique: bool


class ClusterView:
    """Capacity, free resources, GPU devices, ports, attributes and per-app task counts."""

    def __init__(self, nodes: Iterable[Node] = ()) -> None:
        self.nodes: list[Node] = []
        self.row: dict[str, int] = {}
        self.cap = np.zeros((0, 4), dtype=np.int64)
        self.free_cpu = np.zeros(0, dtype=np.int64)
        self.free_mem = np.zeros(0, dtype=np.int64)
        self.free_disk = np.zeros(0, dtype=np.int64)
        self.free_gpu = np.zeros(0, dtype=np.int64)
        self.gpu_idle = np.zeros((0, 1), dtype=np.int64)
        self.gpu_count = np.zeros(0, dtype=np.int64)
        self.gpu_full = np.zeros(0, dtype=np.int64)
        self.gpu_maxidle = np.zeros(0, dtype=np.int64)
        self.gpu_model = np.zeros(0, dtype=np.int64)
        self.gpu_models: list[str] = []
        self.active = np.zeros(0, dtype=bool)
        self.role = np.zeros(0, dtype=np.int64)
        """Each node's role, coded into ``roles`` (``roles[0]`` is ``*``)."""
        self.roles: list[str] = ["*"]
        self.port_free = np.zeros(0, dtype=np.int64)
        self.port_ranges: list[tuple[PortRange, ...]] = []
        self.ports_used: list[set[int]] = []
        self.app_rows: dict[str, dict[int, int]] = {}
        """Tasks per app per node row, sparse: most apps touch a handful of nodes."""
        self.gpu_tag_counts: dict[str, IntArray] = {}
        """Tasks per node by GPU shape tag (``share``, ``<k>-gpu``), for GPU-clustering."""
        self.tasks: dict[str, Placement] = {}
        self.epoch = 0
        """Bumped by every change; ``row_epoch[i]`` is the epoch of row i's last change."""
        self.row_epoch = np.zeros(0, dtype=np.int64)
        self.caches: dict[object, object] = {}
        """Scratch space for the scheduler's per-shape score caches (see schedule.py)."""
        self.rank: IntArray | None = None
        """Optional fixed tie-break order (lower wins); ``schedule`` draws one when None."""
        self._fields: dict[str, FieldIndex] = {}
        self.disk_used: list[dict[str, int]] = []
        """MiB held on each node's operator disks, by root (``Node.disks``)."""
        self.disk_held: dict[str, tuple[str, ...]] = {}
        """The disk roots each placement with ``volume_disks`` holds, by request id."""
        self._own_rows: set[int] = set()
        self._own_apps: set[str] = set()
        """Rows whose ``ports_used`` set and ``disk_used`` dict, and apps whose
        ``app_rows`` dict, this view may change in place: a copy shares the others with
        the view it was made from, and either copies one before its first change."""
        self.add_nodes(nodes)

    # ----------------------------------------------------------------- building

    def __len__(self) -> int:
        return len(self.nodes)

    def add_nodes(self, nodes: Iterable[Node]) -> None:
        """Append nodes (rare: a node registering); grows every array once."""
        new = list(nodes)
        if not new:
            return
        for node in new:
            if node.id in self.row:
                raise PlanError("-", node.id, "node id registered twice")
            self.row[node.id] = len(self.nodes)
            self.nodes.append(node)
        caps = np.array([n.capacity.as_tuple() for n in new], dtype=np.int64).reshape(-1, 4)
        self.cap = np.vstack([self.cap, caps])
        self.cap.setflags(write=False)  # replaced, never changed: copies share it
        self.free_cpu = np.concatenate([self.free_cpu, caps[:, 0]])
        self.free_mem = np.concatenate([self.free_mem, caps[:, 1]])
        self.free_disk = np.concatenate([self.free_disk, caps[:, 2]])
        self.free_gpu = np.concatenate([self.free_gpu, caps[:, 3]])
        counts = np.array([n.gpu_count for n in new], dtype=np.int64)
        width = max(self.gpu_idle.shape[1], int(counts.max(initial=0)), 1)
        old = np.zeros((len(self.nodes) - len(new), width), dtype=np.int64)
        old[:, : self.gpu_idle.shape[1]] = self.gpu_idle
        fresh = np.zeros((len(new), width), dtype=np.int64)
        for i, c in enumerate(counts):
            fresh[i, :c] = GPU_MILLI
        self.gpu_idle = np.vstack([old, fresh])
        self.gpu_count = np.concatenate([self.gpu_count, counts])
        self.gpu_full = np.concatenate([self.gpu_full, counts])
        self.gpu_maxidle = np.concatenate([self.gpu_maxidle, np.where(counts > 0, GPU_MILLI, 0)])
        codes = []
        for n in new:
            if not n.gpu_model or n.gpu_count == 0:
                codes.append(-1)
                continue
            if n.gpu_model not in self.gpu_models:
                self.gpu_models.append(n.gpu_model)
            codes.append(self.gpu_models.index(n.gpu_model))
        self.gpu_model = np.concatenate([self.gpu_model, np.array(codes, dtype=np.int64)])
        self.active = np.concatenate(
            [self.active, np.array([n.state is NodeState.ACTIVE for n in new], dtype=bool)]
        )
        for n in new:
            if n.role not in self.roles:
                self.roles.append(n.role)
        self.role = np.concatenate(
            [self.role, np.array([self.roles.index(n.role) for n in new], dtype=np.int64)]
        )
        self.port_ranges.extend(n.ports for n in new)
        self.ports_used.extend(set() for _ in new)
        self.disk_used.extend({} for _ in new)
        self._own_rows.update(range(len(self.nodes) - len(new), len(self.nodes)))
        self.port_free = np.concatenate(
            [self.port_free, np.array([sum(len(r) for r in n.ports) for n in new], dtype=np.int64)]
        )
        for key, arr in self.gpu_tag_counts.items():
            self.gpu_tag_counts[key] = np.concatenate([arr, np.zeros(len(new), dtype=np.int64)])
        self.row_epoch = np.concatenate([self.row_epoch, np.zeros(len(new), dtype=np.int64)])
        self.epoch += 1
        self.caches.clear()
        self._fields.clear()

    def copy(self) -> ClusterView:
        """A snapshot that may be changed without touching this view. Per-node ports and
        disks and per-app counts are shared until either view changes them (copy on
        write), so a copy costs the arrays and three lists, not a set and two dicts per
        node and app (a plan's check copies the view; at 5,000 nodes and 40,000 tasks the
        copies were a quarter of the master's time). ``cap`` is shared as it is: it is
        replaced when nodes are added, never changed (read-only), so the policies' caches
        keyed by it hold across the scheduler's snapshots."""
        other = _copy.copy(self)
        for name in (
            "free_cpu",
            "free_mem",
            "free_disk",
            "free_gpu",
            "gpu_idle",
            "gpu_count",
            "gpu_full",
            "gpu_maxidle",
            "gpu_model",
            "active",
            "role",
            "port_free",
        ):
            setattr(other, name, getattr(self, name).copy())
        other.nodes = list(self.nodes)
        other.row = dict(self.row)
        other.gpu_models = list(self.gpu_models)
        other.roles = list(self.roles)
        other.port_ranges = list(self.port_ranges)
        other.ports_used = list(self.ports_used)
        other.disk_used = list(self.disk_used)
        other.disk_held = dict(self.disk_held)
        other.app_rows = dict(self.app_rows)
        self._own_rows = set()
        self._own_apps = set()
        other._own_rows = set()
        other._own_apps = set()
        other.gpu_tag_counts = {k: v.copy() for k, v in self.gpu_tag_counts.items()}
        other.tasks = dict(self.tasks)
        other._fields = dict(self._fields)
        other.caches = {}
        return other

    # ----------------------------------------------------------------- fields

    def field(self, name: str) -> FieldIndex:
        """The integer-coded index of a node field, built once per field name."""
        index = self._fields.get(name)
        if index is None:
            lookup: dict[str, int] = {}
            codes = np.full(len(self.nodes), -1, dtype=np.int64)
            for i, node in enumerate(self.nodes):
                value = field_value(node, name)
                if value is not None:
                    codes[i] = lookup.setdefault(value, len(lookup))
            values = list(lookup)
            present = codes[codes >= 0]
            unique = len(np.unique(present)) == len(present)
            index = FieldIndex(codes, values, lookup, unique)
            self._fields[name] = index
        return index

    def app_count(self, app_id: str, rows: IntArray | slice | None = None) -> IntArray:
        """Tasks of ``app_id`` on each of ``rows`` (default: every node)."""
        placed = self.app_rows.get(app_id)
        if rows is not None and not isinstance(rows, slice) and len(rows) <= 64:
            if not placed:
                return np.zeros(len(rows), dtype=np.int64)
            return np.array([placed.get(int(r), 0) for r in rows], dtype=np.int64)
        counts = np.zeros(len(self.nodes), dtype=np.int64)
        if placed:
            counts[np.fromiter(placed.keys(), dtype=np.int64, count=len(placed))] = list(
                placed.values()
            )
        return counts if rows is None else counts[rows]

    # ----------------------------------------------------------------- changes

    def assume(self, p: Placement) -> int:
        """Bind a placement (already checked to fit); returns the node's row."""
        if p.request_id in self.tasks:
            raise PlanError(p.request_id, p.node_id, "task is already placed")
        i = self.row[p.node_id]
        self._touch(i)
        r = p.resources
        self.free_cpu[i] -= r.cpu_milli
        self.free_mem[i] -= r.mem_mib
        self.free_disk[i] -= r.disk_mib
        for dev, milli in p.gpus:
            self.gpu_idle[i, dev] -= milli
        if p.gpus:
            self._refresh_gpu_row(i)
        if p.ports:
            self._own_row(i)
            self.ports_used[i].update(p.ports)
            self.port_free[i] -= sum(1 for port in p.ports if _in_ranges(port, self.port_ranges[i]))
        if p.request.volume_disks:
            self._hold_disks(p, i)
        placed = self._own_app(p.app_id)
        placed[i] = placed.get(i, 0) + 1
        tag = gpu_tag(p.resources.gpu_milli)
        if tag:
            self._count(self.gpu_tag_counts, tag, i, 1)
        self.tasks[p.request_id] = p
        return i

    def release(self, task_id: str) -> Placement:
        """Free what a task holds; returns its placement."""
        p = self.tasks.pop(task_id)
        i = self.row[p.node_id]
        self._touch(i)
        r = p.resources
        self.free_cpu[i] += r.cpu_milli
        self.free_mem[i] += r.mem_mib
        self.free_disk[i] += r.disk_mib
        for dev, milli in p.gpus:
            self.gpu_idle[i, dev] += milli
        if p.gpus:
            self._refresh_gpu_row(i)
        if p.ports:
            self._own_row(i)
            self.ports_used[i].difference_update(p.ports)
            self.port_free[i] += sum(1 for port in p.ports if _in_ranges(port, self.port_ranges[i]))
        roots = self.disk_held.pop(task_id, ())
        if roots:
            self._own_row(i)
        for root, need in zip(roots, p.request.volume_disks, strict=True):
            self.disk_used[i][root] -= need.size
        placed = self._own_app(p.app_id)
        if placed[i] == 1:
            del placed[i]
            if not placed:
                del self.app_rows[p.app_id]
        else:
            placed[i] -= 1
        tag = gpu_tag(p.resources.gpu_milli)
        if tag:
            self._count(self.gpu_tag_counts, tag, i, -1)
        return p

    def _hold_disks(self, p: Placement, row: int) -> None:
        needs = p.request.volume_disks
        roots = assign_disks(self.nodes[row].disks, self.disk_used[row], needs)
        if roots is None:
            raise PlanError(p.request_id, p.node_id, "no operator disk has room for its volumes")
        self._own_row(row)
        for root, need in zip(roots, needs, strict=True):
            self.disk_used[row][root] = self.disk_used[row].get(root, 0) + need.size
        self.disk_held[p.request_id] = roots

    def _own_row(self, row: int) -> None:
        """Row ``row``'s ports set and disks dict, this view's own to change."""
        if row not in self._own_rows:
            self.ports_used[row] = set(self.ports_used[row])
            self.disk_used[row] = dict(self.disk_used[row])
            self._own_rows.add(row)

    def _own_app(self, app_id: str) -> dict[int, int]:
        """``app_id``'s tasks per row, this view's own to change (created if missing)."""
        placed = self.app_rows.get(app_id)
        if placed is None:
            placed = self.app_rows[app_id] = {}
        elif app_id not in self._own_apps:
            placed = self.app_rows[app_id] = dict(placed)
        self._own_apps.add(app_id)
        return placed

    def _count(self, counters: dict[str, IntArray], key: str, row: int, delta: int) -> None:
        counts = counters.get(key)
        if counts is None:
            counts = counters[key] = np.zeros(len(self.nodes), dtype=np.int64)
        counts[row] += delta
        if delta < 0 and not counts.any():
            del counters[key]

    def set_state(self, node_id: str, state: NodeState) -> None:
        i = self.row[node_id]
        node = self.nodes[i]
        if node.state is not state:
            self.nodes[i] = _replace_state(node, state)
        self.active[i] = state is NodeState.ACTIVE
        self._touch(i)

    def _touch(self, row: int) -> None:
        self.epoch += 1
        self.row_epoch[row] = self.epoch

    def _refresh_gpu_row(self, i: int) -> None:
        idle = self.gpu_idle[i]
        self.free_gpu[i] = int(idle.sum())
        self.gpu_full[i] = int((idle == GPU_MILLI).sum())
        self.gpu_maxidle[i] = int(idle.max(initial=0))

    # ----------------------------------------------------------------- reading

    def node_tasks(self, node_id: str) -> list[Placement]:
        return [p for p in self.tasks.values() if p.node_id == node_id]

    def allocated_gpu_milli(self) -> int:
        return int(self.cap[:, 3].sum() - self.free_gpu.sum())

    def rows_of(self, node_ids: Sequence[str]) -> IntArray:
        return np.array([self.row[n] for n in node_ids], dtype=np.int64)


def gpu_tag(gpu_milli: int) -> str:
    """The GPU-clustering affinity tag of a request: ``share``, ``<k>-gpu`` or ``""``."""
    if gpu_milli <= 0:
        return ""
    if gpu_milli < GPU_MILLI:
        return "share"
    return f"{gpu_milli // GPU_MILLI}-gpu"


def _in_ranges(port: int, ranges: tuple[PortRange, ...]) -> bool:
    return any(port in r for r in ranges)


def _replace_state(node: Node, state: NodeState) -> Node:
    from dataclasses import replace

    return replace(node, state=state)
