"""Marathon placement constraints: the operators, parsing and validation; pure.

Semantics (Marathon 1.x ``Constraints.scala``), for a candidate node whose value of
the field is ``v`` and the app's already placed tasks:

- a node without the field matches only ``UNLIKE``;
- ``UNIQUE``: no placed task has value ``v``;
- ``CLUSTER``: with a value, ``v`` equals it; without one, ``v`` equals the value
  of the tasks already placed (any value if none is placed yet);
- ``GROUP_BY [n]``: ``v`` is a value no placed task has yet, or it is one of the
  least-loaded values and at least ``n`` values are in use;
- ``LIKE`` / ``UNLIKE``: ``v`` matches / does not match the regex, whole string;
- ``MAX_PER n``: fewer than ``n`` placed tasks have value ``v``;
- ``IS``: ``v`` equals the value; ``IN``: ``v`` is one of a comma-separated list.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass

from pallet.model.errors import ValidationError

__all__ = ["Constraint", "Operator", "parse_constraints"]


class Operator(enum.StrEnum):
    UNIQUE = "UNIQUE"
    CLUSTER = "CLUSTER"
    GROUP_BY = "GROUP_BY"
    LIKE = "LIKE"
    UNLIKE = "UNLIKE"
    MAX_PER = "MAX_PER"
    IS = "IS"
    IN = "IN"


_NEEDS_VALUE = {Operator.LIKE, Operator.UNLIKE, Operator.MAX_PER, Operator.IS, Operator.IN}


@dataclass(frozen=True, slots=True)
class Constraint:
    """``[field, operator, value]`` as in a Marathon app definition."""

    field: str
    operator: Operator
    value: str = ""

    def __post_init__(self) -> None:
        if self.operator in (Operator.LIKE, Operator.UNLIKE):
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ValidationError(
                    "/constraints", f"{self.operator} value {self.value!r} is not a regex: {exc}"
                ) from None
        if self.operator is Operator.MAX_PER and not _is_positive_int(self.value):
            raise ValidationError(
                "/constraints", f"MAX_PER needs a positive whole number, not {self.value!r}"
            )
        if (
            self.operator is Operator.GROUP_BY
            and self.value
            and not (_is_positive_int(self.value) or self.value == "inf")
        ):
            raise ValidationError(
                "/constraints", f"GROUP_BY takes an optional group count, not {self.value!r}"
            )

    @property
    def group_minimum(self) -> int:
        """GROUP_BY's minimum number of groups (0 when not given)."""
        if self.value == "inf":
            return 2**31 - 1
        return int(self.value) if self.value else 0

    def to_marathon(self) -> list[str]:
        return (
            [self.field, self.operator.value, self.value]
            if self.value
            else [
                self.field,
                self.operator.value,
            ]
        )

    def __str__(self) -> str:
        return " ".join(self.to_marathon())


def _is_positive_int(text: str) -> bool:
    return text.isdigit() and int(text) > 0


def parse_constraints(raw: object, path: str = "/constraints") -> tuple[Constraint, ...]:
    """Parse Marathon's ``[["hostname", "UNIQUE"], ["rack", "GROUP_BY", "3"]]``."""
    if raw is None:
        return ()
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise ValidationError(path, "must be a list of [field, operator, value?] lists")
    result = []
    for i, item in enumerate(raw):
        here = f"{path}({i})"
        if isinstance(item, str) or not isinstance(item, Sequence) or not 2 <= len(item) <= 3:
            raise ValidationError(
                here, "each constraint is [field, operator] or [field, operator, value]"
            )
        if not all(isinstance(x, str) for x in item):
            raise ValidationError(here, "constraint parts must be strings")
        fld, op = item[0], item[1].upper()
        value = item[2] if len(item) == 3 else ""
        if not fld:
            raise ValidationError(here, "the field name must not be empty")
        try:
            operator = Operator(op)
        except ValueError:
            names = ", ".join(o.value for o in Operator)
            raise ValidationError(
                here, f"unknown operator {item[1]!r}; use one of {names}"
            ) from None
        if operator in _NEEDS_VALUE and not value:
            raise ValidationError(here, f"{operator} needs a value")
        try:
            result.append(Constraint(fld, operator, value))
        except ValidationError as exc:
            raise ValidationError(here, exc.message) from None
    return tuple(result)
