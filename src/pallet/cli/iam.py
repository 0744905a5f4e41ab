"""``pallet auth user|serviceaccount|group ...`` and ``pallet auth grant|revoke|acls``:
identities and what they may do; does I/O through ``pallet.client``. ``pallet.cli.auth``
mounts these Typer groups and commands."""

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

__all__ = ["acl", "group", "read_password", "serviceaccount", "user"]

user = typer.Typer(help="Users: people who log in with a password.", no_args_is_help=True)
serviceaccount = typer.Typer(
    help="Service accounts: programs that log in by signing with their key.", no_args_is_help=True
)
group = typer.Typer(
    help="Groups of users: grants to a group apply to its members.", no_args_is_help=True
)
acl = typer.Typer(
    help="Grants: what a user or group may do on which resources.", no_args_is_help=True
)

Uid = Annotated[str, typer.Argument(help="User or service account id.")]
Gid = Annotated[str, typer.Argument(help="Group id.")]
Description = Annotated[str, typer.Option("--description", help="What it is for.")]


def read_password(stdin: bool, prompt: str = "Password") -> str:
    """The password from stdin (``--password-stdin``) or, on a terminal, a hidden prompt."""
    if stdin:
        line = sys.stdin.readline().rstrip("\n")
        if not line:
            raise ValidationError("--password-stdin", "stdin gave no password")
        return line
    if not sys.stdin.isatty():
        raise ValidationError("--password-stdin", "not a terminal: give the password on stdin")
    return str(typer.prompt(prompt, hide_input=True))


def _call(master: str, method: str, path: str, body: object = None, **params: str) -> Any:
    from pallet.client import calls

    with connect(master) as client:
        return client.run(calls.json(method, path, body, params))


def _q(name: str) -> str:
    return quote(name, safe="")


def _list_users(master: str, kind: str, json_out: bool) -> None:
    users = [u for u in _call(master, "GET", "/v1/users")["users"] if u["kind"] == kind]
    if json_out:
        print_json(users)
        return
    print_table(
        console, listing(None, ["ID", "DESCRIPTION"], [[u["uid"], u["description"]] for u in users])
    )


@user.command("add")
def user_add(
    uid: Uid,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read it from stdin.")
    ] = False,
    description: Description = "",
    master: MasterOption = DEFAULT_MASTER,
) -> None:
    """Add a user (the password is asked for, or read from stdin)."""
    password = read_password(password_stdin, f"Password for {uid}")
    _call(master, "PUT", f"/v1/users/{_q(uid)}", {"password": password, "description": description})
    say(console, f"Added user {uid}.")


@user.command("password")
def user_password(
    uid: Uid,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read it from stdin.")
    ] = False,
    master: MasterOption = DEFAULT_MASTER,
) -> None:
    """Set another user's password (needs pallet:iam update; `pallet auth password`
    changes your own)."""
    password = read_password(password_stdin, f"New password for {uid}")
    _call(master, "PATCH", f"/v1/users/{_q(uid)}", {"password": password})
    say(console, f"Set the password of {uid}.")


def change_own_password(
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the current and the new one from stdin."),
    ] = False,
    master: MasterOption = DEFAULT_MASTER,
) -> None:
    """Change your own password (asks for the current one first)."""
    current = read_password(password_stdin, "Current password")
    new = read_password(password_stdin, "New password")
    if not password_stdin:
        again = read_password(False, "New password again")
        if again != new:
            raise ValidationError("password", "the two new passwords differ; nothing changed")
    _call(master, "POST", "/v1/auth/password", {"current": current, "password": new})
    say(console, "Changed your password.")


@user.command("list")
def user_list(json_out: JsonOption = False, master: MasterOption = DEFAULT_MASTER) -> None:
    """List users."""
    _list_users(master, "user", json_out)


@user.command("remove")
def user_remove(uid: Uid, master: MasterOption = DEFAULT_MASTER) -> None:
    """Remove a user; its tokens stop working at once."""
    _call(master, "DELETE", f"/v1/users/{_q(uid)}")
    say(console, f"Removed user {uid}.")


@serviceaccount.command("add")
def sa_add(
    uid: Uid,
    public_key: Annotated[Path, typer.Option("--public-key", help="Its public key (PEM).")],
    description: Description = "",
    master: MasterOption = DEFAULT_MASTER,
) -> None:
    """Add a service account that logs in by signing with the matching private key."""
    try:
        pem = public_key.read_text()
    except OSError as e:
        raise ValidationError("--public-key", f"cannot read {public_key}: {e.strerror}") from None
    _call(master, "PUT", f"/v1/users/{_q(uid)}", {"public_key": pem, "description": description})
    say(console, f"Added service account {uid}.")


@serviceaccount.command("list")
def sa_list(json_out: JsonOption = False, master: MasterOption = DEFAULT_MASTER) -> None:
    """List service accounts."""
    _list_users(master, "service", json_out)


@serviceaccount.command("remove")
def sa_remove(uid: Uid, master: MasterOption = DEFAULT_MASTER) -> None:
    """Remove a service account; its tokens stop working at once."""
    _call(master, "DELETE", f"/v1/users/{_q(uid)}")
    say(console, f"Removed service account {uid}.")


@serviceaccount.command("keypair")
def sa_keypair(
    private_key: Annotated[Path, typer.Argument(help="Where to write the private key (0600).")],
    public_key: Annotated[Path, typer.Argument(help="Where to write the public key.")],
) -> None:
    """Make an Ed25519 key pair for a service account (as `dcos security org service-accounts keypair`)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from pallet.auth.ca import write_private

    key = ed25519.Ed25519PrivateKey.generate()
    write_private(
        private_key,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    public_key.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    say(console, f"Wrote {private_key} (0600) and {public_key}.")


@group.command("add")
def group_add(
    gid: Gid, description: Description = "", master: MasterOption = DEFAULT_MASTER
) -> None:
    """Add a group."""
    _call(master, "PUT", f"/v1/groups/{_q(gid)}", {"description": description})
    say(console, f"Added group {gid}.")


@group.command("list")
def group_list(json_out: JsonOption = False, master: MasterOption = DEFAULT_MASTER) -> None:
    """List groups and their members."""
    groups = _call(master, "GET", "/v1/groups")["groups"]
    if json_out:
        print_json(groups)
        return
    rows = [[g["gid"], ", ".join(g["members"]), g["description"]] for g in groups]
    print_table(console, listing(None, ["ID", "MEMBERS", "DESCRIPTION"], rows))


@group.command("remove")
def group_remove(gid: Gid, master: MasterOption = DEFAULT_MASTER) -> None:
    """Remove a group (its members stay)."""
    _call(master, "DELETE", f"/v1/groups/{_q(gid)}")
    say(console, f"Removed group {gid}.")


@group.command("add-user")
def group_add_user(gid: Gid, uid: Uid, master: MasterOption = DEFAULT_MASTER) -> None:
    """Make a user or service account a member of a group."""
    _call(master, "PUT", f"/v1/groups/{_q(gid)}/users/{_q(uid)}")
    say(console, f"{uid} is in {gid}.")


@group.command("remove-user")
def group_remove_user(gid: Gid, uid: Uid, master: MasterOption = DEFAULT_MASTER) -> None:
    """Take a member out of a group."""
    _call(master, "DELETE", f"/v1/groups/{_q(gid)}/users/{_q(uid)}")
    say(console, f"{uid} is no longer in {gid}.")


Principal = Annotated[str, typer.Argument(help="user:<id>, group:<id>, or an id.")]
Rid = Annotated[str, typer.Argument(help="Resource, e.g. pallet:service:/prod or pallet:node.")]
Action = Annotated[str, typer.Argument(help="create, read, update, delete or full.")]


def _print_acls(rows: list[dict[str, str]], json_out: bool) -> None:
    if json_out:
        print_json(rows)
        return
    print_table(
        console,
        listing(
            None,
            ["PRINCIPAL", "RESOURCE", "ACTION"],
            [[r["principal"], r["rid"], r["action"]] for r in rows],
        ),
    )


@acl.command("grant")
def acl_grant(
    principal: Principal, rid: Rid, action: Action, master: MasterOption = DEFAULT_MASTER
) -> None:
    """Allow PRINCIPAL to ACTION on RID (and everything below it)."""
    body = {"principal": principal, "rid": rid, "action": action}
    _print_acls(_call(master, "POST", "/v1/acls/grant", body)["acls"], False)


@acl.command("revoke")
def acl_revoke(
    principal: Principal, rid: Rid, action: Action, master: MasterOption = DEFAULT_MASTER
) -> None:
    """Take back one grant."""
    body = {"principal": principal, "rid": rid, "action": action}
    _print_acls(_call(master, "POST", "/v1/acls/revoke", body)["acls"], False)


@acl.command("list")
def acl_list(
    principal: Annotated[str | None, typer.Argument(help="Only this user or group.")] = None,
    json_out: JsonOption = False,
    master: MasterOption = DEFAULT_MASTER,
) -> None:
    """List grants."""
    params = {"principal": principal} if principal else {}
    _print_acls(_call(master, "GET", "/v1/acls", **params)["acls"], json_out)
