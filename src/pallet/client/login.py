"""How a program logs in as a service account: the signed login token, and an httpx
``Auth`` that logs in on the first refusal and again whenever its token expires; reads
the credential file it is given, no other I/O of its own.

A credential is DC/OS's service-account credential, a JSON file
``{"uid": "...", "private_key": "<PEM>"}`` (``scheme`` and ``login_endpoint`` may be there
and are not needed), named by ``$PALLET_SERVICE_ACCOUNT_CREDENTIAL``: how the DNS server
and the load balancers reach a secured master without a person's token.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pallet.errors import ValidationError

__all__ = ["CREDENTIAL_ENV", "Credential", "ServiceLogin", "env_credential", "sign_login"]

CREDENTIAL_ENV = "PALLET_SERVICE_ACCOUNT_CREDENTIAL"


def sign_login(uid: str, private_key_pem: bytes, now: float, ttl: float = 120.0) -> str:
    """The login token a service account sends: its uid and an expiry, signed with its
    private key (RS256, ES256 or EdDSA by the key's type)."""
    key = serialization.load_pem_private_key(private_key_pem, password=None)
    if isinstance(key, rsa.RSAPrivateKey):
        algorithm = "RS256"
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        algorithm = "ES256"
    else:
        algorithm = "EdDSA"
    return jwt.encode({"uid": uid, "exp": int(now + ttl)}, key, algorithm=algorithm)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Credential:
    uid: str
    private_key: bytes

    @classmethod
    def read(cls, path: Path) -> Credential:
        """The credential in ``path``; a ``ValidationError`` naming what to fix."""
        where = f"${CREDENTIAL_ENV}"
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise ValidationError(where, f"cannot read the credential {path}: {e}") from None
        if not isinstance(doc, dict) or not all(
            isinstance(doc.get(k), str) and doc[k] for k in ("uid", "private_key")
        ):
            raise ValidationError(where, f"{path} needs a uid and a private_key (PEM)")
        return cls(doc["uid"], doc["private_key"].encode())


def env_credential() -> Credential | None:
    """The credential ``$PALLET_SERVICE_ACCOUNT_CREDENTIAL`` names, if it names one."""
    path = os.environ.get(CREDENTIAL_ENV)
    return Credential.read(Path(path)) if path else None


class ServiceLogin(httpx.Auth):
    """Sends the service account's token; on a 401 logs in (``POST /v1/auth/login``
    with a freshly signed login token) and sends the call again, once. Works for
    streamed calls too: only the login's own answer is read."""

    def __init__(
        self, credential: Credential, trusts: Callable[[str, str], bool] = lambda s, h: False
    ) -> None:
        """``trusts(scheme, host)`` says whether a redirect's target may see the token
        (``transport.KeepToken.trusts``)."""
        self.credential = credential
        self.trusts = trusts
        self.token = ""

    def _put(self, request: httpx.Request) -> None:
        if self.token:
            request.headers["Authorization"] = f"token={self.token}"

    def on_request(self, request: httpx.Request) -> None:
        """The token on a follower's redirect to the leader too, if it is trusted."""
        if self.trusts(request.url.scheme, request.url.host):
            self._put(request)

    async def on_request_async(self, request: httpx.Request) -> None:
        self.on_request(request)

    def _login(self, request: httpx.Request) -> httpx.Request:
        signed = sign_login(self.credential.uid, self.credential.private_key, time.time())
        return httpx.Request(
            "POST",
            request.url.copy_with(path="/v1/auth/login", query=None),
            json={"uid": self.credential.uid, "token": signed},
        )

    def _took(self, answer: httpx.Response, request: httpx.Request) -> bool:
        if answer.status_code != 200:
            return False
        self.token = str(answer.json()["token"])
        self._put(request)
        return True

    # Only the login's answer is read here (httpx reads a refused call's short body
    # itself): a stream such as the event stream must not be read to its end before it
    # is handed back, so ``requires_response_body`` stays False.
    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        self._put(request)
        response = yield request
        if response.status_code == 401:
            answer = yield self._login(request)
            answer.read()
            if self._took(answer, request):
                yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        self._put(request)
        response = yield request
        if response.status_code == 401:
            answer = yield self._login(request)
            await answer.aread()
            if self._took(answer, request):
                yield request
