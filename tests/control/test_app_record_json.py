"""An app record's JSON is rendered once and kept: what it answers is what a fresh
rendering would be, whatever was derived from the record since."""

from __future__ import annotations

from dataclasses import replace

from pallet.control import AppRecord
from pallet.control.bus import AppTerminated

from .conftest import definition, run_spec


def _fresh(app: AppRecord) -> dict[str, object]:
    return replace(app, version=app.version).to_json()  # a new record: nothing kept


def test_the_kept_json_is_what_a_fresh_rendering_gives() -> None:
    app = AppRecord("/web", "v1", "v1", "v1", definition("/web"), run_spec(2))
    first = app.to_json()
    first["version"] = "changed by a caller"  # a copy: the record's is untouched
    assert app.to_json() == _fresh(app)
    scaled = replace(app, version="v2", run=run_spec(3))
    assert scaled.to_json()["version"] == "v2"
    assert scaled.to_json()["app"]["instances"] == 3
    stable = scaled.with_stable()
    assert stable.stable_version == "v2"
    assert stable.to_json() == _fresh(stable)
    assert stable == replace(scaled, stable_version="v2")
    assert AppRecord.from_json(stable.to_json()).to_json() == stable.to_json()


def test_an_app_terminated_event_reads_its_app_when_asked() -> None:
    app = AppRecord("/web", "v1", "v1", "v1", definition("/web"), run_spec(2))
    event = AppTerminated.of(app.to_json(), 5.0)
    assert event.app_id == "/web"
    assert event.app.id == "/web"
    assert event.app.to_json() == app.to_json()
