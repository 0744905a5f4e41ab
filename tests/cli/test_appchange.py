"""What a file asks of an app, and how that differs from the app: groups resolved to
absolute ids, differences only where the file says something else."""

from __future__ import annotations

from typing import Any

import pytest

from pallet.cli.appchange import (
    Action,
    AppFileShapeError,
    Change,
    Difference,
    app_definitions,
    differences,
)

CURRENT: dict[str, Any] = {
    "id": "/web",
    "cmd": "python3 -m http.server $PORT0",
    "cpus": 0.1,
    "mem": 64.0,
    "instances": 2,
    "portDefinitions": [{"port": 10001, "name": "http", "protocol": "tcp", "labels": {}}],
    "constraints": [["hostname", "UNIQUE"]],
    "env": {"A": "1"},
    "labels": {},
}


@pytest.mark.parametrize(
    ("desired", "paths"),
    [
        # The file as it was applied: nothing to do.
        ({"cpus": 0.1, "mem": 64, "instances": 2}, []),
        # A port of 0 means "any": the port the master picked matches it.
        ({"portDefinitions": [{"port": 0, "name": "http"}]}, []),
        # Keys the file leaves out of an object are not compared.
        ({"portDefinitions": [{"name": "http"}]}, []),
        ({"cpus": 0.2}, ["/cpus"]),
        ({"instances": 3, "mem": 64}, ["/instances"]),
        ({"env": {"A": "1", "B": "2"}}, ["/env/B"]),
        ({"env": {"A": "2"}}, ["/env/A"]),
        # A list of another length differs as a whole.
        ({"constraints": []}, ["/constraints"]),
        ({"constraints": [["hostname", "CLUSTER", "a"]]}, ["/constraints/0"]),
        ({"constraints": [["hostname", "LIKE"]]}, ["/constraints/0/1"]),
        # Asking for nothing where the app has nothing is no change.
        ({"healthChecks": []}, []),
        ({"disk": 10}, ["/disk"]),
        # Booleans are not numbers: true is not 1.
        ({"requirePorts": True}, ["/requirePorts"]),
    ],
)
def test_differences_are_where_the_file_says_otherwise(
    desired: dict[str, Any], paths: list[str]
) -> None:
    assert [d.path for d in differences(desired, CURRENT)] == paths


def test_a_difference_says_before_and_after() -> None:
    (found,) = differences({"cpus": 0.5}, CURRENT)
    assert found == Difference("/cpus", 0.1, 0.5)
    assert found.describe() == "/cpus: 0.1 -> 0.5"
    (added,) = differences({"disk": 10}, CURRENT)
    assert added.describe() == "/disk: (unset) -> 10"


def test_an_update_sends_only_the_top_level_fields_that_differ() -> None:
    definition = {"id": "/web", "cpus": 0.2, "mem": 64, "env": {"A": "1", "B": "2"}}
    found = tuple(differences({k: v for k, v in definition.items() if k != "id"}, CURRENT))
    change = Change("/web", Action.UPDATE, definition, found)
    assert change.fields() == {"cpus": 0.2, "env": {"A": "1", "B": "2"}}
    assert Change("/web", Action.CREATE, definition).fields() == definition


def test_one_app_keeps_its_id_made_absolute() -> None:
    assert app_definitions({"id": "web", "cmd": "x"}) == [{"id": "/web", "cmd": "x"}]
    assert app_definitions({"id": "/prod/web/", "cmd": "x"})[0]["id"] == "/prod/web"


def test_a_group_gives_its_apps_absolute_ids() -> None:
    doc = {
        "id": "/shop",
        "apps": [{"id": "web", "cmd": "a"}, {"id": "/elsewhere/db", "cmd": "b"}],
        "groups": [{"id": "back", "apps": [{"id": "queue", "cmd": "c"}]}],
    }
    assert [a["id"] for a in app_definitions(doc)] == [
        "/shop/web",
        "/elsewhere/db",
        "/shop/back/queue",
    ]


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        ({"cmd": "x"}, "needs an id"),
        ({"id": "/shop", "apps": []}, "holds no app"),
        ({"id": "/shop", "apps": [{"id": "a"}, {"id": "a"}]}, "/shop/a is defined twice"),
        ({"id": "/shop", "apps": [{"id": "../a"}]}, "uses '..'"),
        ({"id": "/shop", "apps": [{"id": "a"}], "dependencies": []}, "dependencies not supported"),
        ({"id": "/shop", "apps": ["web"]}, "apps[0] is not an app object"),
        ({"id": "/shop", "apps": {"id": "a"}}, "must be lists"),
    ],
)
def test_a_file_that_is_neither_app_nor_group_says_what_is_wrong(
    doc: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(AppFileShapeError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        app_definitions(doc)
