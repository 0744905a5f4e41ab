"""A store written before app records had a ``format`` (``store_capture.py`` wrote the
fixture with that code) loads, answers the API as it did, and acts on its apps: the
count moved out of the Marathon definition into ``RunSpec``, dependencies typed."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from pallet.api import create_api
from pallet.control import Control, ControlConfig
from pallet.control.layout import app_key
from pallet.control.records import AppRecord, RunSpec, decode, encode
from pallet.model.app import AppSpec
from pallet.model.clock import FakeClock
from pallet.store import open_store

from .conftest import INFO

pytestmark = pytest.mark.anyio

FIXTURE = json.loads((Path(__file__).parent / "data" / "store_format1.json").read_text())


@pytest.fixture
async def old() -> AsyncIterator[tuple[Control, httpx.AsyncClient]]:
    clock = FakeClock(FIXTURE["clock"])
    store = await open_store("memory://", clock=clock, expiry_interval=None)
    for key, value in FIXTURE["kvs"].items():
        await store.put(key, value.encode())
    counter = itertools.count(100)
    control = Control(
        store,
        ControlConfig(heartbeat_grace=5.0, seed=3),
        clock=clock,
        new_id=lambda: f"id{next(counter)}",
    )
    await control.load()
    app = create_api(control, INFO, manage_control=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://master") as client:
        yield control, client
    await control.stop()
    await store.close()


def test_the_fixture_is_the_old_encoding() -> None:
    """Guards the fixture itself: no ``format``, the count inside the definition."""
    web = json.loads(FIXTURE["kvs"][app_key("/web")])
    assert "format" not in web and web["definition"]["instances"] == 3
    assert "dependencies" not in web["run"]


@pytest.mark.parametrize("path", sorted(FIXTURE["answers"]))
async def test_reads_answer_as_before(old: tuple[Control, httpx.AsyncClient], path: str) -> None:
    _, api = old
    r = await api.get(path)
    assert r.status_code == 200
    if path == "/v2/pods":
        # Equal as JSON, not byte for byte: a pod's definition is rendered as stored, and
        # the store's encoding sorts keys, so every master renders a pod it loaded in
        # sorted key order (the old code too); the fixture is the old code's answer
        # before any reload.
        assert r.json() == FIXTURE["answers"][path]
    else:
        assert json.dumps(r.json()) == json.dumps(FIXTURE["answers"][path])


async def test_records_are_upgraded_on_read(old: tuple[Control, httpx.AsyncClient]) -> None:
    control, _ = old
    apps = control.state.apps
    web = apps["/web"]
    assert isinstance(web.definition, AppSpec) and web.definition.instances == 0
    assert web.instances == web.spec.instances == 3
    assert apps["/prod/api"].run.dependencies == ("/prod/db",)
    assert apps["/shop/web"].run.dependencies == ("/shop/db",)
    assert apps["/pods/p1"].definition["scaling"] == {"kind": "fixed"}
    assert apps["/pods/p1"].instances == 2
    for d in control.state.deployments.values():  # what a rollback would return to
        for doc in (*d.originals.values(), *d.targets.values()):
            if doc is not None:
                record = AppRecord.from_json(doc)
                assert record.is_pod or isinstance(record.definition, AppSpec)
    for record in apps.values():  # and written again, the app is stored once
        doc = record.to_json()
        assert doc["format"] == 3 and ("run" in doc) == record.is_pod
        assert AppRecord.from_json(decode(encode(doc))) == record


async def test_a_scale_of_an_old_app_is_a_scale(old: tuple[Control, httpx.AsyncClient]) -> None:
    control, api = old
    before = control.state.apps["/prod/db"]
    r = await api.put("/v2/apps/prod/db?force=true", json={"instances": 4})
    assert r.status_code == 200, r.text
    after = control.state.apps["/prod/db"]
    assert after.instances == 4 and after.config_version == before.config_version
    assert (await api.get("/v2/apps/prod/db")).json()["app"]["instances"] == 4
    kv = await control.store.get(app_key("/prod/db"))
    assert kv is not None and AppRecord.from_json(decode(kv.value)) == after


async def test_an_old_group_version_restores(old: tuple[Control, httpx.AsyncClient]) -> None:
    control, api = old
    r = await api.put("/v2/groups/shop?force=true", json={"scaleBy": 3})
    assert r.status_code == 200, r.text
    assert control.state.apps["/shop/web"].instances == 6
    (version,) = FIXTURE["answers"]["/v2/groups/shop/versions"]
    config = control.state.apps["/shop/web"].config_version
    r = await api.put("/v2/groups/shop?force=true", json={"version": version})
    assert r.status_code == 200, r.text
    web = control.state.apps["/shop/web"]
    assert (web.instances, web.config_version) == (2, config)  # back by a scale
    assert web.run.dependencies == ("/shop/db",)


def test_the_projection_gives_what_the_old_code_stored() -> None:
    """``run_spec`` (pure, in ``model``) of each stored app, which is what a record's
    ``run`` is now, is the ``RunSpec`` the old code (then in ``api.convert``, reading
    through pydantic) stored beside the definition (dependencies since read from it)."""
    checked = 0
    for key, value in FIXTURE["kvs"].items():
        if not (key.startswith("/pallet/apps/") or key.startswith("/pallet/versions/")):
            continue
        doc = decode(value.encode())
        stored = RunSpec.from_json(doc["run"])
        if stored.is_pod:
            continue
        dependencies = tuple(doc["definition"].get("dependencies") or ())
        assert AppRecord.from_json(doc).run == replace(stored, dependencies=dependencies)
        checked += 1
    assert checked >= 6
