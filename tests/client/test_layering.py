"""The client depends on ``pallet.model`` and ``pallet.errors`` only, so scripts and tests can
use it without the master's code; its pure modules (calls as data, errors, reading JSON)
do no I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pallet.client

SOURCE = Path(pallet.client.__file__).parent
MODULES = sorted(p.stem for p in SOURCE.glob("*.py"))
PURE = ("calls", "errors", "models", "reader")
IO = {"os", "io", "time", "socket", "asyncio", "pathlib", "subprocess", "threading", "httpx"}


def imports(module: str) -> list[str]:
    tree = ast.parse((SOURCE / f"{module}.py").read_text())
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


@pytest.mark.parametrize("module", MODULES)
def test_the_client_imports_only_the_model_of_pallet(module: str) -> None:
    for name in imports(module):
        if name.startswith("pallet.") and not name.startswith("pallet.client"):
            allowed = name.startswith("pallet.model") or name == "pallet.errors"
            assert allowed, f"client.{module} imports {name}"


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_do_no_io(module: str) -> None:
    for name in imports(module):
        assert name.split(".")[0] not in IO, f"client.{module} imports {name}"
