"""``pallet --help`` as Typer prints it on a terminal 80 columns wide or wider: generated
data for ``pallet.cli.fast``. ``render`` (runs Typer in a subprocess) and ``python -m
pallet.cli.fast_help`` (rewrites this file from it) do I/O; a test fails when the text
kept here is not what Typer prints."""

WIDTH = 80
"""From this many columns on, the text is the same."""

ROOT_HELP = (
    "Usage: pallet [OPTIONS] COMMAND [ARGS]...\n"
    "\n"
    "  Pallet: a datacenter operating system that packs work onto machines.\n"
    "\n"
    "Options:\n"
    "  --help  Show this message and exit.\n"
    "\n"
    "Commands:\n"
    "  up          Run a whole cluster here: a master on 127.0.0.1 and agents...\n"
    "  app         Apps: long-running services kept at N instances (Marathon's...\n"
    "  job         Jobs: batch and cron work, one run at a time or many...\n"
    "  pod         Pods: containers placed together on one node as one...\n"
    "  task        Tasks: the running instances of apps.\n"
    "  deployment  Deployments: the steps that move apps to a new version.\n"
    "  node        Nodes: the machines that run tasks.\n"
    "  master      Run the master: the Marathon-compatible API and the...\n"
    "  agent       Run an agent: fingerprint this machine, register, run the...\n"
    "  bench       Benchmarks: packing, compaction, throughput, e2e, api, cli,...\n"
    "  sim         Simulations on real traces: packing, compaction, online.\n"
    "  store       The master's state store: copy it (migrate, back up,...\n"
    "  auth        Log in and out; users, service accounts, groups and what...\n"
    "  secret      Secrets: values apps and jobs get as variables or files,...\n"
    "  dns         Service discovery by DNS: <app>.marathon.mesos and friends.\n"
    "  lb          Load balancing: the edge LB and the VIP proxies.\n"
    "  image       Images: load an image archive into the cluster's registry,...\n"
    "  version     Print Pallet's version.\n"
)


def render() -> str:
    """What Typer prints for ``pallet --help`` 80 columns wide (from 80 on, Click wraps
    help at 78 whatever the terminal's width), in a fresh interpreter."""
    import os
    import subprocess
    import sys

    typer_only = "from pallet.cli.main import build; build(['--help'])(prog_name='pallet')"
    done = subprocess.run(
        [sys.executable, "-c", typer_only, "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": str(WIDTH)},
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"pallet --help exited with {done.returncode}: {done.stderr}")
    return done.stdout


def _write() -> None:
    from pathlib import Path

    path = Path(__file__)
    text = path.read_text()
    head, _, rest = text.partition("\nROOT_HELP = ")
    _, _, tail = rest.partition("\n\n\ndef render")
    lines = "".join(f"    {line!r}\n" for line in render().splitlines(keepends=True))
    path.write_text(f"{head}\nROOT_HELP = (\n{lines})\n\n\ndef render{tail}")


if __name__ == "__main__":
    _write()
