"""The agent's pure modules import no I/O, clock or randomness (as model and core)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pallet.agent

PURE = ("status", "events", "state", "environment", "health", "recovery")
FORBIDDEN = {
    "os", "io", "time", "random", "uuid", "socket", "subprocess", "pathlib", "shutil",
    "tempfile", "asyncio", "threading", "selectors", "signal", "psutil", "logging",
}  # fmt: skip
ALLOWED_AGENT_IMPORTS = {f"pallet.agent.{m}" for m in PURE}


@pytest.mark.parametrize("module", PURE)
def test_pure_module_imports(module: str) -> None:
    path = Path(pallet.agent.__file__).parent / f"{module}.py"
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            assert name.split(".")[0] not in FORBIDDEN, f"{module} imports {name}"
            if name.startswith("pallet.agent"):
                assert name in ALLOWED_AGENT_IMPORTS, f"{module} imports the shell: {name}"
            elif name.startswith("pallet."):
                assert name.startswith("pallet.model"), f"{module} imports {name}"
