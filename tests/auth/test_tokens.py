"""Tokens on a fake clock: expiry, rotation, other keys, ``alg: none``, other clusters,
and service accounts' signed logins."""

from __future__ import annotations

import base64
import json

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from pallet.auth.tokens import (
    MAX_LOGIN_TTL,
    Claims,
    InvalidToken,
    KeyRing,
    PublicKeys,
    verify_login,
)
from pallet.client.login import sign_login

NOW = 1_700_000_000.0


def claims(exp: float = NOW + 3600) -> Claims:
    return Claims("alice", "user", NOW, exp, "jti-1")


def test_a_token_verifies_until_it_expires() -> None:
    ring = KeyRing.generate()
    token = ring.issue(claims(), "cluster-a")
    assert ring.verify(token, "cluster-a", NOW + 10).uid == "alice"
    assert PublicKeys(ring.jwks()).verify(token, "cluster-a", NOW).kind == "user"
    with pytest.raises(InvalidToken, match="expired"):
        ring.verify(token, "cluster-a", NOW + 3600)


def test_rotation_keeps_or_revokes_old_tokens() -> None:
    ring = KeyRing.generate()
    old = ring.issue(claims(), "c")
    kept = ring.rotated(keep=1)
    assert kept.verify(old, "c", NOW).uid == "alice"
    assert kept.verify(kept.issue(claims(), "c"), "c", NOW).uid == "alice"
    revoked = ring.rotated(keep=0)
    with pytest.raises(InvalidToken, match="does not hold"):
        revoked.verify(old, "c", NOW)
    assert KeyRing.from_json(revoked.to_json()).verify(revoked.issue(claims(), "c"), "c", NOW)


def _b64(doc: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda ring: "not-a-token", "not a JWT"),
        (lambda ring: "a.b.c", "not a JWT"),
        (lambda ring: "x" * 5000, "too long"),
        # alg none: no signature at all
        (
            lambda ring: (
                _b64({"alg": "none", "kid": ring.keys[0].kid})
                + "."
                + _b64(
                    {
                        "uid": "root",
                        "kind": "user",
                        "iat": 0,
                        "exp": NOW * 2,
                        "jti": "j",
                        "iss": "c",
                    }
                )
                + "."
            ),
            "not 'none'",
        ),
        # HS256 with the public key as the secret (the classic confusion attack)
        (
            lambda ring: jwt.encode(
                {"uid": "root", "kind": "user", "iat": 0, "exp": NOW * 2, "jti": "j", "iss": "c"},
                ring.keys[0].public_raw(),
                algorithm="HS256",
                headers={"kid": ring.keys[0].kid},
            ),
            "not 'HS256'",
        ),
        # signed by another key that claims the ring's kid
        (
            lambda ring: jwt.encode(
                {"uid": "root", "kind": "user", "iat": 0, "exp": NOW * 2, "jti": "j", "iss": "c"},
                ed25519.Ed25519PrivateKey.generate(),
                algorithm="EdDSA",
                headers={"kid": ring.keys[0].kid},
            ),
            "does not verify",
        ),
        (lambda ring: KeyRing.generate().issue(claims(), "c"), "does not hold"),
        (lambda ring: ring.issue(claims(), "another-cluster"), "another cluster"),
        (
            lambda ring: jwt.encode(
                {"uid": "root", "iss": "c", "exp": NOW * 2},
                ring.keys[0].private,
                algorithm="EdDSA",
                headers={"kid": ring.keys[0].kid},
            ),
            "does not verify",  # claims missing
        ),
    ],
)
def test_forged_and_foreign_tokens_are_refused(make, why: str) -> None:  # type: ignore[no-untyped-def]
    ring = KeyRing.generate()
    with pytest.raises(InvalidToken, match=why):
        ring.verify(make(ring), "c", NOW)


def _rsa() -> tuple[bytes, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public.decode()


def _ed25519() -> tuple[bytes, str]:
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public.decode()


@pytest.mark.parametrize("keys", [_rsa, _ed25519])
def test_a_service_account_logs_in_by_signing(keys) -> None:  # type: ignore[no-untyped-def]
    private, public = keys()
    token = sign_login("ci", private, NOW)
    assert jwt.get_unverified_header(token)["alg"] in ("RS256", "EdDSA")
    verify_login(token, "ci", public, NOW)
    with pytest.raises(InvalidToken, match="another account"):
        verify_login(token, "other", public, NOW)
    with pytest.raises(InvalidToken, match="expired"):
        verify_login(token, "ci", public, NOW + 3600)
    with pytest.raises(InvalidToken, match="at most"):
        verify_login(sign_login("ci", private, NOW, ttl=MAX_LOGIN_TTL * 10), "ci", public, NOW)
    other_private, _ = keys()
    with pytest.raises(InvalidToken, match="does not verify"):
        verify_login(sign_login("ci", other_private, NOW), "ci", public, NOW)
