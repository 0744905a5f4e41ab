"""What ``pallet up --secure`` keeps in ``<state>/secure`` and how it talks to its own
secured masters: the CA, bootstrap secret and superuser password made before anything
starts, a client logged in as the superuser, and the service account the DNS server
and load balancers log in as; does I/O (files, HTTP).

    <state>/secure/ca.crt, bootstrap-secret, admin-password   (``prepare_secure``)
    <state>/secure/discovery-credential.json                  the ``pallet-discovery``
        service account's credential in DC/OS's shape (uid, private_key), 0600
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import httpx

from pallet.client.superuser import secure_dir, superuser_client

__all__ = [
    "DISCOVERY_ACCOUNT",
    "DISCOVERY_GRANTS",
    "discovery_env",
    "enroll_discovery",
    "prepare_secure",
    "secure_dir",
    "superuser_client",
]

DISCOVERY_ACCOUNT = "pallet-discovery"
DISCOVERY_GRANTS = (
    ("pallet:service:/", "read"),  # every app's tasks, for records and backends
    ("pallet:events", "read"),  # the event stream that keeps them fresh
    ("pallet:discovery", "full"),  # reporting what they serve
)
"""What the DNS server, the VIP proxies and the edge LB need, and nothing more."""


def prepare_secure(state: Path, host: str) -> None:
    """The cluster CA, the bootstrap secret and the superuser's password (kept 0600 in
    ``<state>/secure`` across restarts), made before anything starts: agents need them."""
    from pallet.auth.ca import write_private
    from pallet.master.security import prepare_secure_dir

    directory = secure_dir(state)
    prepare_secure_dir(directory, host)
    password = directory / "admin-password"
    if not password.exists():
        write_private(password, secrets.token_urlsafe(18).encode() + b"\n")


def _discovery_credential(state: Path) -> tuple[Path, str]:
    """The discovery account's credential file (made once, Ed25519) and its public key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from pallet.auth.ca import write_private

    path = secure_dir(state) / "discovery-credential.json"
    if not path.exists():
        key = ed25519.Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        doc = {"scheme": "EdDSA", "uid": DISCOVERY_ACCOUNT, "private_key": pem}
        write_private(path, json.dumps(doc).encode())
    private = serialization.load_pem_private_key(
        json.loads(path.read_text())["private_key"].encode(), password=None
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return path, public.decode()


def discovery_env(state: Path) -> dict[str, str]:
    """The environment the discovery processes log in with (the credential, the CA)."""
    from pallet.client.login import CREDENTIAL_ENV
    from pallet.client.transport import CA_ENV

    path, _ = _discovery_credential(state)
    return {CREDENTIAL_ENV: str(path), CA_ENV: str(secure_dir(state) / "ca.crt")}


def enroll_discovery(client: httpx.Client, state: Path) -> None:
    """Make (or re-key) the discovery service account through the master and grant it
    ``DISCOVERY_GRANTS``; raises ``httpx.HTTPStatusError`` on a refusal."""
    _, public = _discovery_credential(state)
    body = {"public_key": public, "description": "pallet up's DNS server and load balancers"}
    r = client.put(f"/v1/users/{DISCOVERY_ACCOUNT}", json=body)
    if r.status_code == 409:  # kept from an earlier run: its key may be new
        r = client.patch(f"/v1/users/{DISCOVERY_ACCOUNT}", json=body)
    r.raise_for_status()
    for rid, action in DISCOVERY_GRANTS:
        grant = {"principal": DISCOVERY_ACCOUNT, "rid": rid, "action": action}
        client.post("/v1/acls/grant", json=grant).raise_for_status()
