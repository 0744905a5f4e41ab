"""Mounting the dashboard on the master's HTTP app: assets under ``/ui``, the page at ``/``;
does I/O (file reads through Starlette).

Assets are revalidated on every load (``Cache-Control: no-cache`` with ETags), so an upgraded
Pallet never runs a stale mix of modules; a 304 keeps that cheap.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from pallet.ui import index_html, static_dir

__all__ = ["mount_ui"]

_NO_CACHE = {"Cache-Control": "no-cache"}


class _Assets(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(_NO_CACHE)
        return response


def mount_ui(app: Starlette) -> None:
    """Serve the dashboard from ``app``: ``GET /`` is its page, ``/ui/...`` its assets."""
    app.mount("/ui", _Assets(directory=static_dir()), name="ui")

    async def index(request: Request) -> Response:
        return FileResponse(index_html(), headers=_NO_CACHE)

    app.add_route("/", index, methods=["GET", "HEAD"], include_in_schema=False)
