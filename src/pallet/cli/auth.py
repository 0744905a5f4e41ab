"""``pallet auth login|logout|token|whoami|rotate``: getting a token and keeping it in the
CLI's config (0600); ``pallet auth user|serviceaccount|group ...`` and ``pallet auth
grant|revoke|acls`` (``pallet.cli.iam``); does I/O through ``pallet.client``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from pallet.cli import iam
from pallet.cli.client_opts import DEFAULT_MASTER, JsonOption, MasterOption, connect
from pallet.cli.common import console, print_json
from pallet.cli.render import say
from pallet.errors import PalletError, ValidationError

__all__ = ["app"]

app = typer.Typer(
    help="Log in and out; users, service accounts, groups and what they may do (grants).",
    no_args_is_help=True,
)

CaOption = Annotated[
    Path | None,
    typer.Option("--ca", help="The cluster's CA certificate (pallet up --secure prints it)."),
]


@app.command()
def login(
    username: Annotated[str, typer.Option("--username", "-u", help="User id.")] = "admin",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    service_account: Annotated[
        str | None,
        typer.Option(
            "--service-account", help="Log in as this service account (with --private-key)."
        ),
    ] = None,
    private_key: Annotated[
        Path | None, typer.Option("--private-key", help="The service account's private key (PEM).")
    ] = None,
    ca: CaOption = None,
    master: MasterOption = DEFAULT_MASTER,
) -> None:
    """Log in and keep the token (0600) for this master; later commands send it."""
    from pallet.cli.credentials import remember
    from pallet.client import calls, master_url

    url = master_url(master)
    ca_path = str(ca.resolve()) if ca is not None else None
    if ca_path is not None and not Path(ca_path).is_file():
        raise ValidationError("--ca", f"{ca} is not a file")
    if service_account is not None:
        if private_key is None:
            raise ValidationError("--private-key", "a service account logs in with its private key")
        from pallet.client.login import sign_login

        try:
            login_token = sign_login(service_account, private_key.read_bytes(), time.time())
        except (OSError, ValueError, TypeError) as e:
            raise ValidationError("--private-key", f"cannot sign with {private_key}: {e}") from None
        uid, body = service_account, {"uid": service_account, "token": login_token}
    else:
        uid = username
        body = {"uid": username, "password": iam.read_password(password_stdin)}
    if ca_path is not None:
        remember(url, ca=ca_path)
    with connect(url) as client:
        client_token = client.run(calls.json("POST", "/v1/auth/login", body))
    path = remember(url, token=client_token["token"], uid=uid)
    say(
        console,
        f"Logged in to {url} as {uid} until {client_token['expires_at']} (token in {path}).",
    )


@app.command()
def logout(master: MasterOption = DEFAULT_MASTER) -> None:
    """Revoke the token on the master and forget it here."""
    from pallet.cli.credentials import forget, lookup
    from pallet.client import ApiError, calls, master_url

    url = master_url(master)
    if not lookup(url).get("token"):
        say(console, f"Not logged in to {url}.")
        return
    try:
        with connect(url) as client:
            client.run(calls.json("POST", "/v1/auth/logout"))
    except ApiError as e:
        if e.status != 401:  # an expired or revoked token: nothing left to revoke
            raise
    forget(url, "token", "uid")
    say(console, f"Logged out of {url}.")


@app.command()
def whoami(json_out: JsonOption = False, master: MasterOption = DEFAULT_MASTER) -> None:
    """Who the kept token stands for, until when, and what it may do."""
    from pallet.client import calls

    with connect(master) as client:
        doc = client.run(calls.json("GET", "/v1/auth/whoami"))
    if json_out:
        print_json(doc)
        return
    say(console, f"{doc['uid']} ({doc['kind']}), token valid until {doc['expires_at']}")
    for grant in doc["grants"]:
        say(console, f"  {grant}")


@app.command()
def rotate(
    revoke_all: Annotated[
        bool, typer.Option("--revoke-all", help="Also revoke every token issued so far.")
    ] = False,
    master: MasterOption = DEFAULT_MASTER,
) -> None:
    """Sign new tokens with a new key (with --revoke-all, old tokens stop working at once)."""
    from pallet.client import calls

    with connect(master) as client:
        doc = client.run(calls.json("POST", "/v1/auth/rotate", {"keep": 0 if revoke_all else 1}))
    say(console, f"Signing key {doc['kids'][0]}; keys accepted: {', '.join(doc['kids'])}.")
    if revoke_all:
        raise PalletError("every token was revoked, this one too: log in again (pallet auth login)")


@app.command()
def token(master: MasterOption = DEFAULT_MASTER) -> None:
    """Print the kept token (for scripts: export PALLET_TOKEN=$(pallet auth token))."""
    from pallet.cli.credentials import lookup
    from pallet.client import master_url

    url = master_url(master)
    kept = lookup(url).get("token")
    if not kept:
        raise PalletError(f"not logged in to {url}: pallet auth login --master {url}")
    print(kept)


app.add_typer(iam.user, name="user")
app.add_typer(iam.serviceaccount, name="serviceaccount")
app.add_typer(iam.group, name="group")
app.command("grant")(iam.acl_grant)
app.command("revoke")(iam.acl_revoke)
app.command("acls")(iam.acl_list)
app.command("password")(iam.change_own_password)
