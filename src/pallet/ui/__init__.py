"""The web dashboard: plain HTML, CSS and ES modules under ``static/`` (no build step),
served by the master at ``/`` and ``/ui/``; it talks only to the public API. Pure (paths only).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["index_html", "static_dir"]

_STATIC = Path(__file__).resolve().parent / "static"


def static_dir() -> Path:
    """The directory of the dashboard's assets, installed as package data."""
    return _STATIC


def index_html() -> Path:
    """The dashboard's single page."""
    return _STATIC / "index.html"
