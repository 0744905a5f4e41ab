"""``pallet store copy|compact``: move a cluster's state between stores (SQLite to etcd, a
logical backup and its restore) and drop old history."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import typer

__all__ = ["app"]

app = typer.Typer(
    help="The master's state store: copy it (migrate, back up, restore), compact its history.",
    no_args_is_help=True,
)


def _checked(url: str, option: str) -> str:
    from pallet.model.errors import ValidationError
    from pallet.store.factory import check_store_url

    try:
        check_store_url(url)
    except ValueError as e:  # InvalidArgument names "url"; the user typed an argument
        raise ValidationError(option, str(e).removeprefix("url: ")) from None
    return url


def _missing_file(url: str) -> str | None:
    """The file a sqlite URL names when it does not exist."""
    from pathlib import Path
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    if parts.scheme != "sqlite":
        return None
    path = Path(unquote(parts.path))
    return None if path.exists() else str(path)


def _emit(doc: dict[str, Any], text: str, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        typer.echo(text)


@app.command()
def copy(
    source: str = typer.Argument(
        ..., help="The store to read, e.g. sqlite:///var/lib/pallet/state.db"
    ),
    destination: str = typer.Argument(
        ..., help="An empty store to fill, e.g. etcd://h1:2379,h2:2379"
    ),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Copy every key of SOURCE into the empty DESTINATION (stop the master first: a SQLite
    file is locked while it runs). Revisions are renumbered; keys held by a lease are left out."""
    from pallet.model.errors import ValidationError
    from pallet.store import open_store
    from pallet.store.copy import copy_store

    _checked(source, "SOURCE")
    _checked(destination, "DESTINATION")
    if source == destination:
        raise ValidationError("DESTINATION", "is the source itself")
    if (missing := _missing_file(source)) is not None:  # opening it would create it empty
        raise ValidationError("SOURCE", f"no such file: {missing}")

    async def run() -> dict[str, Any]:
        src = await open_store(source, expiry_interval=None)
        try:
            dst = await open_store(destination, expiry_interval=None)
            try:
                report = await copy_store(src, dst)
                return {
                    "keys": report.keys,
                    "bytes": report.bytes,
                    "leased_keys_left_out": report.leased,
                    "source_revision": report.source_revision,
                    "transactions": report.transactions,
                    "destination_revision": await dst.revision(),
                }
            finally:
                await dst.close()
        finally:
            await src.close()

    doc = asyncio.run(run())
    leased = doc["leased_keys_left_out"]
    _emit(
        doc,
        f"copied {doc['keys']} keys ({doc['bytes']} bytes) from revision "
        f"{doc['source_revision']} in {doc['transactions']} transactions"
        + (f"; left out {leased} keys held by a lease" if leased else ""),
        json_out,
    )


@app.command()
def compact(
    url: str = typer.Argument(..., help="The store, e.g. etcd://h1:2379 or sqlite:///path.db"),
    keep: int = typer.Option(1000, help="Revisions of history to keep (watches need them)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Drop the history older than the last KEEP revisions. Masters compact as they write
    (``?history=N``); this is for a store that grew while nothing did. etcd frees the
    space for new writes at once; to give it back to the disk, defragment each member
    (``etcdctl defrag``)."""
    from pallet.model.errors import ValidationError
    from pallet.store import open_store
    from pallet.store.copy import compact_history

    _checked(url, "URL")
    if (missing := _missing_file(url)) is not None:
        raise ValidationError("URL", f"no such file: {missing}")
    if keep < 1:
        raise ValidationError("--keep", "keep at least 1 revision")

    async def run() -> dict[str, Any]:
        store = await open_store(url, expiry_interval=None)
        try:
            report = await compact_history(store, keep)
            return {"revision": report.revision, "oldest_kept": report.oldest}
        finally:
            await store.close()

    doc = asyncio.run(run())
    _emit(
        doc,
        f"history before revision {doc['oldest_kept']} dropped (the store is at {doc['revision']})",
        json_out,
    )
