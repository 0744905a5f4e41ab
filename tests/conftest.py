"""Shared pytest configuration: markers for slow and root-only tests."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    in_ci = bool(os.environ.get("CI"))
    if os.geteuid() == 0:
        return
    for item in items:
        if "root" in item.keywords:
            if in_ci:
                raise pytest.UsageError(f"{item.nodeid} needs root but CI runs it as a normal user")
            item.add_marker(pytest.mark.skip(reason="needs root (cgroups, namespaces); runs in CI"))
