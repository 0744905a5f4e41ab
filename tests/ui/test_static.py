"""The dashboard's assets as the package ships them: every module a page imports exists, nothing
is fetched from elsewhere, and ``mount_ui`` serves the page at ``/`` and the assets under ``/ui``."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from pallet.api import create_api
from pallet.api.marathon import InfoSettings
from pallet.control import Control, ControlConfig
from pallet.store import open_store
from pallet.ui import index_html, static_dir
from pallet.ui.serve import mount_ui

IMPORT = re.compile(r"""(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+["']([^"']+)["']""")
REMOTE = re.compile(
    r"""(?:src|href)\s*=\s*["'](?:https?:)?//|url\(\s*["']?(?:https?:)?//|https?://(?!www\.w3\.org/2000/svg)"""
)


def assets() -> list[Path]:
    return sorted(p for p in static_dir().rglob("*") if p.is_file())


def test_the_page_and_its_modules_are_package_data() -> None:
    names = {p.relative_to(static_dir()).as_posix() for p in assets()}
    assert {"index.html", "pallet.css", "js/main.js"} <= names
    assert index_html().is_file()


@pytest.mark.parametrize("module", [p for p in assets() if p.suffix == ".js"], ids=lambda p: p.name)
def test_every_import_resolves_to_a_shipped_file(module: Path) -> None:
    for target in IMPORT.findall(module.read_text()):
        assert target.startswith("."), f"{module.name} imports {target!r}: only relative modules"
        assert (module.parent / target).resolve().is_file(), f"{module.name}: {target} is missing"


@pytest.mark.parametrize("asset", assets(), ids=lambda p: p.name)
def test_nothing_is_loaded_from_another_site(asset: Path) -> None:
    if asset.suffix not in (".html", ".css", ".js", ".svg"):
        return
    found = REMOTE.findall(asset.read_text())
    assert not found, f"{asset.name} refers to another site: {found}"


def test_mount_serves_the_page_at_root_and_assets_under_ui() -> None:
    app = Starlette()
    mount_ui(app)

    async def fetch() -> dict[str, httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ui") as http:
            return {
                "page": await http.get("/"),
                "head": await http.head("/"),
                "js": await http.get("/ui/js/main.js"),
                "css": await http.get("/ui/pallet.css"),
                "missing": await http.get("/ui/js/nope.js"),
            }

    got = asyncio.run(fetch())
    page = got["page"]
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'src="ui/js/main.js"' in page.text
    assert page.headers["cache-control"] == "no-cache"
    assert got["head"].status_code == 200
    assert got["js"].status_code == 200
    assert "javascript" in got["js"].headers["content-type"]
    assert got["js"].headers["cache-control"] == "no-cache"
    assert got["css"].headers["content-type"].startswith("text/css")
    assert got["missing"].status_code == 404


def test_the_master_serves_the_dashboard_beside_its_api() -> None:
    info = InfoSettings(
        version="0.1.0",
        leader="127.0.0.1:8080",
        elected=True,
        cluster_id="ui-test",
        hostname="127.0.0.1",
        http_port=8080,
        store_url="memory://",
    )

    async def fetch() -> list[httpx.Response]:
        store = await open_store("memory://", clock=lambda: 1.7e9, expiry_interval=None)
        control = Control(store, ControlConfig(seed=1), clock=lambda: 1.7e9)
        await control.load()
        app = create_api(control, info, manage_control=False)
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://m") as http:
                return [await http.get(p) for p in ("/", "/ui/js/main.js", "/v2/apps")]
        finally:
            await control.stop()
            await store.close()

    page, module, apps = asyncio.run(fetch())
    assert page.status_code == 200 and "<main" in page.text
    assert module.status_code == 200
    assert apps.json() == {"apps": []}
