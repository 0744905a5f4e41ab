"""``pallet sim ...``: the simulator's experiments with tables and PNG plots."""

from __future__ import annotations

from pathlib import Path

import typer

from pallet.cli.bench import compaction as bench_compaction
from pallet.cli.bench import packing as bench_packing
from pallet.cli.common import console, parse_names, print_json, table
from pallet.cli.extras import command_settings
from pallet.core.policies import POLICY_NAMES

app = typer.Typer(
    help="Simulations on real traces: packing, compaction, online.", no_args_is_help=True
)

# The packing and compaction experiments are the benchmarks' own runs; here they are
# the same commands under the simulator's name (both take --plot DIR).
app.command(name="packing")(bench_packing)
app.command(name="compaction", **command_settings(bench_compaction))(bench_compaction)


@app.command()
def online(
    hosts: int = typer.Option(720, min=1, help="Identical hosts of 64 vCPU / 128 GiB."),
    limit: int | None = typer.Option(None, min=1, help="Only the first N VMs."),
    per_vm: bool = typer.Option(
        False, "--per-vm", help="One schedule call per VM (not per 5-minute bin)."
    ),
    policies: str = typer.Option(",".join(POLICY_NAMES), help="Policies to compare."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    plot: Path | None = typer.Option(None, help="Write PNG plots into this directory."),
) -> None:
    """Azure VM 2017 arrivals and lifetimes on identical hosts: peak and mean machines
    in use and rejected VMs, per policy."""
    from pallet.sim.online import azure_online_trace, run_online
    from pallet.sim.traces.azure import CENSOR_S

    names = parse_names(policies, "--policies", POLICY_NAMES)
    vms = azure_online_trace(limit=limit)
    results = [run_online(vms, p, hosts, batch=not per_vm, end_s=CENSOR_S) for p in names]
    docs = [
        {
            "policy": r.policy,
            "hosts": r.hosts,
            "vms": r.vms,
            "rejected": r.rejected,
            "peak_in_use": r.peak_in_use,
            "mean_in_use": round(r.mean_in_use, 1),
        }
        for r in results
    ]
    if plot is not None:
        from pallet.sim.plots import plot_bars

        plot_bars(
            f"Azure online, {hosts} hosts: rejected VMs",
            names,
            [float(r.rejected) for r in results],
            "rejected VMs",
            plot / "online-rejected.png",
        )
        plot_bars(
            f"Azure online, {hosts} hosts: mean machines in use",
            names,
            [round(r.mean_in_use, 1) for r in results],
            "machines in use (time mean)",
            plot / "online-in-use.png",
        )
    if json_out:
        print_json({"hosts": hosts, "vms": len(vms), "results": docs})
        return
    console.print(
        table(
            f"Azure VM 2017 online — {len(vms)} VMs on {hosts} hosts",
            ["policy", "rejected", "peak in use", "mean in use"],
            [[d["policy"], d["rejected"], d["peak_in_use"], d["mean_in_use"]] for d in docs],
        )
    )
