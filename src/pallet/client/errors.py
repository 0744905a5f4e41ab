"""The errors a client call can raise, each saying what went wrong and what to do; pure.

PalletError
 └── ClientError             status (None when no answer), message, Marathon's details
      ├── MasterUnreachable  nothing answered at the master's URL (refused, DNS, timeout)
      ├── ProtocolError      an answer that is not the documented JSON
      ├── WaitTimeout        a deployment still running when ``--wait`` gave up
      └── ApiError           the master answered with an HTTP error status
           ├── BadRequest        400 (malformed JSON, bad query)
           ├── NotFound          404 (unknown app, task or node)
           ├── Conflict          409 (id taken, app locked by a deployment)
           ├── InvalidRequest    422 (Marathon's ``details``: field paths and errors)
           └── ServerError       5xx
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pallet.errors import PalletError

__all__ = [
    "ApiError",
    "BadRequest",
    "ClientError",
    "Conflict",
    "FieldError",
    "InvalidRequest",
    "MasterUnreachable",
    "NotFound",
    "ProtocolError",
    "ServerError",
    "WaitTimeout",
    "error_for_status",
    "field_label",
]

# Play JSON's codes in Marathon's "Invalid JSON" details, in words a user can act on.
_PLAY_WORDS = {
    "error.path.missing": "is required",
    "error.min": "is below its minimum",
    "error.max": "is above its maximum",
    "error.minLength": "is too short",
    "error.maxLength": "is too long",
    "error.pattern": "has characters or a form that is not allowed",
    "error.expected.jsnumber": "must be a number",
    "error.expected.int": "must be a whole number",
    "error.expected.jsstring": "must be a string",
    "error.expected.jsboolean": "must be true or false",
    "error.expected.jsarray": "must be a list",
    "error.expected.jsobject": "must be an object",
    "error.unknown.enum.literal": "is not one of the allowed values",
}


def field_label(path: str) -> str:
    """Marathon's error path as a user reads it: ``/portDefinitions(1)/port`` ->
    ``portDefinitions[1].port``; the whole object (``/``) is ``app``."""
    text = path.strip("/").replace("(", "[").replace(")", "]").replace("/", ".")
    return text or "app"


def _words(error: str) -> str:
    return _PLAY_WORDS.get(error, error)


@dataclass(frozen=True, slots=True)
class FieldError:
    """One entry of Marathon's ``details``: a path such as ``/cpus`` and its errors."""

    path: str
    errors: tuple[str, ...]

    @property
    def label(self) -> str:
        return field_label(self.path)

    def describe(self) -> str:
        """``cpus: is below its minimum`` (Play codes turned into words)."""
        return f"{self.label}: {'; '.join(_words(e) for e in self.errors)}"


def _details(body: object) -> tuple[FieldError, ...]:
    if not isinstance(body, Mapping):
        return ()
    details = body.get("details")
    if not isinstance(details, Sequence) or isinstance(details, str):
        return ()
    found = []
    for entry in details:
        if not isinstance(entry, Mapping):
            continue
        path = entry.get("path", "/")
        errors = entry.get("errors", [])
        if isinstance(errors, str):
            errors = [errors]
        if isinstance(path, str) and isinstance(errors, Sequence):
            found.append(FieldError(path, tuple(str(e) for e in errors)))
    return tuple(found)


class ClientError(PalletError):
    """A call to the master failed; ``status`` is None when nothing answered."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        details: Sequence[FieldError] = (),
        body: object = None,
    ) -> None:
        self.message = message
        self.status = status
        self.details = tuple(details)
        self.body = body
        super().__init__(self._text())

    def _text(self) -> str:
        lines = [self.message] + [f"  {d.describe()}" for d in self.details]
        return "\n".join(lines)


class MasterUnreachable(ClientError):
    """Nothing answered at the master's URL."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(
            f"cannot reach the master at {url} ({reason}); is `pallet up` running? "
            "(--master or PALLET_MASTER picks another)"
        )


class ProtocolError(ClientError):
    """The master answered, but not with the JSON its API documents."""


class WaitTimeout(ClientError):
    """A deployment did not finish within the time ``--wait`` allowed."""


class ApiError(ClientError):
    """The master answered ``method path`` with an HTTP error status; ``server_message``
    is its own words (Marathon's ``message``)."""

    def __init__(
        self,
        method: str,
        path: str,
        status: int,
        message: str,
        body: object = None,
        server_message: str = "",
    ) -> None:
        self.method = method
        self.path = path
        self.server_message = server_message or message
        super().__init__(message, status=status, details=_details(body), body=body)


class BadRequest(ApiError):
    """400: the request itself is malformed."""


class NotFound(ApiError):
    """404: no such app, task or node."""


class Conflict(ApiError):
    """409: the id is taken, or a running deployment holds the app (retry with force)."""

    @property
    def deployment_ids(self) -> tuple[str, ...]:
        """The deployments that lock the app, when the master named them."""
        body = self.body
        if not isinstance(body, Mapping) or not isinstance(body.get("deployments"), list):
            return ()
        return tuple(
            str(d["id"]) for d in body["deployments"] if isinstance(d, Mapping) and "id" in d
        )


class InvalidRequest(ApiError):
    """422: the body broke Marathon's schema or rules; ``details`` name each field."""


class ServerError(ApiError):
    """5xx: the master failed; its log says why."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    404: NotFound,
    409: Conflict,
    422: InvalidRequest,
}


def _message(body: object, fallback: str) -> str:
    if isinstance(body, Mapping) and isinstance(body.get("message"), str) and body["message"]:
        return str(body["message"])
    if isinstance(body, str) and body.strip():
        return body.strip().splitlines()[0][:200]
    return fallback


def error_for_status(method: str, path: str, status: int, body: Any, reason: str) -> ApiError:
    """The ``ApiError`` subclass for an HTTP error answer, its message taken from
    Marathon's ``{"message": ...}`` body (or the reason phrase when there is none)."""
    kind = _BY_STATUS.get(status, ServerError if status >= 500 else ApiError)
    text = _message(body, reason or "error")
    return kind(method, path, status, f"{method} {path}: {status} {text}", body, text)
