"""The cluster's secrets, sealed with ``SecretBox`` in the master's store; I/O through the
``Store``.

    /pallet/secrets/<path>   {"sealed": "v1.<key id>....", "author", "created", "updated",
                              "description"}

Every master of an HA cluster reads the same keys, so they share the secrets as long as
they share the key file (``pallet up`` gives them one). A value is sealed with the path
as associated data, so a sealed value copied to another path does not open; nothing in
the store is ever the value in clear. ``reseal`` seals every value again with the newest
key after a rotation (the masters call it when they start).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pallet.auth.secretbox import SealError, SecretBox
from pallet.model.secrets import check_secret_path
from pallet.store import Store

__all__ = ["SECRETS_PREFIX", "SecretInfo", "SecretStore"]

SECRETS_PREFIX = "/pallet/secrets/"


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """What may be shown about a secret without its value."""

    path: str
    author: str
    created: float
    updated: float
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "author": self.author,
            "created": self.created,
            "updated": self.updated,
            "description": self.description,
        }


def _key(path: str) -> str:
    return SECRETS_PREFIX + path


class SecretStore:
    """Create, read, update, delete and list secrets (paths already checked by the caller
    with ``check_secret_path``; they are checked again here, so nothing else is stored)."""

    def __init__(
        self, store: Store, box: SecretBox, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.box = box
        self.clock = clock

    def _record(
        self, path: str, value: str, author: str, created: float, description: str
    ) -> bytes:
        doc = {
            "sealed": self.box.seal(value.encode(), path),
            "author": author,
            "created": created,
            "updated": self.clock(),
            "description": description,
        }
        return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()

    async def create(self, path: str, value: str, author: str, description: str = "") -> bool:
        """Store a new secret; False (and nothing changes) if ``path`` holds one already."""
        path = check_secret_path(path)
        raw = self._record(path, value, author, self.clock(), description)
        return await self.store.create(_key(path), raw) is not None

    async def update(self, path: str, value: str, author: str) -> bool:
        """Replace the value of an existing secret; False if there is none at ``path``."""
        path = check_secret_path(path)
        for _ in range(8):  # compare-and-set: another master may write meanwhile
            kv = await self.store.get(_key(path))
            if kv is None:
                return False
            doc = json.loads(kv.value)
            raw = self._record(path, value, author, doc["created"], doc.get("description", ""))
            if await self.store.update(_key(path), raw, mod_revision=kv.mod_revision) is not None:
                return True
        raise RuntimeError(f"secret {path} changes too often to update")

    async def value(self, path: str) -> str | None:
        """The value in clear, or None if there is no such secret. ``SealError`` if it does
        not open (its key is no longer in the key file)."""
        path = check_secret_path(path)
        kv = await self.store.get(_key(path))
        if kv is None:
            return None
        return self.box.open(json.loads(kv.value)["sealed"], path).decode()

    async def info(self, path: str) -> SecretInfo | None:
        path = check_secret_path(path)
        kv = await self.store.get(_key(path))
        if kv is None:
            return None
        doc = json.loads(kv.value)
        return SecretInfo(
            path, doc["author"], doc["created"], doc["updated"], doc.get("description", "")
        )

    async def exists(self, path: str) -> bool:
        return await self.store.get(_key(check_secret_path(path))) is not None

    async def delete(self, path: str) -> bool:
        return await self.store.delete(_key(check_secret_path(path)))

    async def paths(self, below: str = "") -> list[str]:
        """The paths of every secret at or below ``below`` ("": all), sorted."""
        prefix = SECRETS_PREFIX
        if below.strip("/"):
            prefix += check_secret_path(below)
        kvs, _ = await self.store.list(prefix)
        out = []
        for kv in kvs:
            path = kv.key[len(SECRETS_PREFIX) :]
            if not below.strip("/") or kv.key == prefix or kv.key.startswith(prefix + "/"):
                out.append(path)
        return out

    async def reseal(self) -> int:
        """Seal again with the newest key every value sealed with an older one (after a
        rotation); the number resealed. A value that does not open is left as it is."""
        kvs, _ = await self.store.list(SECRETS_PREFIX)
        count = 0
        for kv in kvs:
            path = kv.key[len(SECRETS_PREFIX) :]
            doc = json.loads(kv.value)
            if self.box.current(doc["sealed"]):
                continue
            try:
                plain = self.box.open(doc["sealed"], path)
            except SealError:
                continue
            doc["sealed"] = self.box.seal(plain, path)
            raw = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
            if await self.store.update(kv.key, raw, mod_revision=kv.mod_revision) is not None:
                count += 1
        return count
