"""The store's encoding of ``AppSpec`` (``model.app_codec``) gives back the same spec, for
real app definitions taken from the round-trip suite, in the store's key order."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.api.marathon.test_marathon_roundtrip import BODIES

from pallet.api.marathon import normalize_app, read_app
from pallet.model.app import AppSpec, SecretRef
from pallet.model.app_codec import app_from_json, app_to_json, stored_form
from pallet.model.frozen import FrozenMap


def _spec(body: dict[str, Any]) -> AppSpec:
    return normalize_app(read_app(body))


@pytest.mark.parametrize("body", BODIES, ids=lambda b: str(b["id"]))
def test_json_and_back_is_the_same_spec(body: dict[str, Any]) -> None:
    spec = _spec(body)
    doc = app_to_json(spec)
    assert app_from_json(json.loads(json.dumps(doc))) == spec
    assert app_to_json(app_from_json(doc)) == doc


def test_the_encoding_uses_pallets_names_only() -> None:
    doc = app_to_json(AppSpec(id="/a", env=FrozenMap({"PW": SecretRef("pw"), "X": "1"})))
    assert "portDefinitions" not in doc and "port_definitions" in doc
    assert doc["env"] == {"PW": {"secret": "pw"}, "X": "1"}
    assert app_from_json(doc).env["PW"] == SecretRef("pw")


def test_a_field_an_older_encoding_lacks_takes_its_default() -> None:
    assert app_from_json({"id": "/a", "cmd": "true"}) == AppSpec(id="/a", cmd="true")


def test_the_stored_form_has_its_objects_in_sorted_key_order() -> None:
    spec = AppSpec(id="/a", labels=FrozenMap({"b": "1", "a": "2"}))
    assert list(stored_form(spec).labels) == ["a", "b"]
    assert stored_form(spec) == spec


def test_the_kept_fields_are_one_bag() -> None:
    """What Pallet stores only to render it back is one field of the encoding."""
    spec = _spec({"id": "/a", "cmd": "true", "executor": "//cmd", "tty": False})
    doc = app_to_json(spec)
    assert doc["kept"]["executor"] == "//cmd" and doc["kept"]["tty"] is False
    assert "executor" not in doc and "tty" not in doc
    assert app_from_json(doc).kept == spec.kept


def test_the_first_encoding_kept_those_fields_at_the_top() -> None:
    spec = _spec({"id": "/a", "cmd": "true", "executor": "//cmd", "tty": False})
    doc = app_to_json(spec)
    flat = {k: v for k, v in doc.items() if k != "kept"} | doc["kept"]
    assert app_from_json(flat) == spec
