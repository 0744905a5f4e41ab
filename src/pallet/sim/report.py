"""Run the compaction and online protocols for every policy and print their tables;
does I/O (trace files, stdout) and reads the wall clock for the runtime column.

    python -m pallet.sim.report compaction [--workload azure-peak] [--seeds 11]
    python -m pallet.sim.report online [--hosts 720] [--limit 50000] [--per-vm]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from pallet.core.policies import POLICY_NAMES
from pallet.model.errors import PalletError
from pallet.sim.compaction import (
    CompactionResult,
    compaction_bounds,
    compaction_workloads,
    load_workload,
    run_compaction,
)
from pallet.sim.online import ONLINE_HOSTS, OnlineResult, azure_online_trace, run_online
from pallet.sim.traces.azure import CENSOR_S

__all__ = ["compaction_rows", "format_table", "main", "online_rows"]


def format_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table, numbers right-aligned; pure."""
    cells = [[str(h) for h in header]] + [["-" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = []
    for n, row in enumerate(cells):
        parts = [
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(parts))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def compaction_rows(results: Sequence[tuple[CompactionResult, float]]) -> list[list[object]]:
    rows: list[list[object]] = []
    for r, seconds in results:
        tried = max((p.machines for t in r.trials for p in t.probes), default=0)
        machines = r.machines if r.machines is not None else f">{tried}"
        gap = (
            f"{100 * (r.machines / r.lower_bound - 1):.1f}%"
            if r.machines is not None and r.lower_bound
            else None
        )
        rows.append(
            [
                r.policy,
                machines,
                r.volume_bound,
                r.lp_bound,
                r.config_lp_bound,
                gap,
                r.probes,
                f"{seconds:.1f}",
            ]
        )
    return rows


def online_rows(results: Sequence[tuple[OnlineResult, float]]) -> list[list[object]]:
    return [
        [
            r.policy,
            r.peak_in_use,
            f"{r.mean_in_use:.1f}",
            r.rejected,
            f"{r.rejected_pct:.2f}%",
            f"{seconds:.1f}",
        ]
        for r, seconds in results
    ]


def _compaction(args: argparse.Namespace) -> None:
    seeds = list(range(args.seeds))
    for name in args.workload or compaction_workloads():
        workload = load_workload(name)
        bounds = {s: compaction_bounds(workload, s) for s in seeds}
        print(
            f"\n{name}: {workload.note}; {len(workload.requests)} requests, "
            f"{len(workload.machines)} machines listed, seeds {seeds}"
        )
        results = []
        for policy in args.policies:
            started = time.perf_counter()
            result = run_compaction(workload, policy, seeds=seeds, bounds=bounds)
            results.append((result, time.perf_counter() - started))
            print(f"  {policy}: {result.machines}", flush=True)
        header = [
            "policy",
            "machines",
            "volume",
            "LP",
            "config LP",
            "over bound",
            "probes",
            "seconds",
        ]
        print(format_table(header, compaction_rows(results)))


def _online(args: argparse.Namespace) -> None:
    vms = azure_online_trace(limit=args.limit, until_s=args.until)
    print(
        f"\nonline: {len(vms)} Azure VMs on {args.hosts} hosts of 64 vCPU / 128 GiB, "
        f"{'one call per VM' if args.per_vm else 'one call per 5-minute bin'}"
    )
    results = []
    for policy in args.policies:
        started = time.perf_counter()
        result = run_online(vms, policy, args.hosts, batch=not args.per_vm, end_s=CENSOR_S)
        results.append((result, time.perf_counter() - started))
        print(f"  {policy}: rejected {result.rejected}", flush=True)
    header = ["policy", "peak in use", "mean in use", "rejected", "rejected %", "seconds"]
    print(format_table(header, online_rows(results)))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pallet.sim.report")
    sub = parser.add_subparsers(dest="protocol", required=True)
    comp = sub.add_parser("compaction", help="cell compaction on the named workloads")
    comp.add_argument("--workload", action="append", choices=compaction_workloads())
    comp.add_argument("--seeds", type=int, default=1, help="trials (seeds 0..n-1)")
    onl = sub.add_parser("online", help="Azure VM arrivals and departures")
    onl.add_argument("--hosts", type=int, default=ONLINE_HOSTS)
    onl.add_argument("--limit", type=int, default=None, help="only the first N VMs")
    onl.add_argument("--until", type=int, default=None, help="only VMs arriving before S s")
    onl.add_argument("--per-vm", action="store_true", help="one schedule call per VM")
    for p in (comp, onl):
        p.add_argument("--policies", nargs="+", default=list(POLICY_NAMES), choices=POLICY_NAMES)
    args = parser.parse_args(argv)
    try:
        if args.protocol == "compaction":
            _compaction(args)
        else:
            _online(args)
    except PalletError as exc:  # a bad trace row: one clear line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
