"""``pallet app update|diff|plan|rollback``: change existing apps from a file, see what a
file would change (locally, or as the master would place it), and go back to an earlier
version; does I/O through ``pallet.client`` (the decisions are ``appchange``'s, shared
with ``apply`` and ``edit``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import typer

from pallet.cli.app_apply import _apply_changes, _sent_json
from pallet.cli.appchange import Action, AppFileShapeError, Change, app_definitions, plan_changes
from pallet.cli.appfile import AppFileError, load_app_file
from pallet.cli.client_opts import (
    DEFAULT_MASTER,
    AppIdArg,
    ForceOption,
    JsonOption,
    MasterOption,
    TimeoutOption,
    WaitOption,
    app_id,
    connect,
    locked_hint,
)
from pallet.cli.common import console, print_json
from pallet.cli.render import listing, print_table, say
from pallet.client import ApiError, Client, InvalidRequest
from pallet.errors import PalletError

__all__ = ["diff", "plan", "rollback", "show_plan", "update"]

_WAIT_TIMEOUT = 300.0
FileArg = Annotated[
    str, typer.Argument(help="An app, or a Marathon group of apps, as JSON or YAML; - reads stdin.")
]


def _changes(client: Client, file: str) -> tuple[str, list[Change]]:
    name = "<stdin>" if file == "-" else file
    try:
        definitions = app_definitions(load_app_file(file))
    except AppFileShapeError as exc:
        raise AppFileError(name, str(exc)) from None
    return name, plan_changes(client, definitions)


def update(
    file: FileArg,
    wait: WaitOption = False,
    timeout: TimeoutOption = _WAIT_TIMEOUT,
    force: ForceOption = False,
    json_out: JsonOption = False,
    master: MasterOption = DEFAULT_MASTER,
) -> None:
    """Change existing apps to match a file (every app in it must exist; `apply` creates)."""
    with connect(master) as client:
        name, changes = _changes(client, file)
        missing = [c.app_id for c in changes if c.action is Action.CREATE]
        if missing:
            raise AppFileError(
                name,
                f"{', '.join(missing)} does not exist; create it with `pallet app add` or "
                "`pallet app apply`",
            )
        done = _apply_changes(
            client, name, changes, force=force, wait=wait, timeout=timeout, json_out=json_out
        )
    if json_out:
        print_json([_sent_json(s) for s in done])


def diff(
    file: FileArg, json_out: JsonOption = False, master: MasterOption = DEFAULT_MASTER
) -> None:
    """Show what applying a file would change, field by field (nothing is sent)."""
    with connect(master) as client:
        _, changes = _changes(client, file)
    if json_out:
        print_json([c.to_json() for c in changes])
        return
    for change in changes:
        if change.action is Action.CREATE:
            say(console, f"{change.app_id}: would be created")
        elif change.action is Action.UNCHANGED:
            say(console, f"{change.app_id}: unchanged")
        else:
            say(console, f"{change.app_id}:")
            for d in change.differences:
                console.print(f"  {d.describe()}", markup=False, highlight=False)


def _plan_rows(doc: Mapping[str, Any]) -> list[list[str]]:
    rows = [
        ["start", t["taskId"], t["host"], ",".join(map(str, t["ports"]))] for t in doc["launches"]
    ]
    rows += [["stop", t["taskId"], t["host"], ""] for t in doc["kills"]]
    return rows


def plan(
    file: FileArg,
    force: ForceOption = False,
    json_out: JsonOption = False,
    master: MasterOption = DEFAULT_MASTER,
) -> None:
    """Ask the master what a file would do (a dry run, like `nomad job plan`): the field
    changes, the deployment steps, the node each new task would land on, the tasks that
    would stop, and why instances that fit nowhere would wait. Nothing changes."""
    plans = []
    with connect(master) as client:
        name, changes = _changes(client, file)
        for change in changes:
            body = dict(change.definition)
            try:
                with locked_hint(change.app_id):
                    doc = client.plan_app(body, change.action is Action.CREATE, force)
            except InvalidRequest as exc:
                fields = "".join(f"\n  {d.describe()}" for d in exc.details)
                raise AppFileError(
                    name, f"app {change.app_id}: fix these fields:{fields}"
                ) from None
            except ApiError as exc:
                if exc.status is not None and exc.status < 500 and exc.status != 409:
                    raise AppFileError(name, f"app {change.app_id}: {exc.server_message}") from None
                raise
            plans.append((change, doc))
    if json_out:
        print_json([{"id": c.app_id, "action": c.action.value, **doc} for c, doc in plans])
        return
    for change, doc in plans:
        show_plan(f"{change.app_id}: {change.action.value}", doc)


def show_plan(title: str, doc: Mapping[str, Any]) -> None:
    """A dry run's answer as the user reads it: steps, field changes, tasks, waits."""
    steps = " -> ".join("+".join(a["action"] for a in s["actions"]) for s in doc["steps"])
    say(console, f"{title}; steps: {steps or 'none'}")
    for d in doc["diff"]:
        before = d.get("from", "(unset)")
        console.print(f"  {d['path']}: {before} -> {d.get('to', '(unset)')}", markup=False)
    rows = _plan_rows(doc)
    if rows:
        print_table(console, listing("Tasks", ["", "TASK", "HOST", "PORTS"], rows))
    waiting = doc.get("unplaced")
    if waiting:
        why = "; ".join(f"{r['nodes']} nodes: {r['reason']}" for r in waiting["reasons"])
        say(
            console,
            f"  {waiting['instances']} instance(s) would wait: no node fits ({why or 'no nodes'})",
        )


def _previous_config(client: Client, aid: str) -> str:
    """The newest version older than the app's last config change."""
    current = client.get_app(aid, ())
    info = current.raw.get("versionInfo") or {}
    config = str(info.get("lastConfigChangeAt") or current.version)
    older = [v for v in client.app_versions(aid) if v < config]
    if not older:
        raise PalletError(f"{aid} has no version before its current config ({config})")
    return max(older)


def rollback(
    app_arg: AppIdArg,
    to: Annotated[
        str | None,
        typer.Option(
            help="The version to go back to (`pallet app versions`); default: the "
            "one before the last config change."
        ),
    ] = None,
    wait: WaitOption = False,
    timeout: TimeoutOption = _WAIT_TIMEOUT,
    force: ForceOption = False,
    json_out: JsonOption = False,
    master: MasterOption = DEFAULT_MASTER,
) -> None:
    """Go back to an earlier version of an app, by a rolling deployment that keeps the
    app's minimum healthy (tasks of that version still running are kept)."""
    from pallet.cli.waiting import wait_for_deployment

    aid = app_id(app_arg)
    with connect(master) as client:
        version = to or _previous_config(client, aid)
        with locked_hint(aid):
            ref = client.rollback_app(aid, version, force=force)
        if not json_out:
            say(console, f"Rolling {aid} back to {version} (deployment {ref.deployment_id})")
        if wait:
            wait_for_deployment(
                client,
                aid,
                ref.deployment_id,
                verb="rolling back",
                since=ref.version,
                timeout=timeout,
                quiet=json_out,
            )
    if json_out:
        print_json({"id": aid, "version": version, "deploymentId": ref.deployment_id})
