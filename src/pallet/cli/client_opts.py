"""Options every cluster command shares (``--master``, ``--json``, ``--wait``) and the
client they open; also the seam tests use to swap the network for a fake master."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from pallet.client import DEFAULT_MASTER, MASTER_ENV, Client, Conflict
from pallet.errors import PalletError

if TYPE_CHECKING:
    import httpx

__all__ = [
    "DEFAULT_MASTER",
    "AppIdArg",
    "ForceOption",
    "JsonOption",
    "MasterOption",
    "TimeoutOption",
    "WaitOption",
    "app_id",
    "clock",
    "connect",
    "locked_hint",
    "sleep",
    "transport",
]

MasterOption = Annotated[
    str,
    typer.Option(
        "--master",
        envvar=MASTER_ENV,
        help="URL of the master (or host:port).",
        show_envvar=True,
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the master's JSON instead of a table.")
]
WaitOption = Annotated[
    bool, typer.Option("--wait", help="Show progress until the deployment finishes.")
]
TimeoutOption = Annotated[
    float, typer.Option("--timeout", min=0.0, help="Seconds --wait waits before giving up.")
]
ForceOption = Annotated[
    bool, typer.Option("--force", help="Override a deployment that holds the app.")
]
AppIdArg = Annotated[str, typer.Argument(help="App id, such as /prod/web (the / is optional).")]

# Seams for tests: a fake master instead of the network, a fake clock instead of time.
transport: httpx.BaseTransport | None = None
"""When set, every client the CLI opens talks to it instead of the network."""
clock: Callable[[], float] = time.monotonic
sleep: Callable[[float], None] = time.sleep


def connect(master: str) -> Client:
    """A client of the master at ``master`` (already resolved from ``--master``/env), with
    the token and CA ``pallet auth login`` kept for it (``$PALLET_TOKEN``, ``$PALLET_CA``
    win)."""
    from pallet.cli.credentials import for_master

    token, ca = for_master(master)
    return Client(master, transport=transport, token=token, ca=ca)


def app_id(text: str) -> str:
    """``web`` or ``/prod/web/`` -> ``/web``, ``/prod/web``: ids as the master writes them."""
    parts = [p for p in text.strip().split("/") if p]
    if not parts:
        raise PalletError(f"app id {text!r} names no app; give one such as /prod/web")
    return "/" + "/".join(parts)


@contextmanager
def locked_hint(app: str) -> Iterator[None]:
    """Turn 409 "App is locked by one or more deployments" into what to do about it."""
    try:
        yield
    except Conflict as exc:
        if not exc.deployment_ids:
            raise
        ids = ", ".join(exc.deployment_ids)
        raise PalletError(
            f"app {app} is being changed by deployment {ids}; wait for it "
            f"(`pallet app show {app}`) or add --force to override it"
        ) from None
