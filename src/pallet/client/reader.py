"""Reading fields out of the master's JSON, with errors that name where it broke; pure."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pallet.client.errors import ProtocolError

__all__ = ["Fields"]


class Fields:
    """One JSON object of an answer; ``where`` (``apps[2]``) names it in errors.

    Required fields raise ``ProtocolError`` when missing or of the wrong type;
    optional ones return their default when missing or null.
    """

    __slots__ = ("doc", "where")

    def __init__(self, doc: object, where: str) -> None:
        if not isinstance(doc, Mapping):
            raise ProtocolError(f"{where}: expected a JSON object, got {_kind(doc)}")
        self.doc: Mapping[str, Any] = doc
        self.where = where

    def _bad(self, key: str, wanted: str) -> ProtocolError:
        value = self.doc.get(key)
        return ProtocolError(f"{self.where}.{key}: expected {wanted}, got {_kind(value)}")

    def string(self, key: str) -> str:
        value = self.doc.get(key)
        if not isinstance(value, str):
            raise self._bad(key, "a string")
        return value

    def opt_string(self, key: str, default: str | None = None) -> str | None:
        value = self.doc.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self._bad(key, "a string")
        return value

    def number(self, key: str, default: float | None = None) -> float:
        value = self.doc.get(key)
        if value is None and default is not None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._bad(key, "a number")
        return float(value)

    def integer(self, key: str, default: int | None = None) -> int:
        value = self.doc.get(key)
        if value is None and default is not None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._bad(key, "a whole number")
        return value

    def opt_integer(self, key: str) -> int | None:
        return None if self.doc.get(key) is None else self.integer(key)

    def boolean(self, key: str, default: bool = False) -> bool:
        value = self.doc.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self._bad(key, "true or false")
        return value

    def array(self, key: str) -> list[Any]:
        """A list field; missing or null reads as empty."""
        value = self.doc.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self._bad(key, "a list")
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        return tuple(str(v) for v in self.array(key))

    def obj(self, key: str) -> Fields:
        """A nested object; missing or null reads as ``{}``."""
        value = self.doc.get(key)
        return Fields({} if value is None else value, f"{self.where}.{key}")

    def objs(self, key: str) -> list[Fields]:
        return [Fields(v, f"{self.where}.{key}[{i}]") for i, v in enumerate(self.array(key))]

    def mapping(self, key: str) -> dict[str, str]:
        """A ``{name: text}`` object (labels, attributes); non-string values are shown as JSON."""
        value = self.obj(key).doc
        return {str(k): v if isinstance(v, str) else _text(v) for k, v in value.items()}

    def time(self, key: str) -> datetime | None:
        """An ISO-8601 timestamp (``2024-05-06T07:08:09.123Z``), or None."""
        value = self.opt_string(key)
        if value is None:
            return None
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise self._bad(key, "an ISO-8601 timestamp") from None


def _text(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__
