"""Listings as ``render.listing`` prints them through Rich, without importing Rich; pure,
except that ``styled`` reads the environment and asks whether stdout is a terminal.

Rich costs a CLI command about 40 ms to import, more than ``pallet app list`` spends on
its request. The fast path (``pallet.cli.fast``) prints its table with ``listing_text``,
which writes the very bytes Rich writes for such a table (a test compares them on many
tables, on a terminal and off it) and gives up (None) on any cell whose width only Rich
knows how to measure (wide or combining characters, tabs, control characters).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TextIO

__all__ = ["listing_text", "num", "short", "styled"]

_BOLD = "\x1b[1m"
_RESET = "\x1b[0m"
_RULE = "─"
_EMPTY = "—"
_SAFE = frozenset(map(chr, range(0x20, 0x7F))) | {_EMPTY, "…"}
"""Characters one cell wide whatever the terminal: printable ASCII, the dash Pallet shows
for an empty cell, and the ellipsis ``short`` cuts with."""


def num(value: float | None) -> str:
    """``0.1`` -> ``0.1``, ``64.0`` -> ``64``, ``0.30000000000000004`` -> ``0.3``."""
    if value is None:
        return "—"
    return f"{value:.3f}".rstrip("0").rstrip(".")


def short(text: str, width: int = 48) -> str:
    """One line of at most ``width`` characters, ``…`` marking a cut."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def styled(stream: TextIO) -> bool | None:
    """Whether Rich's ``Console()`` on ``stream`` writes styles (bold headers), by Rich's
    own rules (``TTY_COMPATIBLE``, ``FORCE_COLOR``, a terminal); None where Rich draws
    the table otherwise: an output that is not UTF-8 (other characters), a dumb terminal
    (``TERM=dumb``: Rich takes it for 80 columns and folds wider tables)."""
    encoding = (getattr(stream, "encoding", None) or "utf-8").lower()
    if not encoding.startswith("utf"):
        return None
    compatible = os.environ.get("TTY_COMPATIBLE", "")
    force = os.environ.get("FORCE_COLOR")
    if compatible in ("0", "1"):
        terminal = compatible == "1"
    elif force is not None:
        terminal = force != ""
    else:
        try:
            terminal = stream.isatty()
        except ValueError:  # closed
            terminal = False
    if terminal and os.environ.get("TERM", "").lower() in ("dumb", "unknown"):
        return None
    return terminal


def listing_text(columns: Sequence[str], rows: Sequence[Sequence[str]], bold: bool) -> str | None:
    """``render.listing(None, columns, rows)`` printed by ``render.print_table``: columns
    named ``NAME>`` right-aligned, three spaces between columns, a rule under the header
    (bold when ``bold``), every line padded to the table's width. None when a cell holds a
    character outside ``_SAFE`` or spaces at its ends (Rich alone measures those)."""
    cells = [[c or _EMPTY for c in row] for row in rows]
    for row in cells:
        for c in row:
            if c != c.strip(" ") or not _SAFE.issuperset(c):
                return None
    names = [c.rstrip(">") for c in columns]
    right = [c.endswith(">") for c in columns]
    widths = [max([len(n), *(len(row[i]) for row in cells)]) for i, n in enumerate(names)]
    last = len(columns) - 1

    def fit(i: int, text: str) -> str:
        return text.rjust(widths[i]) if right[i] else text.ljust(widths[i])

    def line(texts: Sequence[str], style: bool) -> str:
        parts: list[str] = []
        for i, text in enumerate(texts):
            pieces = [" "] if i else []  # no pad at the table's edges (``pad_edge=False``)
            pieces.append(fit(i, text))
            if i != last:
                pieces.append(" ")
            if style:
                pieces = [f"{_BOLD}{p}{_RESET}" for p in pieces]
            parts.append("".join(pieces))
        return " ".join(parts)  # the column divider of ``box.SIMPLE_HEAD`` is a space

    total = sum(widths) + 3 * last
    out = [line(names, bold), _RULE * total, *(line(row, False) for row in cells)]
    return "\n".join(out) + "\n"
