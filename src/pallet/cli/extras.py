"""The optional ``sim`` extra: which libraries it brings, and the one-line error when a
command needs one that is not installed; pure.

The cluster (master, agents, CLI, web UI) installs without the simulator's solvers and
plots (``pip install pallet``); the simulator and the packing benchmarks need
``pip install 'pallet[sim]'`` (``scripts/install --sim``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pallet.errors import PalletError

__all__ = [
    "SIM_LIBRARIES",
    "SimNotInstalled",
    "command_settings",
    "missing_sim_library",
    "sim_stand_in",
]

SIM_LIBRARIES = frozenset({"scipy", "highspy", "matplotlib"})
"""Top-level modules that only the ``sim`` extra installs."""

INSTALL_HINT = "install it with: pip install 'pallet[sim]' (or scripts/install --sim)"


class SimNotInstalled(PalletError):
    """A command needs the ``sim`` extra, which is not installed."""

    def __init__(self, library: str, command: str | None = None) -> None:
        what = f"pallet {command}" if command else "this command"
        super().__init__(
            f"{what} needs {library}, part of the simulator's extra, which is not "
            f"installed; {INSTALL_HINT}"
        )
        self.library = library


def missing_sim_library(exc: BaseException) -> str | None:
    """The ``sim`` library whose absence raised ``exc``, or None for any other error."""
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        root = exc.name.split(".")[0]
        if root in SIM_LIBRARIES:
            return root
    return None


def sim_stand_in(exc: ModuleNotFoundError, command: str) -> Callable[[], None]:
    """A command to list in place of one whose module needs a missing ``sim`` library:
    running it, with any arguments, says what to install. Re-raises ``exc`` for any
    other missing module. Register it with ``command_settings``."""
    library = missing_sim_library(exc)
    if library is None:
        raise exc

    def needs_sim() -> None:
        raise SimNotInstalled(library, command)

    needs_sim.__doc__ = f"Needs the sim extra: {INSTALL_HINT}."
    needs_sim.stands_in = True  # type: ignore[attr-defined]
    return needs_sim


def command_settings(command: Callable[..., None]) -> dict[str, Any]:
    """Keyword arguments of ``typer.Typer.command`` for ``command``: a stand-in takes
    whatever arguments the real command would, so that it can say what is missing."""
    if getattr(command, "stands_in", False):
        return {
            "context_settings": {"ignore_unknown_options": True, "allow_extra_args": True},
            "add_help_option": False,
        }
    return {}
