"""The CLI's config file: the token (and the cluster's CA) per master, readable by its
owner only; does I/O.

``$PALLET_CONFIG`` or ``$XDG_CONFIG_HOME/pallet/config.json`` (``~/.config/...``):
``{"clusters": {"<master URL>": {"token", "uid", "ca"}}}``, written 0600 in a 0700
directory, atomically. ``$PALLET_TOKEN`` and ``$PALLET_CA`` win over it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pallet.errors import PalletError

__all__ = ["CONFIG_ENV", "Cluster", "config_path", "for_master", "forget", "lookup", "remember"]

CONFIG_ENV = "PALLET_CONFIG"

Cluster = dict[str, Any]


def config_path() -> Path:
    if explicit := os.environ.get(CONFIG_ENV):
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "pallet" / "config.json"


def _read() -> dict[str, Any]:
    path = config_path()
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return {"clusters": {}}
    except (OSError, ValueError) as e:
        raise PalletError(f"cannot read the CLI config {path}: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("clusters"), dict):
        return {"clusters": {}}
    return doc


def _write(doc: dict[str, Any]) -> None:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temp = path.with_name(path.name + ".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, indent=2)
    os.chmod(temp, 0o600)  # a umask never widens it; an old file is replaced, not reused
    temp.replace(path)


def lookup(master: str) -> Cluster:
    """What is kept for ``master`` (an empty dict if nothing)."""
    found = _read()["clusters"].get(master)
    return dict(found) if isinstance(found, dict) else {}


def for_master(master: str) -> tuple[str | None, str | None]:
    """The token and the CA to use with ``master`` (one URL, or several comma-separated:
    what was kept for any of them); ``$PALLET_TOKEN`` and ``$PALLET_CA`` win."""
    from pallet.client.transport import CA_ENV, TOKEN_ENV, master_urls

    kept = next((k for k in map(lookup, master_urls(master)) if k), {})
    return os.environ.get(TOKEN_ENV) or kept.get("token"), os.environ.get(CA_ENV) or kept.get("ca")


def remember(master: str, **fields: Any) -> Path:
    doc = _read()
    doc["clusters"][master] = {**doc["clusters"].get(master, {}), **fields}
    _write(doc)
    return config_path()


def forget(master: str, *names: str) -> None:
    doc = _read()
    entry = doc["clusters"].get(master)
    if isinstance(entry, dict):
        for name in names:
            entry.pop(name, None)
        _write(doc)
