"""Rich renderings shared by the cluster commands: listings, key-value panels, numbers,
ages; pure except that ``age`` reads the clock when not given ``now``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from rich import box
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from pallet.cli.plain import num, short
from pallet.client import Task

__all__ = [
    "age",
    "cell",
    "details",
    "escape",
    "listing",
    "num",
    "print_table",
    "say",
    "short",
    "task_table",
]


def age(moment: datetime | None, now: datetime | None = None) -> str:
    """``12s ago``, ``5m ago``, ``3h ago``, ``2d ago``; ``—`` when unknown."""
    if moment is None:
        return "—"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = max(0, int(((now or datetime.now(UTC)) - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def print_table(console: Console, renderable: RenderableType) -> None:
    """Print a table at its natural width, as kubectl does: on a narrow terminal the lines
    run on instead of every column being squeezed into a few letters per line."""
    natural = Measurement.get(console, console.options.update(width=10_000), renderable).maximum
    if natural <= console.width:
        console.print(renderable)
        return
    wide = Console(
        file=console.file,
        width=natural,
        color_system=cast(Any, console.color_system),  # the str it reports is one it takes
        force_terminal=console.is_terminal,
        no_color=console.no_color,
    )
    wide.print(renderable, crop=False)


def say(console: Console, text: str, markup: str = "") -> None:
    """One line of plain text (Rich markup in ``text`` is not read), never broken by Rich;
    ``markup`` (such as ``[green]✓[/] ``) goes in front of it."""
    console.print(markup + escape(text), soft_wrap=True)


def cell(value: object) -> Text:
    """A table cell shown as it is: text from the master (commands, messages, labels) may
    hold brackets that Rich would read as markup. ``Text`` values keep their style."""
    if isinstance(value, Text):
        return value
    return Text("—" if value is None or value == "" else str(value))


def listing(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> Table:
    """A compact table whose first column (the id) never wraps, so it can be copied whole;
    the others wrap when the terminal is narrow. Columns named ``NAME>`` hold numbers
    (right-aligned, shown without the ``>``)."""
    table = Table(
        title=escape(title) if title else None,
        title_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    for i, column in enumerate(columns):
        table.add_column(
            column.rstrip(">"),
            justify="right" if column.endswith(">") else "left",
            no_wrap=i == 0,
            overflow="fold",
        )
    for row in rows:
        table.add_row(*[cell(v) for v in row])
    return table


def details(title: str, pairs: Iterable[tuple[str, object]]) -> Table:
    """A two-column ``key  value`` table without borders; empty values are left out."""
    table = Table(
        title=escape(title), title_justify="left", show_header=False, box=None, padding=(0, 2)
    )
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in pairs:
        if value not in (None, "", ()):
            table.add_row(key, cell(value))
    return table


def task_table(title: str | None, tasks: Iterable[Task], with_app: bool) -> Table:
    """Tasks as rows: id, (app,) state, host, node, ports, started."""
    rows = []
    for task in tasks:
        ports = ",".join(str(p) for p in task.ports)
        row: list[object] = [task.id]
        if with_app:
            row.append(task.app_id)
        row += [
            task.state.removeprefix("TASK_"),
            task.host,
            task.node_id,
            ports,
            age(task.started_at),
        ]
        rows.append(row)
    columns = ["ID", *(["APP"] if with_app else []), "STATE", "HOST", "NODE", "PORTS", "STARTED"]
    return listing(title, columns, rows)
