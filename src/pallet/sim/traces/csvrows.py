"""Reading CSV rows with errors that name the file, line and field; does file I/O."""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterator, Sequence
from pathlib import Path

from pallet.model.errors import TraceError

__all__ = ["Row", "read_rows"]


class Row:
    """One CSV row whose getters raise ``TraceError`` naming the file, line and field."""

    __slots__ = ("line", "path", "values")

    def __init__(self, path: str, line: int, values: dict[str, str]) -> None:
        self.path = path
        self.line = line
        self.values = values

    def error(self, field: str, message: str) -> TraceError:
        return TraceError(self.path, self.line, field, message)

    def text(self, field: str, default: str | None = None) -> str:
        value = self.values.get(field)
        if value is None or (value == "" and default is not None):
            if default is not None:
                return default
            raise self.error(field, "is missing")
        return value.strip()

    def integer(
        self, field: str, *, low: int = 0, high: int | None = None, default: int | None = None
    ) -> int:
        raw = self.values.get(field)
        if raw is None or raw.strip() == "":
            if default is not None:
                return default
            raise self.error(field, "is missing; expected a whole number")
        try:
            number = float(raw)
        except ValueError:
            raise self.error(field, f"{raw!r} is not a number") from None
        if number != int(number):
            raise self.error(field, f"{raw!r} is not a whole number")
        value = int(number)
        if value < low or (high is not None and value > high):
            bound = f"{low}..{high}" if high is not None else f">= {low}"
            raise self.error(field, f"{value} is out of range ({bound})")
        return value

    def number(self, field: str, *, low: float = 0.0) -> float:
        raw = self.values.get(field)
        if raw is None or raw.strip() == "":
            raise self.error(field, "is missing; expected a number")
        try:
            value = float(raw)
        except ValueError:
            raise self.error(field, f"{raw!r} is not a number") from None
        if value != value or value < low:
            raise self.error(field, f"{raw!r} must be a number >= {low}")
        return value


def read_rows(path: Path, required: Sequence[str]) -> Iterator[Row]:
    """Rows of a CSV file with a header (``.gz`` allowed); checks required columns."""
    if not path.is_file():
        raise TraceError(str(path), 0, "-", "file not found")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise TraceError(str(path), 1, "-", "file is empty; expected a header row") from None
        missing = [c for c in required if c not in header]
        if missing:
            raise TraceError(
                str(path), 1, missing[0], f"header lacks column(s) {', '.join(missing)}"
            )
        for number, cells in enumerate(reader, start=2):
            if not cells or all(not c.strip() for c in cells):
                continue
            if len(cells) > len(header):
                raise TraceError(
                    str(path), number, "-", f"{len(cells)} cells but the header has {len(header)}"
                )
            yield Row(str(path), number, dict(zip(header, cells, strict=False)))
