"""Pricing for the configuration LP (``sim.configlp``): the most valuable multiset of
tasks one machine can hold, as a small integer program solved by HiGHS; pure.

A configuration fits one machine in cpu, memory and disk, holds at most the demand of
each task kind, and satisfies the device inequalities of ``sim.devices`` (a relaxation
of packing GPU shares onto devices: every real single-machine packing satisfies them,
so the configurations priced over contain every real one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import highspy
import numpy as np
import numpy.typing as npt

from pallet.model import GPU_MILLI

__all__ = ["MachineKind", "Priced", "Pricer", "TaskKind", "fits_alone", "quiet_highs"]

# The dual bound is what certificates use, so the gap is tight. The knapsacks are small:
# HiGHS spends most of its time in root heuristics, which these settings turn off (about
# twice as fast); one thread, since the bench already runs a process per core.
_OPTIONS: dict[str, object] = {
    "mip_rel_gap": 1e-7,
    "mip_abs_gap": 1e-9,
    "threads": 1,
    "random_seed": 0,
    "time_limit": 20.0,  # seconds per knapsack; on a timeout the dual bound still holds
    "mip_heuristic_effort": 0.0,
    "mip_heuristic_run_rens": False,
    "mip_heuristic_run_rins": False,
    "mip_heuristic_run_feasibility_jump": False,
    "mip_pscost_minreliable": 0,
}
_TRUSTED = (highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kTimeLimit)


@dataclass(frozen=True, slots=True)
class TaskKind:
    """Identical tasks: millicpus, MiB, MiB disk, milli-GPUs, allowed models (empty: any)."""

    cpu: int
    mem: int
    disk: int
    gpu: int
    models: frozenset[str]

    @property
    def whole_devices(self) -> int:
        return self.gpu // GPU_MILLI if self.gpu >= GPU_MILLI else 0

    @property
    def share(self) -> int:
        """Milli of one device for a share, 0 for whole-GPU and CPU-only tasks."""
        return self.gpu if 0 < self.gpu < GPU_MILLI else 0


@dataclass(frozen=True, slots=True)
class MachineKind:
    """Identical machines: millicpus, MiB, MiB disk, GPU devices and their model."""

    cpu: int
    mem: int
    disk: int
    gpus: int
    model: str


def fits_alone(task: TaskKind, kind: MachineKind) -> bool:
    """Whether one task of ``task`` fits an empty machine of ``kind``."""
    if task.cpu > kind.cpu or task.mem > kind.mem or task.disk > kind.disk:
        return False
    if not task.gpu:
        return True
    needed = task.whole_devices or 1
    return kind.gpus >= needed and (not task.models or kind.model in task.models)


@dataclass(frozen=True, slots=True)
class Priced:
    """A configuration (tasks per task kind), its value and an upper bound on the best
    value any configuration of the machine kind has (HiGHS's dual bound)."""

    counts: npt.NDArray[np.int64]
    value: float
    upper: float


class Pricer:
    """The knapsack of one machine kind, built once; ``best`` solves it for new values."""

    def __init__(
        self,
        kind: MachineKind,
        tasks: Sequence[TaskKind],
        demand: Sequence[int],
        rows: Sequence[tuple[tuple[int, ...], int]],
    ) -> None:
        self.kind = kind
        self.n_tasks = len(tasks)
        self.cols = np.array([i for i, t in enumerate(tasks) if fits_alone(t, kind)], np.int64)
        sizes = np.array([(t.cpu, t.mem, t.disk) for t in tasks], np.int64).reshape(-1, 3)
        caps = (kind.cpu, kind.mem, kind.disk)
        self.upper = np.array([demand[i] for i in self.cols], dtype=np.int64)
        self.matrix = np.zeros((0, len(self.cols)))
        self.caps = np.zeros(0)
        self.solves = 0
        self._highs: Any = None
        self._constrain([(sizes[:, d], caps[d]) for d in range(3)])
        self.add_device_rows(rows)

    def add_device_rows(self, rows: Sequence[tuple[tuple[int, ...], int]]) -> None:
        """Add device rows ``(num, scale)``: ``sum_t num[t] x_t <= scale * gpus``."""
        if self.kind.gpus:
            self._constrain([(np.array(n, np.int64), s * self.kind.gpus) for n, s in rows])

    def satisfies(self, counts: npt.NDArray[np.int64]) -> bool:
        """Whether a configuration (counts per task kind) satisfies every row."""
        return bool((self.matrix @ counts[self.cols] <= self.caps).all())

    def _constrain(self, constraints: Sequence[tuple[npt.NDArray[np.int64], int]]) -> None:
        for coef, cap in constraints:
            c = coef[self.cols]
            if not c.any():
                continue
            self.upper = np.where(
                c > 0, np.minimum(self.upper, cap // np.maximum(c, 1)), self.upper
            )
            self.matrix = np.vstack([self.matrix, c.astype(np.float64)])
            self.caps = np.append(self.caps, float(cap))
            if self._highs is not None:
                nz = np.flatnonzero(c).astype(np.int32)
                self._highs.addRow(-np.inf, float(cap), len(nz), nz, c[nz].astype(np.float64))

    def best(self, values: npt.NDArray[np.float64]) -> Priced:
        """The configuration of largest ``sum values[t] x_t`` (values are clipped at 0)."""
        counts = np.zeros(self.n_tasks, dtype=np.int64)
        v = np.maximum(values[self.cols], 0.0)
        if not v.any():
            return Priced(counts, 0.0, 0.0)
        crude = float(v @ self.upper)  # every task at its cap: valid, if weak
        n = len(self.cols)
        h = self._model()
        everyone = np.arange(n, dtype=np.int32)
        h.changeColsCost(n, everyone, v)
        h.changeColsBounds(n, everyone, np.zeros(n), np.where(v > 0, self.upper, 0.0))
        h.run()
        self.solves += 1
        info = h.getInfo()
        solution = h.getSolution()
        if solution.value_valid:
            x = np.clip(np.round(np.asarray(solution.col_value)), 0, self.upper).astype(np.int64)
            if (self.matrix @ x <= self.caps).all():
                counts[self.cols] = x
        value = float(values @ counts)
        status = h.getModelStatus()
        bound = float(info.mip_dual_bound)
        if status not in _TRUSTED or not np.isfinite(bound):
            bound = crude
        return Priced(counts, value, max(min(bound, crude), value))

    def _model(self) -> Any:
        if self._highs is not None:
            return self._highs
        h = quiet_highs()
        for option, setting in _OPTIONS.items():
            h.setOptionValue(option, setting)
        n = len(self.cols)
        h.addVars(n, np.zeros(n), self.upper.astype(np.float64))
        h.changeColsIntegrality(
            n, np.arange(n, dtype=np.int32), np.full(n, highspy.HighsVarType.kInteger)
        )
        for row, cap in zip(self.matrix, self.caps, strict=True):
            nz = np.flatnonzero(row).astype(np.int32)
            h.addRow(-np.inf, float(cap), len(nz), nz, row[nz])
        h.changeObjectiveSense(highspy.ObjSense.kMaximize)
        self._highs = h
        return h


def quiet_highs() -> Any:
    """A HiGHS instance that prints nothing: the public ``highspy.Highs`` prints a banner
    on stdout when built (it would corrupt ``--json`` output), its base class does not.

    Every instance runs on one thread: HiGHS sizes its process-wide scheduler by the
    first instance that runs, and an instance asking for another count afterwards does
    not solve at all (status ``kNotset``, no solution); one thread each is also what a
    bench that runs a process per core wants."""
    quiet = getattr(getattr(highspy, "_core", None), "_Highs", None)
    h = quiet() if quiet is not None else highspy.Highs()  # type: ignore[no-untyped-call]
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    return h
