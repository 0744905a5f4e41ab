"""Entry point of the ``pallet`` command; wires the per-noun sub-commands together."""

from __future__ import annotations

import sys

import typer

from pallet.cli import agent, bench, dns, lb, master, node, sim, task, up
from pallet.cli import app as app_cli
from pallet.model.errors import PalletError

app = typer.Typer(
    name="pallet",
    help="Pallet: a datacenter operating system that packs work onto machines.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


app.add_typer(bench.app, name="bench")
app.add_typer(sim.app, name="sim")
app.add_typer(app_cli.app, name="app")
app.add_typer(task.app, name="task")
app.add_typer(node.app, name="node")
app.add_typer(dns.app, name="dns")
app.add_typer(lb.app, name="lb")
app.command(name="master")(master.master)
app.command(name="agent")(agent.agent)
app.command(name="up")(up.up)


@app.callback()
def _root() -> None:
    """Pallet: a datacenter operating system that packs work onto machines."""


@app.command()
def version() -> None:
    """Print Pallet's version."""
    from pallet import __version__

    typer.echo(__version__)


def main() -> None:
    """Run the CLI; user errors print one clear line and exit 2, never a traceback."""
    try:
        app()
    except PalletError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
