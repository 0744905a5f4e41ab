"""The agent's identity on a secured cluster: joining with the bootstrap secret, its own
credential afterwards, short-lived tokens, its TLS certificate, and checking that a
request to its log server comes from the master; does I/O.

    first start:  POST /v1/agent/join {node_id, bootstrap, csr} ─▶ credential (kept 0600
                  in the work dir), token, certificate signed by the cluster CA
    later:        POST /v1/agent/join {node_id, credential, csr} ─▶ token, certificate
    every call:   Authorization: token=<token>; a 401 or a token near its end logs in again
    log server:   TLS with that certificate; only a token the master signed (kind master,
                  this cluster) is served, checked against /v1/auth/jwks

The bootstrap secret lets a new node join once; it cannot stand for a node that has
joined (the master refuses), so a leaked bootstrap secret does not let anyone report
statuses for the nodes already there.
"""

from __future__ import annotations

import datetime as dt
import logging
import ssl
import time
from collections.abc import AsyncGenerator, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from pallet.agent.masters import Masters
from pallet.auth.ca import make_csr, private_key_pem, write_private
from pallet.auth.tokens import InvalidToken, PublicKeys
from pallet.model.errors import PalletError

__all__ = ["AgentCredentials", "JoinRefused", "SecurityConfig"]

log = logging.getLogger(__name__)


class JoinRefused(PalletError):
    """The master refused this agent's bootstrap secret or credential."""


@dataclass(frozen=True, slots=True)
class SecurityConfig:
    """What a secured agent is given: the cluster's CA (to check the master and to be
    given a certificate) and the bootstrap secret (for its first join)."""

    ca_file: Path | None = None
    bootstrap_secret: str | None = None


class AgentCredentials(httpx.Auth):
    """Tokens for the agent's calls (an ``httpx.Auth``: a 401 logs in again once)."""

    requires_response_body = False

    def __init__(self, work_dir: Path, node_id: str, config: SecurityConfig) -> None:
        self.work_dir = work_dir
        self.node_id = node_id
        self.config = config
        self.token: str | None = None
        self.expires = 0.0
        self.keys: PublicKeys | None = None
        self.issuer = ""
        self.tls_key = work_dir / "tls.key"
        self.tls_cert = work_dir / "tls.crt"

    @property
    def credential_path(self) -> Path:
        return self.work_dir / "credential"

    def client_tls(self) -> ssl.SSLContext | bool:
        """How the agent checks the master: the cluster's CA when it has one."""
        if self.config.ca_file is None:
            return True
        return ssl.create_default_context(cafile=str(self.config.ca_file))

    def server_tls(self) -> ssl.SSLContext | None:
        """The log server's TLS (None: plain HTTP, when the cluster has no CA)."""
        if self.config.ca_file is None or not self.tls_cert.exists():
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(self.tls_cert), str(self.tls_key))
        return context

    def _csr(self) -> str:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        if self.tls_key.exists():
            key = serialization.load_pem_private_key(self.tls_key.read_bytes(), None)
            assert isinstance(key, ec.EllipticCurvePrivateKey)
        else:
            key = ec.generate_private_key(ec.SECP256R1())
            write_private(self.tls_key, private_key_pem(key))
        return make_csr(key, self.node_id).decode()

    async def login(self, client: Masters) -> None:
        """Join (first time) or log in with the kept credential; keep the token, the
        certificate and the master's public keys."""
        body: dict[str, Any] = {"node_id": self.node_id}
        try:
            body["credential"] = self.credential_path.read_text().strip()
        except FileNotFoundError:
            if not self.config.bootstrap_secret:
                raise JoinRefused(
                    f"{self.credential_path} is missing and no bootstrap secret was given: "
                    "start the agent with --bootstrap-secret-file to join the cluster"
                ) from None
            body["bootstrap"] = self.config.bootstrap_secret
        if self.config.ca_file is not None:
            body["csr"] = self._csr()
        r = await client.post("/v1/agent/join", json=body, auth=None)
        if r.status_code == 401:
            raise JoinRefused(f"the master refused node {self.node_id}: {_message(r)}")
        r.raise_for_status()
        doc = r.json()
        if "credential" in doc:
            write_private(self.credential_path, doc["credential"].encode() + b"\n")
        if "certificate" in doc:
            self.tls_cert.write_bytes(doc["certificate"].encode())
        self.token = str(doc["token"])
        self.expires = dt.datetime.fromisoformat(doc["expires_at"]).timestamp()
        await self._fetch_keys(client)
        log.info("logged in as node %s until %s", self.node_id, doc["expires_at"])

    async def _fetch_keys(self, client: Masters) -> None:
        r = await client.get("/v1/auth/jwks", auth=None)
        r.raise_for_status()
        self.keys = PublicKeys(r.json())
        info = await client.get("/v2/info")
        if info.status_code == 200:
            self.issuer = str(info.json().get("frameworkId") or "")

    def stale(self) -> bool:
        """Whether the token is missing or within 5 minutes of its end."""
        return self.token is None or self.expires - time.time() < 300

    # ------------------------------------------------------------ httpx.Auth

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        raise NotImplementedError("the agent's client is asynchronous")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if self.token is not None:
            request.headers["Authorization"] = f"token={self.token}"
        response = yield request
        if response.status_code == 401 and self._client is not None:
            await self.login(self._client)
            request.headers["Authorization"] = f"token={self.token}"
            yield request

    _client: Masters | None = None

    def attach(self, client: Masters) -> None:
        """The client logins go through (the same one the calls use)."""
        self._client = client

    # ------------------------------------------------------------ the log server's side

    def master_may_call(self, authorization: str | None) -> bool:
        """Whether a log request carries a token the master signed for this cluster."""
        if self.keys is None:
            return False
        if not authorization or not authorization.startswith("token="):
            return False
        try:
            claims = self.keys.verify(authorization[len("token=") :], self.issuer, time.time())
        except InvalidToken:
            return False
        return claims.kind == "master"


def _message(r: httpx.Response) -> str:
    try:
        return str(r.json().get("message", r.text))
    except (ValueError, AttributeError):
        return r.text[:200]
