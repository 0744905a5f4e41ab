"""``pallet deployment ...``: list, watch, roll back and promote deployments; does I/O
through ``pallet.client``."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from pallet.cli.client_opts import (
    DEFAULT_MASTER,
    ForceOption,
    JsonOption,
    MasterOption,
    TimeoutOption,
    connect,
)
from pallet.cli.common import console, print_json
from pallet.cli.render import listing, print_table, say
from pallet.client import Deployment, NotFound
from pallet.model.errors import PalletError

__all__ = ["app"]

app = typer.Typer(
    help="Deployments: the steps that move apps to a new version.", no_args_is_help=True
)

IdArg = Annotated[str, typer.Argument(help="A deployment id (`pallet deployment list`).")]


def _state(d: Deployment) -> str:
    canary = d.raw.get("canary")
    if isinstance(canary, dict):
        if canary.get("paused"):
            return f"paused at {canary.get('instances')} canaries: promote to go on"
        if not canary.get("promoted"):
            return f"starting {canary.get('instances')} canaries"
    return ", ".join(f"{action} {app_id}" for action, app_id in d.current_actions)


def _row(d: Deployment) -> list[str]:
    return [d.id, ", ".join(d.affected_apps), f"{d.current_step}/{d.total_steps}", _state(d)]


@app.command("list")
def list_deployments(json_out: JsonOption = False, master: MasterOption = DEFAULT_MASTER) -> None:
    """The deployments in flight."""
    with connect(master) as client:
        found = client.list_deployments()
    if json_out:
        print_json([d.raw for d in found])
        return
    rows = [_row(d) for d in found]
    print_table(console, listing("Deployments", ["ID", "APPS", "STEP", "DOING"], rows))


def _find(found: list[Deployment], deployment_id: str) -> Deployment | None:
    return next((d for d in found if d.id == deployment_id), None)


@app.command("watch")
def watch(
    deployment_id: IdArg,
    timeout: TimeoutOption = 600.0,
    json_out: JsonOption = False,
    master: MasterOption = DEFAULT_MASTER,
) -> None:
    """Follow a deployment, one line per change, until it is over."""
    last = ""
    deadline = time.monotonic() + timeout
    with connect(master) as client:
        while True:
            d = _find(client.list_deployments(), deployment_id)
            if d is None:
                if not last:
                    raise PalletError(f"deployment {deployment_id} is not in flight")
                say(console, f"{deployment_id}: over")
                return
            line = f"step {d.current_step}/{d.total_steps}: {_state(d)}"
            for r in d.raw.get("currentActions", []):
                results = r.get("readinessCheckResults") or []
                if results:
                    ready = sum(1 for x in results if x.get("ready"))
                    line += f"; {ready}/{len(results)} ready"
            if line != last:
                if json_out:
                    print_json(d.raw)
                else:
                    say(console, f"{deployment_id}: {line}")
                last = line
            if time.monotonic() > deadline:
                raise PalletError(
                    f"deployment {deployment_id} still in flight after {timeout:.0f} s"
                )
            time.sleep(0.5)


@app.command("rollback")
def rollback(
    deployment_id: IdArg,
    force: ForceOption = False,
    json_out: JsonOption = False,
    master: MasterOption = DEFAULT_MASTER,
) -> None:
    """Stop a deployment and return its apps to where they were (with --force: only stop
    following it, leaving the apps as they are now)."""
    with connect(master) as client:
        try:
            ref = client.cancel_deployment(deployment_id, force=force)
        except NotFound:
            raise PalletError(f"deployment {deployment_id} is not in flight") from None
    if json_out:
        print_json(None if ref is None else ref.raw)
    elif ref is None:
        say(console, f"Stopped following {deployment_id}; the apps stay as they are")
    else:
        say(console, f"Rolling back {deployment_id} (deployment {ref.deployment_id})")


@app.command("promote")
def promote(
    deployment_id: IdArg, json_out: JsonOption = False, master: MasterOption = DEFAULT_MASTER
) -> None:
    """Let a deployment paused at its canaries replace every task."""
    with connect(master) as client:
        try:
            d = client.promote_deployment(deployment_id)
        except NotFound:
            raise PalletError(f"deployment {deployment_id} is not in flight") from None
    if json_out:
        print_json(d.raw)
    else:
        say(console, f"Promoted {deployment_id}: {', '.join(d.affected_apps)} goes on")
