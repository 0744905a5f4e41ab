"""Helpers shared by CLI commands: parsing lists, printing JSON and tables."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from pallet.errors import ValidationError

__all__ = ["console", "parse_ints", "parse_names", "print_json", "table"]

console = Console()


def parse_ints(text: str, option: str) -> tuple[int, ...]:
    """``42,43`` or ``42-51`` -> (42, 43) / (42, ..., 51)."""
    values: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            if "-" in part[1:]:
                lo, hi = part.split("-", 1)
                values.extend(range(int(lo), int(hi) + 1))
            else:
                values.append(int(part))
        except ValueError:
            raise ValidationError(
                option, f"{part!r} is not a whole number or a range like 42-51"
            ) from None
    if not values:
        raise ValidationError(option, "give at least one number")
    return tuple(values)


def parse_names(text: str, option: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    names = tuple(filter(None, (p.strip() for p in text.split(","))))
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise ValidationError(
            option, f"unknown {', '.join(unknown)}; choose from {', '.join(allowed)}"
        )
    if not names:
        raise ValidationError(option, "give at least one name")
    return names


def print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2) + "\n")


def table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    t = Table(title=title)
    for i, c in enumerate(columns):
        t.add_column(c, justify="left" if i == 0 else "right")
    for row in rows:
        t.add_row(*["—" if v is None else str(v) for v in row])
    return t
