"""Signed tokens: the master's short-lived JWTs (EdDSA), its key ring, and the login
tokens service accounts sign with their own keys, as DC/OS's do; no clock of its own.

A Pallet token is a JWT signed with the newest key of the ring (``kid`` in its header)
carrying ``uid``, ``kind`` (user, service, agent, master), ``iat``, ``exp``, ``jti`` and
``iss`` (the cluster id). Verification accepts EdDSA only (``alg: none`` and every
other algorithm are refused before any key is touched), a ``kid`` still in the ring
(rotating the ring with ``keep=0`` revokes every token signed before), an issuer equal to
the cluster's, and ``exp`` after ``now`` (time is an argument: tests use a fake clock).

A service account logs in by signing ``{"uid": <its id>, "exp": <soon>}`` with its
private key (RS256 for RSA keys, as the DC/OS CLI does, or EdDSA); the master checks it
with the public key it stores for that account and refuses one that lives longer than
``MAX_LOGIN_TTL`` seconds, so a captured login token is soon worthless.
"""

from __future__ import annotations

import base64
import secrets as _secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from pallet.model.errors import PalletError

__all__ = [
    "MAX_LOGIN_TTL",
    "Claims",
    "InvalidToken",
    "KeyRing",
    "PrincipalKind",
    "SigningKey",
    "check_public_key",
    "verify_login",
]

MAX_LOGIN_TTL = 300.0
"""The longest a service account's signed login token may be valid for, in seconds."""

PrincipalKind = str
KINDS = ("user", "service", "agent", "master")


class InvalidToken(PalletError):
    """A token that does not authenticate anyone; ``reason`` says why (for the 401)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Claims:
    uid: str
    kind: PrincipalKind
    iat: float
    exp: float
    jti: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    private: ed25519.Ed25519PrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(_secrets.token_hex(8), ed25519.Ed25519PrivateKey.generate())

    def public_raw(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    def private_raw(self) -> bytes:
        return self.private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )


class KeyRing:
    """The master's signing keys, newest first; only the newest signs."""

    def __init__(self, keys: tuple[SigningKey, ...]) -> None:
        if not keys:
            raise ValueError("a key ring needs a key")
        self.keys = keys
        self._public = {k.kid: k.private.public_key() for k in keys}

    @classmethod
    def generate(cls) -> KeyRing:
        return cls((SigningKey.generate(),))

    def rotated(self, keep: int = 1) -> KeyRing:
        """A new signing key in front; of the old ones, ``keep`` stay valid for checking
        (0 revokes every token issued so far)."""
        return KeyRing((SigningKey.generate(), *self.keys[:keep]))

    def to_json(self) -> list[dict[str, str]]:
        return [{"kid": k.kid, "key": _b64(k.private_raw())} for k in self.keys]

    @classmethod
    def from_json(cls, doc: object) -> KeyRing:
        if not isinstance(doc, list) or not doc:
            raise ValueError("a key ring is a non-empty list")
        keys = []
        for item in doc:
            raw = _unb64(str(item["key"]))
            keys.append(
                SigningKey(str(item["kid"]), ed25519.Ed25519PrivateKey.from_private_bytes(raw))
            )
        return cls(tuple(keys))

    def jwks(self) -> dict[str, Any]:
        """The public keys (RFC 8037 OKP JWKs): what agents check the master's tokens with."""
        return {
            "keys": [
                {
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "alg": "EdDSA",
                    "use": "sig",
                    "kid": k.kid,
                    "x": _b64(k.public_raw()),
                }
                for k in self.keys
            ]
        }

    def issue(self, claims: Claims, issuer: str) -> str:
        key = self.keys[0]
        payload = {
            "uid": claims.uid,
            "kind": claims.kind,
            "iat": int(claims.iat),
            "exp": int(claims.exp),
            "jti": claims.jti,
            "iss": issuer,
        }
        return jwt.encode(payload, key.private, algorithm="EdDSA", headers={"kid": key.kid})

    def verify(self, token: str, issuer: str, now: float) -> Claims:
        return verify_with(self._public, token, issuer, now)


class PublicKeys:
    """The public half of a ring (from ``jwks``): what an agent verifies with."""

    def __init__(self, jwks: Mapping[str, Any]) -> None:
        self.keys: dict[str, ed25519.Ed25519PublicKey] = {}
        for k in jwks.get("keys", ()):
            if k.get("kty") == "OKP" and k.get("crv") == "Ed25519":
                raw = _unb64(str(k["x"]))
                self.keys[str(k["kid"])] = ed25519.Ed25519PublicKey.from_public_bytes(raw)

    def verify(self, token: str, issuer: str, now: float) -> Claims:
        return verify_with(self.keys, token, issuer, now)


_MAX_TOKEN = 4096


def verify_with(
    keys: Mapping[str, ed25519.Ed25519PublicKey], token: str, issuer: str, now: float
) -> Claims:
    if len(token) > _MAX_TOKEN:
        raise InvalidToken("the token is too long")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise InvalidToken("the token is not a JWT") from None
    if header.get("alg") != "EdDSA":
        raise InvalidToken(f"tokens are signed with EdDSA, not {header.get('alg')!r}")
    key = keys.get(str(header.get("kid")))
    if key is None:
        raise InvalidToken("the token was signed by a key this cluster does not hold (rotated?)")
    try:
        doc = jwt.decode(
            token,
            key,
            algorithms=["EdDSA"],
            issuer=issuer,
            options={
                "verify_exp": False,  # checked below against the injected clock
                "verify_iat": False,
                "verify_nbf": False,
                "require": ["uid", "kind", "iat", "exp", "jti", "iss"],
            },
        )
    except jwt.InvalidIssuerError:
        raise InvalidToken("the token was issued by another cluster") from None
    except jwt.PyJWTError as e:
        raise InvalidToken(f"the token does not verify: {e}") from None
    claims = _claims(doc)
    if claims.exp <= now:
        raise InvalidToken("the token has expired; log in again (pallet auth login)")
    return claims


def _claims(doc: Mapping[str, Any]) -> Claims:
    uid, kind, jti = doc.get("uid"), doc.get("kind"), doc.get("jti")
    iat, exp = doc.get("iat"), doc.get("exp")
    if not (
        isinstance(uid, str) and isinstance(kind, str) and kind in KINDS and isinstance(jti, str)
    ):
        raise InvalidToken("the token's claims are malformed")
    if not (isinstance(iat, int | float) and isinstance(exp, int | float)):
        raise InvalidToken("the token's times are malformed")
    return Claims(uid, kind, float(iat), float(exp), jti)


# ------------------------------------------------------------------ service account logins


def _public_key(
    pem: str,
) -> rsa.RSAPublicKey | ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError):
        raise ValueError("not a PEM public key") from None
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise ValueError("an RSA key needs at least 2048 bits")
        return key
    if isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey):
        return key
    raise ValueError("use an RSA (2048+ bits), Ed25519 or EC public key")


def check_public_key(pem: str) -> str:
    """``pem`` if it is a usable public key, else ``ValueError`` saying why."""
    _public_key(pem)
    return pem


def _algorithm(key: object) -> str:
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        return "ES256"
    return "EdDSA"


def verify_login(token: str, uid: str, public_key_pem: str, now: float) -> None:
    """Raise ``InvalidToken`` unless ``token`` is ``uid``'s login, signed with its key,
    valid now and for at most ``MAX_LOGIN_TTL`` more seconds."""
    if len(token) > _MAX_TOKEN:
        raise InvalidToken("the login token is too long")
    key = _public_key(public_key_pem)
    algorithm = _algorithm(key)
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise InvalidToken("the login token is not a JWT") from None
    if header.get("alg") != algorithm:
        raise InvalidToken(f"the login token must be signed with {algorithm}")
    try:
        doc = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            options={"verify_exp": False, "require": ["uid", "exp"]},
        )
    except jwt.PyJWTError as e:
        raise InvalidToken(f"the login token does not verify: {e}") from None
    exp = doc.get("exp")
    if doc.get("uid") != uid:
        raise InvalidToken("the login token names another account")
    if not isinstance(exp, int | float) or exp <= now:
        raise InvalidToken("the login token has expired")
    if exp > now + MAX_LOGIN_TTL:
        raise InvalidToken(f"a login token may live {MAX_LOGIN_TTL:g} s at most")
