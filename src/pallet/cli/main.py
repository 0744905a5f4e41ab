"""Entry point of the ``pallet`` command; wires the per-noun sub-commands together, lazily.

The commonest commands (``version``, ``--help``, ``app list``) are answered by
``pallet.cli.fast`` without Typer, Click or Rich; everything else goes to Typer. Only the
noun being run is imported: ``pallet app list`` never loads the simulator, the scheduler
or the server (numpy, scipy, uvicorn ...), so the CLI answers in tens of milliseconds
(``pallet bench cli`` measures it). Every other noun is listed by its one-line help from
``NOUNS``; a test checks those lines against the real modules. Adding a noun is one line
here (then ``python -m pallet.cli.fast_help`` writes ``pallet --help`` again).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple

from pallet.cli import fast

if TYPE_CHECKING:
    import typer

__all__ = ["NOUNS", "Noun", "build", "main", "run_one"]

_HELP = "Pallet: a datacenter operating system that packs work onto machines."


class Noun(NamedTuple):
    """A sub-command: a Typer group (``attr`` is None: the module's ``app``) or one
    command (the function ``attr``), with the help line shown in ``pallet --help``.
    (A named tuple: creating a dataclass costs ``pallet version`` more than it does.)"""

    module: str
    help: str
    attr: str | None = None


NOUNS: dict[str, Noun] = {
    "up": Noun(
        "pallet.cli.up",
        "Run a whole cluster here: a master on 127.0.0.1 and agents on 127.0.0.2, .3, ...",
        "up",
    ),
    "app": Noun(
        "pallet.cli.app", "Apps: long-running services kept at N instances (Marathon's app format)."
    ),
    "job": Noun(
        "pallet.cli.job",
        "Jobs: batch and cron work, one run at a time or many (Metronome's job format).",
    ),
    "pod": Noun(
        "pallet.cli.pod",
        "Pods: containers placed together on one node as one instance (Marathon's pods).",
    ),
    "task": Noun("pallet.cli.task", "Tasks: the running instances of apps."),
    "deployment": Noun(
        "pallet.cli.deployment", "Deployments: the steps that move apps to a new version."
    ),
    "node": Noun("pallet.cli.node", "Nodes: the machines that run tasks."),
    "master": Noun(
        "pallet.cli.master",
        "Run the master: the Marathon-compatible API and the scheduler, until Ctrl-C.",
        "master",
    ),
    "agent": Noun(
        "pallet.cli.agent",
        "Run an agent: fingerprint this machine, register, run the tasks the master assigns.",
        "agent",
    ),
    "bench": Noun(
        "pallet.cli.bench",
        "Benchmarks: packing, compaction, throughput, e2e, api, cli, discovery, deploy, "
        "faults, containers, invariants, jobs, scale, security (see bench/README.md).",
    ),
    "sim": Noun("pallet.cli.sim", "Simulations on real traces: packing, compaction, online."),
    "store": Noun(
        "pallet.cli.store",
        "The master's state store: copy it (migrate, back up, restore), compact its history.",
    ),
    "auth": Noun(
        "pallet.cli.auth",
        "Log in and out; users, service accounts, groups and what they may do (grants).",
    ),
    "secret": Noun(
        "pallet.cli.secret",
        "Secrets: values apps and jobs get as variables or files, sealed at rest.",
    ),
    "dns": Noun("pallet.cli.dns", "Service discovery by DNS: <app>.marathon.mesos and friends."),
    "lb": Noun("pallet.cli.lb", "Load balancing: the edge LB and the VIP proxies."),
    "image": Noun(
        "pallet.cli.image", "Images: load an image archive into the cluster's registry, or run one."
    ),
}


def _version() -> None:
    """Print Pallet's version."""
    import typer

    from pallet import __version__

    typer.echo(__version__)


def _stand_in(name: str) -> Callable[[], None]:
    """What ``pallet --help`` lists for a noun not loaded; never run (the noun asked for
    is always the real one)."""

    def run() -> None:
        raise AssertionError(f"pallet {name} was not loaded")

    return run


def build(argv: Sequence[str]) -> typer.Typer:
    """The command tree for ``pallet <argv>``: the noun ``argv`` names is imported and
    attached; the others are one-line stand-ins that only show in ``pallet --help``."""
    import typer

    wanted = argv[0] if argv else None
    app = typer.Typer(
        name="pallet",
        help=_HELP,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )
    for name, noun in NOUNS.items():
        if name == wanted:
            module = importlib.import_module(noun.module)
            if noun.attr is None:
                app.add_typer(module.app, name=name)
            else:
                app.command(name=name)(getattr(module, noun.attr))
        else:
            app.command(
                name=name,
                help=noun.help,
                add_help_option=False,
                context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
            )(_stand_in(name))
    app.command(name="version")(_version)

    @app.callback()
    def _root() -> None:
        """Pallet: a datacenter operating system that packs work onto machines."""

    return app


def main() -> None:
    """Run the CLI; user errors print one clear line and exit 2, never a traceback."""
    argv = sys.argv[1:]
    _run(lambda: fast.answer(argv) or build(argv)(prog_name="pallet"))


def run_one(command: Callable[..., None]) -> None:
    """``python -m pallet.cli.<noun>`` (how ``pallet up`` starts its daemons): one
    command, its errors printed as ``pallet`` prints them."""
    import typer

    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(command)
    _run(app)


def _run(call: Callable[[], object]) -> None:
    # httpx imports its own command line (click, rich's syntax highlighting, pygments) when
    # it can; Pallet never runs it, and without it every cluster command starts ~40 %
    # faster. A None entry makes that one import fail, which httpx expects and handles.
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    try:
        call()
    except Exception as exc:
        # Imported here: `pallet version` and `pallet --help` need no model at all.
        from pallet.cli.extras import SimNotInstalled, missing_sim_library
        from pallet.errors import PalletError

        error: BaseException = exc
        if (library := missing_sim_library(exc)) is not None:
            error = SimNotInstalled(library, " ".join(a for a in sys.argv[1:3]))
        if not isinstance(error, PalletError):
            raise
        _say_error(str(error))
        sys.exit(2)


def _say_error(text: str) -> None:
    """``error: <text>`` on stderr, red on a terminal (as ``typer.secho`` printed
    it, without importing Typer for it: the fast path's errors stay fast). Escape sequences
    and other control characters in the text (it may quote a master's message) are
    dropped, on a terminal too."""
    import re

    line = "error: " + re.sub(r"\x1b\[[;?0-9]*[a-zA-Z]|[\x00-\x08\x0b-\x1f\x7f]", "", text)
    try:
        terminal = sys.stderr.isatty()
    except (AttributeError, ValueError):
        terminal = False
    sys.stderr.write(f"\x1b[31m{line}\x1b[0m\n" if terminal else line + "\n")
    sys.stderr.flush()


if __name__ == "__main__":
    main()
