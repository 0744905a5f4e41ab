"""Running one command group as ``python -m pallet.cli.<noun>`` (as ``pallet up`` starts its
daemons): the same one-line errors and exit status 2 as ``pallet`` itself."""

from __future__ import annotations

import sys

import typer

from pallet.model.errors import PalletError

__all__ = ["run_standalone"]


def run_standalone(app: typer.Typer) -> None:
    try:
        app()
    except PalletError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)
