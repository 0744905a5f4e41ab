"""Fixtures for route tests: the master's API over a memory store, driven through httpx's
ASGI transport; control's loops are run by hand with a fake clock."""

from __future__ import annotations

import collections
import collections.abc
import itertools
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from factories import INFO, memory_control
from pallet.api import create_api
from pallet.control import Control
from pallet.model.clock import FakeClock

# marathon 0.13.0 still uses the aliases removed from ``collections`` in Python 3.10.
for _name in ("Iterable", "Mapping", "MutableMapping", "Sequence"):
    if not hasattr(collections, _name):
        setattr(collections, _name, getattr(collections.abc, _name))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def control(clock: FakeClock) -> AsyncIterator[Control]:
    async with memory_control(clock, seed=3) as ctl:
        yield ctl


@pytest.fixture
async def api(control: Control) -> AsyncIterator[httpx.AsyncClient]:
    app = create_api(control, INFO, manage_control=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://master") as client:
        yield client


def node_body(i: int, mem: int = 1024) -> dict[str, Any]:
    return {
        "node": {
            "id": f"node-{i}",
            "hostname": f"127.0.0.{i + 2}",
            "capacity": [2000, mem, 1000, 0],
            "ports": [f"{31000 + 100 * i}-{31099 + 100 * i}"],
            "attributes": {"rack": f"r{i}"},
        },
        "address": f"http://127.0.0.{i + 2}:5051",
        "boot_id": "boot-1",
    }


async def register(api: httpx.AsyncClient, count: int = 3) -> None:
    for i in range(count):
        r = await api.post("/v1/agent/register", json=node_body(i))
        assert r.status_code == 200, r.text


def ids() -> itertools.count[int]:
    return itertools.count()


@pytest.fixture
async def secure(control: Control, clock: FakeClock) -> AsyncIterator[Any]:
    """The API with authentication on (``secure.Secure``)."""
    from .secure import make_secure

    async for s in make_secure(control, clock):
        yield s
