"""Fixtures for the API tests: apps read through the whole Marathon pipeline, and the
Python Marathon client (``marathon`` 0.13.0) made importable on Python 3.10+."""

from __future__ import annotations

import collections
import collections.abc
from datetime import UTC, datetime
from typing import Any

import pytest

from pallet.api.marathon import AppSpec, normalize_app, read_app

# marathon 0.13.0 still uses the aliases removed from ``collections`` in Python 3.10.
for _name in ("Iterable", "Mapping", "MutableMapping", "Sequence"):
    if not hasattr(collections, _name):
        setattr(collections, _name, getattr(collections.abc, _name))

VERSION = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
VERSION_TEXT = "2024-05-06T07:08:09.123Z"


def spec_of(body: dict[str, Any]) -> AppSpec:
    """An app body through reading, validation and normalisation."""
    return normalize_app(read_app(body))


@pytest.fixture
def version() -> datetime:
    return VERSION
