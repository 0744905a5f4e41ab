"""Password hashing with Argon2id (argon2-cffi, its RFC 9106 low-memory profile); CPU-bound.

An unknown user costs the same work as a wrong password (``verify`` against a dummy
hash), so the answer time does not say which user ids exist.
"""

from __future__ import annotations

from argon2 import Parameters, PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = ["MAX_PASSWORD", "MIN_PASSWORD", "hash_password", "use_parameters", "verify_password"]

MIN_PASSWORD = 8
MAX_PASSWORD = 1024

_hasher = PasswordHasher()
_DUMMY: str | None = None
"""A hash no password matches, made at first use (not at import: every master imports
this module, and a hash costs ~0.1 s of CPU by design)."""


def _dummy() -> str:
    global _DUMMY
    if _DUMMY is None:
        _DUMMY = _hasher.hash("no such user: this hash never matches a password")
    return _DUMMY


def use_parameters(parameters: Parameters) -> None:
    """Hash new passwords with ``parameters`` (argon2.profiles); tests use the cheapest,
    for the default costs ~0.1 s of CPU per login by design. Stored hashes carry their
    own parameters, so changing this never locks anyone out."""
    global _hasher, _DUMMY
    _hasher = PasswordHasher.from_parameters(parameters)
    _DUMMY = None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored`` (None: no such user, still hashed once)."""
    if len(password) > MAX_PASSWORD:
        return False
    try:
        return _hasher.verify(stored or _dummy(), password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
