"""``pallet secret create|list|show|update|remove``: the cluster's secrets (DC/OS's
``dcos security secrets``); does I/O through ``pallet.client``.

A value comes from ``--value``, ``--file`` or stdin (one of them). A path is checked here
with the master's rule (one line naming ``PATH``, exit 2), and sent with every ``.``
escaped, so that nothing on the way folds a ``..`` away: the master checks it again.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer

from pallet.cli.client_opts import DEFAULT_MASTER, JsonOption, MasterOption, connect
from pallet.cli.common import console, print_json
from pallet.cli.render import listing, print_table, say
from pallet.errors import ValidationError

__all__ = ["app"]

app = typer.Typer(
    help="Secrets: values apps and jobs get as variables or files, sealed at rest.",
    no_args_is_help=True,
)

SecretPath = Annotated[str, typer.Argument(help="The secret's path, e.g. db/password.")]
Value = Annotated[
    str | None, typer.Option("--value", help="The value (visible in ps; prefer --file or stdin).")
]
File = Annotated[Path | None, typer.Option("--file", help="Read the value from this file.")]
_MAX = 256 * 1024


def _url(path: str) -> str:
    from pallet.model.secrets import check_secret_path  # the master's own rule, checked first

    segments = check_secret_path(path, "PATH").split("/")
    return "/v1/secrets/" + "/".join(quote(s, safe="").replace(".", "%2E") for s in segments)


def _call(master: str, method: str, path: str, body: object = None, **params: str) -> Any:
    from pallet.client import calls

    with connect(master) as client:
        return client.run(calls.json(method, path, body, params))


def _value(value: str | None, file: Path | None) -> str:
    """The value from exactly one of ``--value``, ``--file`` and stdin."""
    if value is not None and file is not None:
        raise ValidationError("--file", "give --value or --file, not both")
    if value is not None:
        return value
    try:
        if file is not None:
            data = file.read_bytes()[: _MAX + 1]
        elif sys.stdin.isatty():
            raise ValidationError("--value", "give --value, --file, or the value on stdin")
        else:
            data = sys.stdin.buffer.read(_MAX + 1)
    except OSError as e:
        raise ValidationError("--file", f"cannot read {file}: {e.strerror}") from None
    if len(data) > _MAX:
        raise ValidationError("--file" if file else "stdin", f"a secret holds at most {_MAX} bytes")
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise ValidationError(
            "--file" if file else "stdin", "the value must be UTF-8 text"
        ) from None


@app.command("create")
def create(
    path: SecretPath,
    value: Value = None,
    file: File = None,
    description: Annotated[str, typer.Option("--description", help="What it is for.")] = "",
    json_out: JsonOption = False,
    master: MasterOption = DEFAULT_MASTER,
) -> None:
    """Create a secret (refused if the path holds one already)."""
    url = _url(path)
    _call(master, "PUT", url, {"value": _value(value, file), "description": description})
    if json_out:
        print_json({"path": path.strip("/"), "created": True})
    else:
        say(console, f"Created secret {path.strip('/')}.")


@app.command("update")
def update(
    path: SecretPath,
    value: Value = None,
    file: File = None,
    json_out: JsonOption = False,
    master: MasterOption = DEFAULT_MASTER,
) -> None:
    """Replace a secret's value (tasks launched from now on get the new one)."""
    url = _url(path)
    _call(master, "PATCH", url, {"value": _value(value, file)})
    if json_out:
        print_json({"path": path.strip("/"), "updated": True})
    else:
        say(console, f"Updated secret {path.strip('/')}.")


@app.command("show")
def show(
    path: SecretPath, json_out: JsonOption = False, master: MasterOption = DEFAULT_MASTER
) -> None:
    """Print a secret's value (needs read on it)."""
    doc = _call(master, "GET", _url(path))
    if json_out:
        print_json({"path": path.strip("/"), **doc})
    else:
        sys.stdout.write(str(doc["value"]))
        if not str(doc["value"]).endswith("\n") and sys.stdout.isatty():
            sys.stdout.write("\n")


@app.command("list")
def list_secrets(
    path: Annotated[str, typer.Argument(help="Only the secrets below this path.")] = "",
    json_out: JsonOption = False,
    master: MasterOption = DEFAULT_MASTER,
) -> None:
    """List the paths of the secrets you may read (never their values)."""
    url = _url(path) if path.strip("/") else "/v1/secrets"
    names = _call(master, "GET", url, list="true")["array"]
    if json_out:
        print_json(names)
        return
    print_table(console, listing(None, ["PATH"], [[n] for n in names]))


@app.command("remove")
def remove(path: SecretPath, master: MasterOption = DEFAULT_MASTER) -> None:
    """Remove a secret (tasks running with it keep what they got)."""
    _call(master, "DELETE", _url(path))
    say(console, f"Removed secret {path.strip('/')}.")
