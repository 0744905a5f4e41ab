"""Immutable JSON values for frozen specs: ``FrozenMap`` for objects, tuples for arrays; pure.

An ``AppSpec`` keeps the parts Pallet stores but does not interpret yet (container,
health checks, secrets ...) as frozen JSON, so the spec stays hashable and can never
be changed behind the store's back. ``thaw`` gives plain JSON back; since JSON has
no tuples, ``thaw(freeze(x)) == x`` for every JSON value ``x``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

__all__ = ["FrozenMap", "freeze", "thaw"]

V = TypeVar("V")


class FrozenMap(Mapping[str, V]):
    """An insertion-ordered, hashable, read-only mapping."""

    __slots__ = ("_data", "_hash")

    def __init__(self, items: Mapping[str, V] | None = None) -> None:
        self._data: dict[str, V] = dict(items or {})
        self._hash: int | None = None

    def __getitem__(self, key: str) -> V:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._data.items()))
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self._data) == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"


def freeze(value: Any) -> Any:
    """JSON -> immutable JSON: dicts become ``FrozenMap``, lists become tuples."""
    if isinstance(value, Mapping):
        return FrozenMap({str(k): freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Immutable JSON -> plain JSON (dicts and lists)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value
