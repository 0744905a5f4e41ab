"""The Azure VM 2017 trace (dev split): VM arrivals, sizes and lifetimes; does file I/O.

Source: ``azure_vm_2017/azure_v1_dev_vm_requests_derived.csv.gz``, one row per VM in
arrival order (``time_s`` is the start of the 5-minute bin the VM arrived in), and
``duration_bins_derived.csv``, the lifetime bins. The dev split covers
``[1_800_000, 2_100_000)`` s; lifetimes are right-censored at ``CENSOR_S``.

Lifetime rule (``lifetimes``). The trace keeps only a lifetime *bin*; bin ``b`` holds the
5-minute steps ``min_duration_s .. max_duration_s_lower_edge_of_last_5min_step``, so the
lifetime lies in ``[low, high)`` with ``high`` = that last lower edge + 300 s. We draw it
uniformly over the whole seconds of the bin with a seeded generator (one draw per VM,
in trace order), with two adjustments:

- an uncensored VM (``U``) ended inside the trace, so its draw is capped at
  ``CENSOR_S - time_s`` (the lower edge never exceeds that in the dev split), and it
  lives at least 1 s, so bin 0 (``[0, 300)``) still holds the VM for a moment;
- a censored VM (``C``) was still running when the trace ends: it never departs
  (end ``NEVER``); its bin only says how long it had run by then.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from pallet.model import PlacementRequest, Resources
from pallet.model.errors import TraceError
from pallet.sim.traces.csvrows import read_rows
from pallet.sim.traces.paths import traces_dir

__all__ = [
    "CENSOR_S",
    "NEVER",
    "STEP_S",
    "AzureVM",
    "DurationBin",
    "azure_dir",
    "lifetimes",
    "read_azure_vms",
    "read_duration_bins",
]

CENSOR_S = 2_100_000
"""End of the dev split: lifetimes are right-censored here (``v1.dev.c2100000.txt``)."""

STEP_S = 300
"""The trace's time step: arrivals are binned and lifetimes measured in 5-minute steps."""

NEVER = np.iinfo(np.int64).max
"""End time of a VM still running when the trace ends."""

VMS_FILE = "azure_v1_dev_vm_requests_derived.csv.gz"
BINS_FILE = "duration_bins_derived.csv"


def azure_dir() -> Path:
    return traces_dir() / "azure_vm_2017"


@dataclass(frozen=True, slots=True)
class DurationBin:
    """Lifetimes in ``[low_s, high_s)`` seconds."""

    index: int
    low_s: int
    high_s: int


@dataclass(frozen=True, slots=True)
class AzureVM:
    """One VM request: arrival bin, tenant batch, size (millicpus, MiB) and lifetime bin."""

    index: int
    time_s: int
    tenant_batch: int
    cpu_milli: int
    mem_mib: int
    flavor: str
    duration_bin: int
    censored: bool
    line: int = 0

    def request(self) -> PlacementRequest:
        """A placement request; the tenant batch stands in for the app, so a batch of
        identical VMs is one run for the scheduler."""
        return PlacementRequest(
            id=f"vm-{self.index}",
            app_id=f"batch-{self.tenant_batch}",
            resources=Resources(self.cpu_milli, self.mem_mib),
        )


def read_duration_bins(path: Path | None = None) -> dict[int, DurationBin]:
    """The lifetime bins of ``duration_bins_derived.csv`` by index."""
    path = path or azure_dir() / BINS_FILE
    last = "max_duration_s_lower_edge_of_last_5min_step"
    bins: dict[int, DurationBin] = {}
    for row in read_rows(path, ("duration_bin", "min_duration_s", last)):
        index = row.integer("duration_bin")
        low = row.integer("min_duration_s")
        top = row.integer(last)
        if top < low:
            raise row.error(last, f"{top} is below min_duration_s {low}")
        if index in bins:
            raise row.error("duration_bin", f"bin {index} is listed twice")
        bins[index] = DurationBin(index, low, top + STEP_S)
    return bins


def read_azure_vms(
    path: Path | None = None, bins: dict[int, DurationBin] | None = None
) -> list[AzureVM]:
    """Every VM of the flattened dev split, in arrival order. Rows must be sorted by
    ``time_s``; ``duration_bin`` must name a known bin (``bins`` default: the shared file)."""
    path = path or azure_dir() / VMS_FILE
    bins = bins if bins is not None else read_duration_bins()
    fields = ("time_s", "tenant_batch", "vcpu", "mem_gb", "flavor", "duration_bin", "censored")
    vms: list[AzureVM] = []
    previous = 0
    for row in read_rows(path, fields):
        time_s = row.integer("time_s")
        if time_s < previous:
            raise row.error("time_s", f"{time_s} is earlier than the row before ({previous})")
        previous = time_s
        vcpu = row.number("vcpu")
        mem_gb = row.number("mem_gb")
        if vcpu <= 0:
            raise row.error("vcpu", "a VM needs at least some CPU")
        if mem_gb <= 0:
            raise row.error("mem_gb", "a VM needs at least some memory")
        duration_bin = row.integer("duration_bin")
        if duration_bin not in bins:
            raise row.error("duration_bin", f"{duration_bin} is not a known duration bin")
        flavor = row.text("flavor")
        if not flavor:
            raise row.error("flavor", "is empty")
        vms.append(
            AzureVM(
                index=len(vms),
                time_s=time_s,
                tenant_batch=row.integer("tenant_batch"),
                cpu_milli=round(vcpu * 1000),
                mem_mib=round(mem_gb * 1024),
                flavor=flavor,
                duration_bin=duration_bin,
                censored=bool(row.integer("censored", high=1)),
                line=row.line,
            )
        )
    return vms


def lifetimes(
    vms: list[AzureVM],
    bins: dict[int, DurationBin],
    seed: int = 0,
    censor_s: int = CENSOR_S,
) -> npt.NDArray[np.int64]:
    """End time (s) of each VM under the lifetime rule in the module docstring;
    ``NEVER`` for censored VMs. Pure: the same VMs and seed give the same ends."""
    u = np.random.default_rng(seed).random(len(vms))
    ends = np.empty(len(vms), dtype=np.int64)
    for k, vm in enumerate(vms):
        if vm.censored:
            ends[k] = NEVER
            continue
        b = bins[vm.duration_bin]
        low = max(b.low_s, 1)
        high = min(b.high_s - 1, censor_s - vm.time_s)  # inclusive
        if high < low:
            raise TraceError(
                VMS_FILE,
                vm.line,
                "duration_bin",
                f"VM {vm.index} arrives at {vm.time_s} s and cannot end by {censor_s} s "
                f"within bin {b.index} ([{b.low_s}, {b.high_s}) s)",
            )
        ends[k] = vm.time_s + low + int(u[k] * (high - low + 1))
    return ends
