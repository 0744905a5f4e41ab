"""``pallet app apply|edit|versions``: make apps what a file (or an editor) says, and list
what they were; does I/O through ``pallet.client`` (the decisions are ``appchange``'s)."""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from pallet.cli.appchange import (
    Action,
    AppFileShapeError,
    Change,
    Sent,
    app_definitions,
    definition_of,
    differences,
    plan_changes,
    send_change,
)
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

__all__ = ["apply", "edit", "versions"]

_WAIT_TIMEOUT = 300.0


def _rejected(exc: ApiError) -> str:
    if isinstance(exc, InvalidRequest) and exc.details:
        fields = "".join(f"\n  {d.describe()}" for d in exc.details)
        return f"the master rejected it ({exc.server_message}); fix these fields:{fields}"
    return f"the master rejected it: {exc.server_message}"


@contextlib.contextmanager
def _file_errors(name: str, what: str) -> Iterator[None]:
    """A 4xx for one app of a file names the file, the app and the fields at fault."""
    try:
        yield
    except ApiError as exc:
        if exc.status is None or exc.status >= 500 or exc.status == 409:
            raise
        raise AppFileError(name, f"{what}: {_rejected(exc)}") from None


def _describe(sent: Sent) -> str:
    change = sent.change
    via = f" (deployment {sent.deployment_id})" if sent.deployment_id else ""
    if change.action is Action.CREATE:
        return f"Created {change.app_id}{via}"
    if change.action is Action.UNCHANGED:
        return f"Unchanged {change.app_id}"
    fields = "; ".join(d.describe() for d in change.differences)
    return f"Updated {change.app_id}: {fields}{via}"


def _wait(client: Client, sent: Sent, timeout: float, quiet: bool) -> None:
    from pallet.cli.waiting import wait_for_deployment  # a progress bar: on demand

    if sent.deployment_id is None:
        return
    verb = "deploying" if sent.change.action is Action.CREATE else "updating"
    wait_for_deployment(
        client,
        sent.change.app_id,
        sent.deployment_id,
        verb=verb,
        since=sent.version,
        timeout=timeout,
        quiet=quiet,
    )


def _apply_changes(
    client: Client,
    name: str,
    changes: list[Change],
    *,
    force: bool,
    wait: bool,
    timeout: float,
    json_out: bool,
) -> list[Sent]:
    done = []
    for change in changes:
        with _file_errors(name, f"app {change.app_id}"), locked_hint(change.app_id):
            sent = send_change(client, change, force=force)
        done.append(sent)
        if not json_out:
            say(console, _describe(sent))
        if wait:
            _wait(client, sent, timeout, json_out)
    return done


def _sent_json(sent: Sent) -> dict[str, Any]:
    doc = sent.change.to_json()
    doc["deploymentId"] = sent.deployment_id
    doc["version"] = sent.version
    return doc


def apply(
    file: Annotated[
        str,
        typer.Argument(help="An app, or a Marathon group of apps, as JSON or YAML; - reads stdin."),
    ],
    wait: WaitOption = False,
    timeout: TimeoutOption = _WAIT_TIMEOUT,
    force: ForceOption = False,
    json_out: JsonOption = False,
    master: MasterOption = DEFAULT_MASTER,
) -> None:
    """Create or update apps to match a file; applying it again changes nothing."""
    name = "<stdin>" if file == "-" else file
    try:
        definitions = app_definitions(load_app_file(file))
    except AppFileShapeError as exc:
        raise AppFileError(name, str(exc)) from None
    with connect(master) as client:
        changes = plan_changes(client, definitions)
        done = _apply_changes(
            client, name, changes, force=force, wait=wait, timeout=timeout, json_out=json_out
        )
    if json_out:
        print_json([_sent_json(s) for s in done])


def _editor() -> list[str]:
    """$VISUAL, else $EDITOR, else vi (as git and kubectl choose)."""
    text = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    return shlex.split(text)


_EDIT_HEADER = """\
# Edit the app {app_id} and save to apply; save it unchanged (or empty) to cancel.
# Fields you remove keep their value (Marathon's PUT): set them to what you want instead.
"""


def edit(
    app_arg: AppIdArg,
    wait: WaitOption = False,
    timeout: TimeoutOption = _WAIT_TIMEOUT,
    force: ForceOption = False,
    json_out: JsonOption = False,
    master: MasterOption = DEFAULT_MASTER,
) -> None:
    """Edit an app's definition in $EDITOR (YAML), then apply what changed."""
    import yaml

    aid = app_id(app_arg)
    with connect(master) as client:
        current = client.get_app(aid, ())
        before = definition_of(current)
        text = _EDIT_HEADER.format(app_id=aid) + yaml.safe_dump(
            before, sort_keys=False, allow_unicode=True, width=100
        )
        fd, path = tempfile.mkstemp(prefix="pallet-edit-", suffix=".yaml")
        kept = False
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            try:
                code = subprocess.call([*_editor(), path])
            except FileNotFoundError:
                raise PalletError(
                    f"cannot run the editor {_editor()[0]!r}; set $EDITOR (e.g. EDITOR=nano)"
                ) from None
            if code != 0:
                raise PalletError(f"the editor exited with {code}; nothing was changed")
            edited = Path(path).read_text(encoding="utf-8")
            if edited == text or not edited.strip():
                say(console, f"Edit cancelled; {aid} is unchanged.")
                return
            try:
                doc = load_app_file(path)
            except AppFileError:
                kept = True
                raise
            if app_id(str(doc.get("id", aid))) != aid:
                kept = True
                raise AppFileError(path, f"the id changed to {doc['id']}; edit {aid} only")
            doc["id"] = aid
            wanted = {k: v for k, v in doc.items() if k != "id"}
            found = tuple(differences(wanted, current.raw))
            change = Change(aid, Action.UPDATE if found else Action.UNCHANGED, doc, found, current)
            try:
                done = _apply_changes(
                    client,
                    path,
                    [change],
                    force=force,
                    wait=wait,
                    timeout=timeout,
                    json_out=json_out,
                )
            except PalletError:
                kept = True
                raise
        finally:
            if kept:
                typer.secho(
                    f"your edit is kept in {path}; fix it and run `pallet app apply {path}`",
                    err=True,
                )
            else:
                with contextlib.suppress(OSError):
                    os.unlink(path)
    if json_out:
        print_json([_sent_json(s) for s in done])


def versions(
    app_arg: AppIdArg, json_out: JsonOption = False, master: MasterOption = DEFAULT_MASTER
) -> None:
    """List an app's versions, newest first; the current one is marked."""
    aid = app_id(app_arg)
    with connect(master) as client:
        current = client.get_app(aid, ())
        found = client.app_versions(aid)
    if json_out:
        print_json({"id": aid, "current": current.version, "versions": found})
        return
    info = current.raw.get("versionInfo") or {}
    config = info.get("lastConfigChangeAt")
    rows = []
    for v in found:
        notes = []
        if v == current.version:
            notes.append("current")
        if v == config:
            notes.append("last config change")
        rows.append([v, ", ".join(notes)])
    print_table(console, listing(f"Versions of {aid}", ["VERSION", "NOTE"], rows))
