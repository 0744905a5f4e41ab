"""``pallet.control`` reads no Marathon key: no camelCase key and none of the Marathon
keys control once read (``instances``, ``dependencies``, ``scaling``) is indexed, and
nothing looks inside an app's stored ``definition`` (it is the API edge's to read).

Exempt: the upgrade of records written before ``AppRecord`` had a ``format`` (it moves
those keys out of the way, once, on read), ``GroupRecord``'s own ``dependencies``, and
the Metronome job modules (``jobs_*``, not part of the app type)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pallet.control

CONTROL = Path(pallet.control.__file__).parent
CAMEL = re.compile(r"^[a-z]+[A-Z][A-Za-z0-9]*$")
ONCE_READ = frozenset({"instances", "dependencies", "scaling"})
EXEMPT = {("records.py", "_upgrade_format_1"), ("records.py", "GroupRecord")}


def _key(node: ast.AST) -> tuple[str | None, ast.expr | None]:
    """The constant key ``node`` indexes and what it indexes (None: not an index)."""
    if isinstance(node, ast.Subscript):
        s = node.slice
        if isinstance(s, ast.Constant) and isinstance(s.value, str):
            return s.value, node.value
        return None, node.value
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("get", "pop", "setdefault", "items", "keys", "values")
    ):
        arg = node.args[0] if node.args else None
        key = arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None
        return key, node.func.value
    return None, None


def _reads(tree: ast.Module, module: str) -> Iterator[str]:
    def walk(node: ast.AST, scope: tuple[str, ...]) -> Iterator[str]:
        for child in ast.iter_child_nodes(node):
            inner = scope
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                inner = (*scope, child.name)
                if any((module, name) in EXEMPT for name in inner):
                    continue
            key, target = _key(child)
            where = f"{module}:{getattr(child, 'lineno', 0)}"
            if key is not None and (CAMEL.match(key) or key in ONCE_READ):
                yield f"{where} reads {key!r}"
            if isinstance(target, ast.Attribute) and target.attr == "definition":
                yield f"{where} looks inside an app's definition"
            if isinstance(child, ast.Dict):
                for k in child.keys:
                    name = k.value if isinstance(k, ast.Constant) else None
                    if isinstance(name, str) and (CAMEL.match(name) or name in ONCE_READ):
                        yield f"{where} writes {name!r}"
            yield from walk(child, inner)

    yield from walk(tree, ())


def test_control_reads_no_marathon_key() -> None:
    found = []
    for path in sorted(CONTROL.glob("*.py")):
        if path.name.startswith("jobs_"):
            continue
        found += _reads(ast.parse(path.read_text()), path.name)
    assert found == []


def test_the_check_finds_what_it_looks_for() -> None:
    source = (
        "def f(app, doc):\n"
        "    a = doc['portDefinitions']\n"
        "    b = app.definition.get('cmd')\n"
        "    c = {**app.definition, 'instances': 2}\n"
    )
    found = list(_reads(ast.parse(source), "x.py"))
    assert found == [
        "x.py:2 reads 'portDefinitions'",
        "x.py:3 looks inside an app's definition",
        "x.py:4 writes 'instances'",
    ]
