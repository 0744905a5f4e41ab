"""``--wait``: a Rich progress bar over one deployment until it finishes; does I/O.

The bar goes to stderr, so ``--json`` output on stdout stays clean; it counts running
tasks towards the app's instances (down towards none when removing) and shows what
holds the deployment up: instances the scheduler cannot place and why, or the last
task failure.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.progress import Progress as Bar

from pallet.cli import client_opts
from pallet.cli.common import console
from pallet.cli.render import say
from pallet.client import Client, Progress, describe_waiting, watch_deployment
from pallet.model.errors import PalletError

__all__ = ["err_console", "wait_for_deployment"]

err_console = Console(stderr=True)
POLL_SECONDS = 0.5
_NOTE_WIDTH = 70


def _note(p: Progress) -> str:
    if p.waiting is not None:
        text = describe_waiting(p.waiting)
    elif p.failure is not None:
        text = f"last failure: {p.failure.state} {p.failure.message}".rstrip()
    else:
        return ""
    return escape(text if len(text) <= _NOTE_WIDTH else text[: _NOTE_WIDTH - 1] + "…")


def wait_for_deployment(
    client: Client,
    app_id: str,
    deployment_id: str | None,
    *,
    verb: str,
    since: str | None = None,
    timeout: float = 300.0,
    removing: bool = False,
    running_before: int = 0,
    quiet: bool = False,
) -> Progress:
    """Follow the deployment with a progress bar; print one line when it finished
    (to stderr when ``quiet``, so stdout keeps only ``--json`` output).

    ``running_before`` is how many tasks ran before a removal (the bar counts them down).
    """
    last: Progress | None = None
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("[yellow]{task.fields[note]}"),
    )
    with Bar(*columns, console=err_console) as bar:
        row = bar.add_task(escape(f"{verb} {app_id}"), total=None, note="")
        try:
            for last in watch_deployment(
                client,
                app_id,
                deployment_id,
                removing=removing,
                since=since,
                interval=POLL_SECONDS,
                timeout=timeout,
                clock=client_opts.clock,
                sleep=client_opts.sleep,
            ):
                if removing:
                    total = max(running_before, last.running, 1)
                    done = total - last.running
                else:
                    total, done = max(last.target, 1), min(last.running, last.target)
                bar.update(row, total=total, completed=done, note=_note(last))
        except KeyboardInterrupt:
            what = f"deployment {deployment_id}" if deployment_id else "the deployment"
            raise PalletError(
                f"stopped waiting; {what} of {app_id} goes on (`pallet app show {app_id}`)"
            ) from None
    assert last is not None  # watch_deployment yields at least once or raises
    took = f"{last.elapsed:.1f} s"
    ref = f"deployment {deployment_id}, {took}" if deployment_id else took
    out = err_console if quiet else console
    if removing:
        say(out, f"{app_id} removed ({ref})", "[green]✓[/] ")
    else:
        say(
            out,
            f"{app_id}: {last.running} of {last.target} instances running ({ref})",
            "[green]✓[/] ",
        )
    return last
