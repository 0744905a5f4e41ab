"""Reading the master–agent messages' JSON: each helper checks one value and raises
``ValidationError`` naming its path; pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pallet.model.errors import ValidationError

__all__ = [
    "MAX_ITEMS",
    "MAX_TEXT",
    "fields_of",
    "read_bool",
    "read_float",
    "read_int",
    "read_list",
    "read_obj",
    "read_str",
    "read_str_map",
]

MAX_ITEMS = 100_000
MAX_TEXT = 10 * 1024 * 1024


def read_obj(raw: object, path: str, known: frozenset[str] | None = None) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise ValidationError(path or "/", "must be a JSON object")
    if known is not None:
        extra = sorted(set(raw) - known)
        if extra:
            raise ValidationError(f"{path}/{extra[0]}", "is not a field of this message")
    return raw


def read_list(raw: object, path: str, limit: int = MAX_ITEMS) -> list[Any]:
    if not isinstance(raw, list | tuple):
        raise ValidationError(path, "must be a list")
    if len(raw) > limit:
        raise ValidationError(path, f"must have at most {limit} items")
    return list(raw)


def read_str(raw: object, path: str, limit: int = MAX_TEXT) -> str:
    if not isinstance(raw, str):
        raise ValidationError(path, "must be a string")
    if len(raw) > limit:
        raise ValidationError(path, f"must be at most {limit} characters")
    return raw


def read_int(raw: object, path: str, low: int, high: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise ValidationError(path, "must be an integer")
    if not low <= raw <= high:
        raise ValidationError(path, f"must be between {low} and {high}")
    return raw


def read_float(raw: object, path: str, low: float, high: float) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ValidationError(path, "must be a number")
    if not low <= raw <= high:
        raise ValidationError(path, f"must be between {low:g} and {high:g}")
    return float(raw)


def read_str_map(raw: object, path: str) -> dict[str, str]:
    doc = read_obj(raw, path)
    for key, value in doc.items():
        if not isinstance(value, str):
            raise ValidationError(f"{path}/{key}", "must be a string")
    return dict(doc)


def fields_of(cls: type) -> frozenset[str]:
    return frozenset(getattr(cls, "__dataclass_fields__", ()))


RESOURCE_KEYS = {"cpus": "cpu_milli", "mem": "mem_mib", "disk": "disk_mib", "gpus": "gpu_milli"}
"""The resource keys written before they were named by their units (agent checkpoints
and stored records keep them), and their names now."""


def renamed(raw: Mapping[str, Any], old_to_new: Mapping[str, str]) -> dict[str, Any]:
    """``raw`` with each old key that is there under its new name (a new key wins)."""
    doc = dict(raw)
    for old, new in old_to_new.items():
        if old in doc:
            value = doc.pop(old)
            doc.setdefault(new, value)
    return doc


def read_bool(raw: object, path: str) -> bool:
    if not isinstance(raw, bool):
        raise ValidationError(path, "must be true or false")
    return raw
