"""Sealing secrets at rest with AES-256-GCM (``cryptography``); the keys come from a file or
the environment; no I/O of its own beyond reading that file.

A sealed value is ``v1.<key id>.<nonce>.<ciphertext+tag>`` (base64url): the key id says
which key opens it, so keys rotate: put a new key first in the key file (one
``<id>:<64 hex digits>`` per line) and restart the masters; values are sealed with the
newest key from then on (``current`` says whether one is), and an old line can go once
nothing sealed with it is left. The associated data is the
secret's path, so a sealed value moved to another path does not open.
"""

from __future__ import annotations

import base64
import os
import secrets as _secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pallet.model.errors import PalletError

__all__ = ["KEY_ENV", "SealError", "SecretBox", "new_key_line"]

KEY_ENV = "PALLET_SECRETS_KEY"
"""Environment variable holding the key lines when no key file is given."""


class SealError(PalletError):
    """A sealed value that does not open (wrong key, tampered, unknown key id)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_key_line() -> str:
    """A fresh key line for a key file: ``<id>:<256 random bits in hex>``."""
    return f"{_secrets.token_hex(4)}:{_secrets.token_hex(32)}"


class SecretBox:
    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise ValueError("no secrets key")
        self.keys = keys
        self._aead = {kid: AESGCM(key) for kid, key in keys}

    @classmethod
    def from_text(cls, text: str) -> SecretBox:
        keys = []
        for n, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            kid, _, hexkey = line.partition(":")
            try:
                key = bytes.fromhex(hexkey)
            except ValueError:
                key = b""
            if not kid or not kid.isalnum() or len(key) != 32:
                raise ValueError(f"line {n}: a key line is <id>:<64 hex digits>")
            keys.append((kid, key))
        return cls(keys)

    @classmethod
    def load(cls, path: Path | None) -> SecretBox:
        """From ``path`` (which must not be readable by others), else ``$PALLET_SECRETS_KEY``."""
        if path is None:
            text = os.environ.get(KEY_ENV, "")
            if not text:
                raise ValueError(f"give a secrets key file or set {KEY_ENV}")
            return cls.from_text(text.replace(",", "\n"))
        if path.stat().st_mode & 0o077:
            raise ValueError(f"{path} is readable by others; chmod 600 it")
        return cls.from_text(path.read_text())

    def seal(self, plaintext: bytes, path: str) -> str:
        kid, _ = self.keys[0]
        nonce = os.urandom(12)
        sealed = self._aead[kid].encrypt(nonce, plaintext, path.encode())
        return f"v1.{kid}.{_b64(nonce)}.{_b64(sealed)}"

    def open(self, sealed: str, path: str) -> bytes:
        try:
            version, kid, nonce, body = sealed.split(".")
        except ValueError:
            raise SealError("not a sealed value") from None
        aead = self._aead.get(kid)
        if version != "v1" or aead is None:
            raise SealError(f"sealed with key {kid!r}, which is not in the key file")
        try:
            return aead.decrypt(_unb64(nonce), _unb64(body), path.encode())
        except (InvalidTag, ValueError):
            raise SealError("the sealed value does not open (tampered, or another path)") from None

    def current(self, sealed: str) -> bool:
        """Whether ``sealed`` is sealed with the newest key (else it is sealed again at its next write)."""
        return sealed.split(".")[1:2] == [self.keys[0][0]]
