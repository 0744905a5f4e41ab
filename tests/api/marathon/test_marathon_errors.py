"""Request bodies and query parameters at the edge, and Marathon's error bodies."""

from __future__ import annotations

import pytest
from pydantic import ValidationError as PydanticValidationError

from pallet.api.marathon import (
    AppDefinition,
    MarathonApiError,
    Violation,
    app_exists,
    app_locked,
    app_not_found,
    canonical_path,
    from_model_error,
    is_path_syntax,
    not_valid,
    parse_bool,
    parse_embed,
    parse_json_body,
    shape_error,
    task_not_found,
)
from pallet.api.marathon.params import INDEX_EMBEDS, SHOW_EMBEDS, AppEmbed
from pallet.model import PlacementRequest, Resources, ValidationError

from .conftest import VERSION


def raised(raw: bytes, limit: int | None = None) -> MarathonApiError:
    with pytest.raises(MarathonApiError) as info:
        parse_json_body(raw) if limit is None else parse_json_body(raw, limit)
    return info.value


def test_json_bodies_decode() -> None:
    assert parse_json_body(b'{"id": "/web", "cpus": 0.5}') == {"id": "/web", "cpus": 0.5}
    assert parse_json_body(b"[1, 2]") == [1, 2]


def test_malformed_json_is_400_invalid_json_with_the_parser_text() -> None:
    err = raised(b'{"id":"/test"')
    assert err.status == 400
    assert err.body["message"] == "Invalid JSON"
    assert isinstance(err.body["details"], str) and err.body["details"]


@pytest.mark.parametrize("raw", [b'{"cpus": NaN}', b'{"cpus": Infinity}', b"{'id': 1}"])
def test_non_json_tokens_are_invalid_json(raw: bytes) -> None:
    assert raised(raw).body["message"] == "Invalid JSON"


@pytest.mark.parametrize("nesting", [(b"[", b"]"), (b'{"a":', b"}")])
def test_deeply_nested_json_is_400_not_a_crash(nesting: tuple[bytes, bytes]) -> None:
    # 100,000 levels fit in 1 MiB but overflow the decoder's recursion (was a 500).
    opening, closing = nesting
    err = raised(opening * 100_000 + b"1" + closing * 100_000)
    assert err.status == 400
    assert err.body["message"] == "Invalid JSON"
    assert "nested too deeply" in err.body["details"]


@pytest.mark.parametrize("raw", [b"", b"  \n"])
def test_an_empty_body_asks_for_json(raw: bytes) -> None:
    err = raised(raw)
    assert err.status == 400
    assert err.body == {
        "message": "Please specify data in JSON format",
        "details": "No content to map due to end-of-input",
    }


def test_bodies_over_one_mebibyte_are_413() -> None:
    big = b'{"cmd": "' + b"x" * (1 << 20) + b'"}'
    err = raised(big)
    assert err.status == 413
    assert err.body == {"message": "Request body is larger than 1048576 bytes"}
    assert raised(b"{}", limit=1).status == 413
    assert parse_json_body(b"{}", limit=2) == {}


def test_not_found_and_conflict_bodies() -> None:
    assert (app_not_found("/x").status, app_not_found("/x").body) == (
        404,
        {"message": "App '/x' does not exist"},
    )
    assert app_not_found("/x", VERSION).body == {
        "message": "App '/x' does not exist in version 2024-05-06T07:08:09.123Z"
    }
    assert task_not_found("web.1").body == {"message": "Task 'web.1' does not exist"}
    assert (app_exists("/x").status, app_exists("/x").body) == (
        409,
        {"message": "An app with id [/x] already exists."},
    )
    locked = app_locked(["d1", "d2"])
    assert locked.status == 409
    assert locked.body["deployments"] == [{"id": "d1"}, {"id": "d2"}]
    assert locked.body["message"].startswith("App is locked by one or more deployments.")


def test_violations_group_by_path_in_order_without_repeats() -> None:
    err = not_valid(
        [
            Violation("/b", "one"),
            Violation("/a", "two"),
            Violation("/b", "three"),
            Violation("/b", "one"),
        ]
    )
    assert err.body == {
        "message": "Object is not valid",
        "details": [{"path": "/b", "errors": ["one", "three"]}, {"path": "/a", "errors": ["two"]}],
    }


def test_model_errors_become_marathon_bodies() -> None:
    with pytest.raises(ValidationError) as info:
        PlacementRequest(id="t", app_id="/a", resources=Resources(gpu_milli=1500))
    err = from_model_error(info.value)
    assert err.status == 422
    assert err.body == {
        "message": "Object is not valid",
        "details": [
            {"path": "/gpus", "errors": ["task t: above one GPU, ask for whole GPUs (got 1.5)"]}
        ],
    }


def test_pydantic_errors_become_play_codes_at_marathon_paths() -> None:
    with pytest.raises(PydanticValidationError) as info:
        AppDefinition.model_validate(
            {"id": "/x", "portDefinitions": [{"port": "80"}], "instances": -1}
        )
    assert shape_error(info.value).body == {
        "message": "Invalid JSON",
        "details": [
            {"path": "/instances", "errors": ["error.min"]},
            {"path": "/portDefinitions(0)/port", "errors": ["error.expected.jsnumber"]},
        ],
    }


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("/prod/web", "/prod/web"),
        ("prod/web", "/prod/web"),
        ("//web", "/web"),  # the client's /v2/apps//web
        ("/prod//web/", "/prod/web"),
        ("/prod/../web", "/web"),
        ("/a/./b", "/a/b"),
        ("..", "/"),
    ],
)
def test_canonical_paths(raw: str, canonical: str) -> None:
    assert canonical_path(raw) == canonical


def test_relative_paths_resolve_against_a_base() -> None:
    assert canonical_path("web", base="/prod") == "/prod/web"
    assert canonical_path("../web", base="/prod/api") == "/prod/web"


@pytest.mark.parametrize(
    ("raw", "ok"),
    [
        ("/web", True),
        ("/v1.api-2/x", True),
        ("/", True),
        ("../x", True),
        ("", False),
        ("/Web", False),
        ("/web_1", False),
        ("/./web", False),  # RAML's pattern has ".." but not "."
        ("/a.", False),
        ("/" + "a" * 5000 + "-", False),
    ],
)
def test_path_syntax(raw: str, ok: bool) -> None:
    assert is_path_syntax(raw) is ok


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, False),
        ("true", True),
        ("True", True),
        ("TRUE", True),
        ("False", False),
        ("1", False),
        ("yes", False),
    ],
)
def test_booleans_read_as_jax_rs_reads_them(value: str | None, expected: bool) -> None:
    assert parse_bool(value) is expected


def test_boolean_default_applies_only_when_absent() -> None:
    assert parse_bool(None, default=True) is True
    assert parse_bool("false", default=True) is False


def test_embeds_resolve_with_any_prefix() -> None:
    assert parse_embed(["app.tasks"]) == {AppEmbed.TASKS, AppEmbed.DEPLOYMENTS}
    assert parse_embed(["apps.lastTaskFailure", "counts"]) == {
        AppEmbed.LAST_TASK_FAILURE,
        AppEmbed.COUNTS,
    }
    assert parse_embed(["app.failures"]) == {
        AppEmbed.TASKS,
        AppEmbed.LAST_TASK_FAILURE,
        AppEmbed.DEPLOYMENTS,
    }
    assert parse_embed(["app.bogus"]) == frozenset()
    assert parse_embed([], always=INDEX_EMBEDS) == {AppEmbed.COUNTS, AppEmbed.DEPLOYMENTS}
    assert AppEmbed.TASKS in SHOW_EMBEDS and AppEmbed.TASKS not in INDEX_EMBEDS
