"""A secured master's parts, made from its secure directory: the cluster CA and the
master's certificate, the secrets key, the bootstrap secret for agents, identities and
the audit log; writes that directory (keys 0600).

    <secure dir>/ca.crt, ca.key           the cluster CA (made once)
    <secure dir>/master-<port>.crt, .key  the master's TLS certificate (made at each start
                                          for the addresses it serves on)
    <secure dir>/secrets.key              AES-256 keys sealing secrets and signing keys
                                          (or $PALLET_SECRETS_KEY)
    <secure dir>/bootstrap-secret         what new agents show to join
"""

from __future__ import annotations

import datetime as dt
import os
import secrets as _secrets
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from pallet.auth.audit import AuditLog
from pallet.auth.ca import CertificateAuthority, write_private
from pallet.auth.secretbox import KEY_ENV, SecretBox, new_key_line
from pallet.auth.service import AuthService, AuthSettings
from pallet.store import Store

__all__ = ["SecureParts", "SecuritySettings", "prepare_secure_dir", "secure_parts"]


@dataclass(frozen=True, slots=True)
class SecuritySettings:
    directory: Path
    tls: bool = True
    superuser: str = "admin"
    superuser_password_file: Path | None = None
    token_ttl: float = 3600.0


@dataclass(frozen=True, slots=True)
class SecureParts:
    auth: AuthService
    audit: AuditLog
    ca: CertificateAuthority | None
    cert: Path | None
    key: Path | None
    agent_tls: ssl.SSLContext | None
    new_password: str | None
    """The superuser's password when it was just made up (shown once)."""


def _read_or_make(path: Path, make: str) -> str:
    if not path.exists():
        write_private(path, (make + "\n").encode())
    if path.stat().st_mode & 0o077:
        raise ValueError(f"{path} is readable by others; chmod 600 it")
    return path.read_text().strip()


def prepare_secure_dir(
    directory: Path, host: str, stem: str = "master"
) -> tuple[CertificateAuthority, Path, Path]:
    """The CA (made if missing) and a fresh certificate of the master for ``host``, this
    machine's name and loopback (``<stem>.crt``, ``<stem>.key``: masters sharing the
    directory each have their own); the bootstrap secret is made if missing."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    now = dt.datetime.now(dt.UTC)
    ca = CertificateAuthority.load_or_create(directory, socket.gethostname(), now)
    names = sorted({host, "127.0.0.1", "localhost", socket.gethostname()} - {"0.0.0.0", "::"})
    cert, key = ca.issue_files(directory, stem, names, now)
    _read_or_make(directory / "bootstrap-secret", _secrets.token_urlsafe(32))
    return ca, cert, key


async def secure_parts(
    store: Store, cluster_id: str, host: str, port: int, settings: SecuritySettings
) -> SecureParts:
    directory = settings.directory
    ca, cert, key = prepare_secure_dir(directory, host, f"master-{port}")
    key_file = directory / "secrets.key"
    if os.environ.get(KEY_ENV) and not key_file.exists():
        box = SecretBox.load(None)
    else:
        _read_or_make(key_file, new_key_line())
        box = SecretBox.load(key_file)
    password = None
    if settings.superuser_password_file is not None:
        password = settings.superuser_password_file.read_text().strip()
    auth = AuthService(
        store,
        box,
        cluster_id,
        AuthSettings(
            token_ttl=settings.token_ttl,
            bootstrap_secret=(directory / "bootstrap-secret").read_text().strip(),
            superuser=settings.superuser,
            superuser_password=password,
        ),
    )
    new_password = await auth.load()
    agent_tls = None
    if settings.tls:
        agent_tls = ssl.create_default_context(cafile=str(directory / "ca.crt"))
    return SecureParts(
        auth,
        AuditLog(store),
        ca if settings.tls else None,
        cert if settings.tls else None,
        key if settings.tls else None,
        agent_tls,
        new_password,
    )
