"""Shared pytest configuration: markers for slow, root-only and real-trace tests."""

from __future__ import annotations

import os

import pytest


def _traces_missing() -> str | None:
    """Why the shared traces cannot be read, or None when they can."""
    from pallet.model.errors import PalletError
    from pallet.sim.traces.paths import traces_dir

    try:
        traces_dir()
    except PalletError as exc:
        return str(exc)
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    in_ci = bool(os.environ.get("CI"))
    if any("traces" in item.keywords for item in items) and (why := _traces_missing()):
        for item in items:
            if "traces" in item.keywords:
                if in_ci:
                    raise pytest.UsageError(f"{item.nodeid} reads the shared traces: {why}")
                item.add_marker(pytest.mark.skip(reason=f"needs ../shared/traces: {why}"))
    if os.geteuid() == 0:
        return
    for item in items:
        if "root" in item.keywords:
            if in_ci:
                raise pytest.UsageError(f"{item.nodeid} needs root but CI runs it as a normal user")
            item.add_marker(pytest.mark.skip(reason="needs root (cgroups, namespaces); runs in CI"))
