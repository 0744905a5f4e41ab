"""Marathon's error bodies, and the one exception that carries them to the HTTP layer; pure.

PalletError
 └── MarathonApiError      an HTTP status plus Marathon's JSON body for it

Marathon answers bad input in two tiers, and clients see the difference:

- the body does not parse as the schema (wrong JSON type, below a minimum, bad
  pattern): 422 ``{"message": "Invalid JSON", "details": [{"path", "errors"}]}``
  with Play JSON's codes (``error.min``, ``error.expected.jsnumber`` ...);
- it parses but breaks a rule (no cmd, bad constraint, duplicate ports): 422
  ``{"message": "Object is not valid", "details": [{"path", "errors"}]}``.

Malformed JSON is 400 ``{"message": "Invalid JSON", "details": "<parser text>"}``
and an empty body 400 ``{"message": "Please specify data in JSON format", ...}``
(``MarathonExceptionMapper.scala``). Paths render as Marathon does: ``/cpus``,
``/constraints(0)``, ``/portDefinitions(1)/port``, ``/`` for the whole object.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pydantic

from pallet.api.marathon.jsontypes import format_timestamp
from pallet.model.errors import PalletError
from pallet.model.errors import ValidationError as ModelValidationError

__all__ = [
    "INVALID_JSON",
    "MAX_BODY_BYTES",
    "OBJECT_NOT_VALID",
    "MarathonApiError",
    "Violation",
    "app_exists",
    "app_locked",
    "app_not_found",
    "from_model_error",
    "not_valid",
    "parse_json_body",
    "render_path",
    "shape_details",
    "shape_error",
    "task_not_found",
]

INVALID_JSON = "Invalid JSON"
OBJECT_NOT_VALID = "Object is not valid"
NO_JSON = "Please specify data in JSON format"
MAX_BODY_BYTES = 1 << 20

# pydantic's own error types -> Play JSON's codes, for the constraints we declare with Field().
_PLAY_CODES = {
    "missing": "error.path.missing",
    "greater_than_equal": "error.min",
    "greater_than": "error.min",
    "less_than_equal": "error.max",
    "less_than": "error.max",
    "string_too_short": "error.minLength",
    "too_short": "error.minLength",
    "string_too_long": "error.maxLength",
    "too_long": "error.maxLength",
    "string_pattern_mismatch": "error.pattern",
    "literal_error": "error.unknown.enum.literal",
    "enum": "error.unknown.enum.literal",
    "model_type": "error.expected.jsobject",
    "model_attributes_type": "error.expected.jsobject",
    "dict_type": "error.expected.jsobject",
    "list_type": "error.expected.jsarray",
    "string_type": "error.expected.jsstring",
    "bool_type": "error.expected.jsboolean",
    "int_type": "error.expected.jsnumber",
    "float_type": "error.expected.jsnumber",
    "int_from_float": "error.expected.int",
}


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule: where (a Marathon path such as ``/constraints(0)``) and why."""

    path: str
    message: str


class MarathonApiError(PalletError):
    """An HTTP error in Marathon's shape: ``status`` and the JSON ``body`` to send."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status}: {body.get('message', '')}")
        self.status = status
        self.body = body


def render_path(loc: Sequence[int | str]) -> str:
    """A pydantic location as Marathon writes it: ``("constraints", 0)`` -> ``/constraints(0)``."""
    text = "".join(f"({part})" if isinstance(part, int) else f"/{part}" for part in loc)
    return text or "/"


def _grouped(violations: Iterable[Violation]) -> list[dict[str, Any]]:
    """Marathon's ``details``: one entry per path, its distinct messages in order."""
    by_path: dict[str, list[str]] = {}
    for v in violations:
        messages = by_path.setdefault(v.path, [])
        if v.message not in messages:
            messages.append(v.message)
    return [{"path": path, "errors": errors} for path, errors in by_path.items()]


def shape_details(exc: pydantic.ValidationError) -> list[dict[str, Any]]:
    """Play-style details for a body that does not fit the schema."""
    violations = []
    for err in exc.errors(include_url=False):
        kind = err["type"]
        code = kind if kind.startswith("error.") else _PLAY_CODES.get(kind, f"error.{kind}")
        violations.append(Violation(render_path(err["loc"]), code))
    return _grouped(violations)


def shape_error(exc: pydantic.ValidationError) -> MarathonApiError:
    """422 ``Invalid JSON`` with Play's codes: the body does not fit Marathon's schema."""
    return MarathonApiError(422, {"message": INVALID_JSON, "details": shape_details(exc)})


def not_valid(violations: Iterable[Violation]) -> MarathonApiError:
    """422 ``Object is not valid``: the body parsed but breaks Marathon's rules."""
    return MarathonApiError(422, {"message": OBJECT_NOT_VALID, "details": _grouped(violations)})


def from_model_error(exc: ModelValidationError) -> MarathonApiError:
    """A ``pallet.model`` validation error (its ``field`` is already a Marathon path)."""
    return not_valid([Violation(exc.field or "/", exc.message)])


def parse_json_body(raw: bytes, limit: int = MAX_BODY_BYTES) -> object:
    """Decode a request body as Marathon's JSON reader would, or raise its error.

    413 past ``limit`` bytes (Marathon itself has no limit; Pallet caps bodies at 1 MiB),
    400 for an empty body, malformed JSON (NaN and Infinity are not JSON) or nesting
    deeper than Python's decoder can follow.
    """
    if len(raw) > limit:
        message = f"Request body is larger than {limit} bytes"
        raise MarathonApiError(413, {"message": message})
    text = raw.decode("utf-8", errors="replace")
    if not text.strip():
        details = "No content to map due to end-of-input"
        raise MarathonApiError(400, {"message": NO_JSON, "details": details})
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise MarathonApiError(400, {"message": INVALID_JSON, "details": str(exc)}) from None
    except RecursionError:
        # json's decoder recurses per nesting level: a body of a few thousand "[" is small
        # enough to pass the size cap and deep enough to exhaust the stack.
        details = "JSON nested too deeply"
        raise MarathonApiError(400, {"message": INVALID_JSON, "details": details}) from None


def _reject_constant(name: str) -> object:
    raise ValueError(f"Non-standard token '{name}': NaN and Infinity are not JSON")


def _in_version(version: datetime | None) -> str:
    return f" in version {format_timestamp(version)}" if version else ""


def app_not_found(app_id: str, version: datetime | None = None) -> MarathonApiError:
    """404 ``App '/x' does not exist`` (``AppNotFoundException``)."""
    return MarathonApiError(
        404, {"message": f"App '{app_id}' does not exist{_in_version(version)}"}
    )


def task_not_found(task_id: str) -> MarathonApiError:
    """404 ``Task 'x' does not exist`` (``RestResource.unknownTask``)."""
    return MarathonApiError(404, {"message": f"Task '{task_id}' does not exist"})


def app_exists(app_id: str) -> MarathonApiError:
    """409 on POST of an id that is taken (``AppsResource.create``)."""
    return MarathonApiError(409, {"message": f"An app with id [{app_id}] already exists."})


def app_locked(deployment_ids: Iterable[str]) -> MarathonApiError:
    """409 when a running deployment holds the app and ``force`` was not given."""
    message = (
        "App is locked by one or more deployments. Override with the option '?force=true'. "
        "View details at '/v2/deployments/<DEPLOYMENT_ID>'."
    )
    deployments = [{"id": d} for d in deployment_ids]
    return MarathonApiError(409, {"message": message, "deployments": deployments})
