"""The optional ``sim`` extra: which libraries it brings, and the one-line error when a
command needs one that is not installed; pure.

The cluster (master, agents, CLI, web UI) installs without the simulator's solvers and
plots (``pip install pallet``); the simulator and the packing benchmarks need
``pip install 'pallet[sim]'`` (``scripts/install --sim``).
"""

from __future__ import annotations

from collections.abc import Callable

from pallet.model.errors import PalletError

__all__ = ["SIM_LIBRARIES", "SimNotInstalled", "missing_sim_library", "sim_stand_in"]

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
    running it says what to install. Re-raises ``exc`` for any other missing module."""
    library = missing_sim_library(exc)
    if library is None:
        raise exc

    def needs_sim() -> None:
        raise SimNotInstalled(library, command)

    needs_sim.__doc__ = f"(needs the sim extra: {INSTALL_HINT})"
    return needs_sim
