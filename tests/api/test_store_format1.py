"""Stores written by older code (``store_capture.py`` wrote each fixture with it) load,
answer the API as they did, and act on their apps: format 1, before app records had a
``format`` (the count inside the Marathon definition), and format 2 (the Marathon
definition beside its ``RunSpec``); both are upgraded on read to format 3, the app's
``AppSpec`` alone, its ``RunSpec`` computed from it."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from factories import memory_control
from pallet.api import create_api
from pallet.control import Control
from pallet.control.layout import app_key
from pallet.control.records import AppRecord, RunSpec, decode, encode
from pallet.model.app import AppSpec
from pallet.model.clock import FakeClock

from .conftest import INFO

pytestmark = pytest.mark.anyio

DATA = Path(__file__).parent / "data"
FIXTURES = {n: json.loads((DATA / f"store_format{n}.json").read_text()) for n in (1, 2)}
FIXTURE = FIXTURES[1]
Old = tuple[Control, httpx.AsyncClient, dict[str, Any]]


@pytest.fixture(params=sorted(FIXTURES), ids=lambda n: f"format{n}")
async def old(request: pytest.FixtureRequest) -> AsyncIterator[Old]:
    fixture = FIXTURES[request.param]
    clock = FakeClock(fixture["clock"])
    counter = itertools.count(100)
    async with memory_control(
        clock, new_id=lambda: f"id{next(counter)}", kvs=fixture["kvs"], seed=3
    ) as control:
        app = create_api(control, INFO, manage_control=False)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://master") as client:
            yield control, client, fixture


def test_the_fixture_is_the_old_encoding() -> None:
    """Guards the fixture itself: no ``format``, the count inside the definition."""
    web = json.loads(FIXTURE["kvs"][app_key("/web")])
    assert "format" not in web and web["definition"]["instances"] == 3
    assert "dependencies" not in web["run"]
    web2 = json.loads(FIXTURES[2]["kvs"][app_key("/web")])
    assert web2["format"] == 2 and "instances" not in web2["definition"]


@pytest.mark.parametrize("path", sorted(FIXTURE["answers"]))
async def test_reads_answer_as_before(old: Old, path: str) -> None:
    _, api, fixture = old
    r = await api.get(path)
    assert r.status_code == 200
    if path == "/v2/pods":
        # Equal as JSON, not byte for byte: a pod's definition is rendered as stored, and
        # the store's encoding sorts keys, so every master renders a pod it loaded in
        # sorted key order (the old code too); the fixture is the old code's answer
        # before any reload.
        assert r.json() == fixture["answers"][path]
    else:
        assert json.dumps(r.json()) == json.dumps(fixture["answers"][path])


async def test_records_are_upgraded_on_read(old: Old) -> None:
    control, _, _ = old
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


async def test_a_scale_of_an_old_app_is_a_scale(old: Old) -> None:
    control, api, _ = old
    before = control.state.apps["/prod/db"]
    r = await api.put("/v2/apps/prod/db?force=true", json={"instances": 4})
    assert r.status_code == 200, r.text
    after = control.state.apps["/prod/db"]
    assert after.instances == 4 and after.config_version == before.config_version
    assert (await api.get("/v2/apps/prod/db")).json()["app"]["instances"] == 4
    kv = await control.store.get(app_key("/prod/db"))
    assert kv is not None and AppRecord.from_json(decode(kv.value)) == after


async def test_an_old_group_version_restores(old: Old) -> None:
    control, api, fixture = old
    r = await api.put("/v2/groups/shop?force=true", json={"scaleBy": 3})
    assert r.status_code == 200, r.text
    assert control.state.apps["/shop/web"].instances == 6
    (version,) = fixture["answers"]["/v2/groups/shop/versions"]
    config = control.state.apps["/shop/web"].config_version
    r = await api.put("/v2/groups/shop?force=true", json={"version": version})
    assert r.status_code == 200, r.text
    web = control.state.apps["/shop/web"]
    assert (web.instances, web.config_version) == (2, config)  # back by a scale
    assert web.run.dependencies == ("/shop/db",)


@pytest.mark.parametrize("form", sorted(FIXTURES))
def test_the_projection_gives_what_the_old_code_stored(form: int) -> None:
    """``run_spec`` (pure, in ``model``) of each stored app, which is what a record's
    ``run`` is now, is the ``RunSpec`` the old code (then in ``api.convert``, reading
    through pydantic) stored beside the definition (dependencies since read from it)."""
    checked = 0
    for key, value in FIXTURES[form]["kvs"].items():
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
