"""Shared pytest configuration: markers for slow, root-only and real-trace tests; a real
registry with the test images (built from this machine's files) for the container tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from oci import PushedImages, Registry


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


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """Debian's docker-registry on a free loopback port, with the test images pushed:
    see ``PushedImages``."""
    from oci import run_registry

    with run_registry(tmp_path_factory.mktemp("registry")) as reg:
        yield reg


@pytest.fixture(scope="session")
def images(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> PushedImages:
    from oci import push_test_images

    return push_test_images(registry, tmp_path_factory.mktemp("layouts"))
