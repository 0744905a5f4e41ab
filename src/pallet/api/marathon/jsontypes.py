"""Marathon's JSON value rules (Play JSON's reads) as pydantic types, and the base model; pure.

Marathon parses request bodies with Play JSON, whose readers never coerce: a number
is not a string, ``"3"`` is not an int, ``1.5`` is not an int (``1.0`` is). Each
failure has a Play error code (``error.expected.jsnumber``, ``error.min`` ...) that
Marathon returns verbatim, so the types below raise those codes as the pydantic
error ``type``; ``errors.shape_details`` turns them into Marathon's 422 body.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    model_serializer,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

__all__ = [
    "AnyPort",
    "JsBool",
    "JsDouble",
    "JsInt",
    "JsLong",
    "JsObject",
    "JsStr",
    "LegacyName",
    "MarathonModel",
    "Timestamp",
    "format_timestamp",
    "parse_timestamp",
    "play_error",
]

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)


def play_error(code: str) -> PydanticCustomError:
    """A pydantic error whose type is Play JSON's error code (what Marathon reports)."""
    return PydanticCustomError(code, code)


def _string(value: object) -> str:
    if isinstance(value, str):
        return value
    raise play_error("error.expected.jsstring")


def _boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    raise play_error("error.expected.jsboolean")


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise play_error("error.expected.jsnumber")
    if isinstance(value, float) and not math.isfinite(value):
        raise play_error("error.expected.jsnumber")
    try:
        return float(value)
    except OverflowError:  # an integer literal past 1.8e308, as 1e999 (inf) is
        raise play_error("error.expected.jsnumber") from None


def _integer(value: object, bounds: tuple[int, int], code: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise play_error("error.expected.jsnumber")
    if isinstance(value, float):
        if not (math.isfinite(value) and value.is_integer()):
            raise play_error(code)
        value = int(value)
    if not bounds[0] <= value <= bounds[1]:
        raise play_error(code)
    return value


def _int32(value: object) -> int:
    return _integer(value, _INT32, "error.expected.int")


def _int64(value: object) -> int:
    return _integer(value, _INT64, "error.expected.long")


def _object(value: object) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    raise play_error("error.expected.jsobject")


def _legacy_name(value: str) -> str:
    # RAML LegacyName: ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$, checked without a backtracking regex.
    ok = bool(value) and value[0] != "-" and value[-1] != "-"
    if not (ok and all(c.isdigit() or "a" <= c <= "z" or c == "-" for c in value)):
        raise play_error("error.pattern")
    return value


JsStr = Annotated[str, BeforeValidator(_string)]
JsBool = Annotated[bool, BeforeValidator(_boolean)]
JsDouble = Annotated[float, BeforeValidator(_number)]
JsInt = Annotated[int, BeforeValidator(_int32)]
JsLong = Annotated[int, BeforeValidator(_int64)]
JsObject = Annotated[dict[str, Any], BeforeValidator(_object)]
AnyPort = Annotated[int, BeforeValidator(_int32), Field(ge=0, le=65535)]
LegacyName = Annotated[str, BeforeValidator(_string), AfterValidator(_legacy_name)]


def format_timestamp(moment: datetime) -> str:
    """Marathon's timestamp text: UTC, millisecond precision, ``Z`` suffix
    (``2015-08-26T22:33:24.225Z``), as the Python client's parser expects."""
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {moment!r} has no timezone; pass an aware datetime")
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def parse_timestamp(value: object) -> datetime:
    """Read an ISO-8601 timestamp (with offset or ``Z``; none means UTC) from a request
    body, as a UTC datetime."""
    if isinstance(value, datetime):
        return value
    text = _string(value)
    try:
        moment = datetime.fromisoformat(text)
        # In UTC now, as every later use wants it: an offset can carry a time past
        # datetime's range (0001-01-01T00:00:00+14:00), which must fail here, not later.
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise play_error("error.expected.date.isoformat") from None


Timestamp = Annotated[
    datetime,
    BeforeValidator(parse_timestamp),
    PlainSerializer(format_timestamp, return_type=str),
]


class MarathonModel(BaseModel):
    """Base of every Marathon shape: camelCase on the wire, unknown fields ignored
    (as Marathon does), immutable once read.

    Serialising (``to_json``) follows Marathon's RAML writer: a field that is None is
    left out, and a field named in ``omit_empty`` is left out when it is empty.
    """

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )
    omit_empty: ClassVar[frozenset[str]] = frozenset()

    @model_serializer(mode="wrap")
    def _marathon_shape(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        empty_keys = set(self.omit_empty)
        fields = type(self).model_fields
        empty_keys |= {fields[name].alias or name for name in self.omit_empty if name in fields}
        return {
            key: value
            for key, value in data.items()
            if value is not None and not (key in empty_keys and value in ({}, []))
        }

    def to_json(self) -> dict[str, Any]:
        """The JSON-ready dict Marathon would send for this object."""
        return self.model_dump(mode="json", by_alias=True)
