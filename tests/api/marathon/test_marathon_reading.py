"""Reading app bodies: what fits Marathon's schema, and the exact 422 "Invalid JSON" bodies
(Play JSON codes, Marathon paths) for what does not."""

from __future__ import annotations

from typing import Any

import pytest

from pallet.api.marathon import MarathonApiError, read_app, read_update

BASE = {"id": "/web", "cmd": "sleep 100"}


def shape_failure(body: object) -> dict[str, Any]:
    with pytest.raises(MarathonApiError) as info:
        read_app(body)
    assert info.value.status == 422
    return info.value.body


def invalid_json(*details: tuple[str, list[str]]) -> dict[str, Any]:
    return {
        "message": "Invalid JSON",
        "details": [{"path": p, "errors": e} for p, e in details],
    }


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        # cpus: number >= 0.001 (app.raml)
        ({"cpus": -1}, [("/cpus", ["error.min"])]),
        ({"cpus": 0}, [("/cpus", ["error.min"])]),
        ({"cpus": "1"}, [("/cpus", ["error.expected.jsnumber"])]),
        ({"cpus": True}, [("/cpus", ["error.expected.jsnumber"])]),
        ({"mem": -128}, [("/mem", ["error.min"])]),
        ({"disk": -0.5}, [("/disk", ["error.min"])]),
        ({"gpus": -1}, [("/gpus", ["error.min"])]),
        # Pallet's upper bounds: a request stays below 2**31 millicores / MiB (were 500s,
        # or stored and then broke the scheduler for every app)
        ({"cpus": 1e308}, [("/cpus", ["error.max"])]),
        ({"cpus": 1_000_000.001}, [("/cpus", ["error.max"])]),
        ({"mem": 1e308}, [("/mem", ["error.max"])]),
        ({"disk": 2**63}, [("/disk", ["error.max"])]),
        ({"gpus": 1e308}, [("/gpus", ["error.max"])]),
        # an integer too large for a double is not a number, as 1e999 is not (was a 500)
        ({"cpus": 10**400}, [("/cpus", ["error.expected.jsnumber"])]),
        ({"backoffFactor": -(10**400)}, [("/backoffFactor", ["error.expected.jsnumber"])]),
        # instances: int32 >= 0; 0.1 is a number but not an int (AppsResourceTest)
        ({"instances": -1}, [("/instances", ["error.min"])]),
        ({"instances": 0.1}, [("/instances", ["error.expected.int"])]),
        ({"instances": "3"}, [("/instances", ["error.expected.jsnumber"])]),
        ({"instances": 2**31}, [("/instances", ["error.expected.int"])]),
        ({"backoffFactor": 0.5}, [("/backoffFactor", ["error.min"])]),
        ({"backoffSeconds": -1}, [("/backoffSeconds", ["error.min"])]),
        ({"maxLaunchDelaySeconds": -1}, [("/maxLaunchDelaySeconds", ["error.min"])]),
        ({"taskKillGracePeriodSeconds": -1}, [("/taskKillGracePeriodSeconds", ["error.min"])]),
        # id: PathId pattern (lowercase letters, digits, inner hyphens, dots)
        ({"id": 123}, [("/id", ["error.expected.jsstring"])]),
        ({"id": "/Web"}, [("/id", ["error.pattern"])]),
        ({"id": "/a b"}, [("/id", ["error.pattern"])]),
        ({"id": "/-web"}, [("/id", ["error.pattern"])]),
        ({"id": "/web-"}, [("/id", ["error.pattern"])]),
        ({"id": "/a..b"}, [("/id", ["error.pattern"])]),
        ({"id": "/web_1"}, [("/id", ["error.pattern"])]),
        ({"id": ""}, [("/id", ["error.minLength"])]),
        ({"cmd": ""}, [("/cmd", ["error.minLength"])]),
        ({"cmd": 5}, [("/cmd", ["error.expected.jsstring"])]),
        ({"args": "sleep"}, [("/args", ["error.expected.jsarray"])]),
        ({"args": ["sleep", 5]}, [("/args(1)", ["error.expected.jsstring"])]),
        # constraints: arrays of 2 or 3 strings
        ({"constraints": "hostname:UNIQUE"}, [("/constraints", ["error.expected.jsarray"])]),
        ({"constraints": [["hostname"]]}, [("/constraints(0)", ["error.minLength"])]),
        ({"constraints": [["a", "b", "c", "d"]]}, [("/constraints(0)", ["error.maxLength"])]),
        (
            {"constraints": [["rack", "GROUP_BY", 3]]},
            [("/constraints(0)(2)", ["error.expected.jsstring"])],
        ),
        # ports and port definitions: 0..65535, protocol enum, LegacyName
        ({"ports": [70000]}, [("/ports(0)", ["error.max"])]),
        ({"ports": [-1]}, [("/ports(0)", ["error.min"])]),
        ({"portDefinitions": [{"port": 70000}]}, [("/portDefinitions(0)/port", ["error.max"])]),
        (
            {"portDefinitions": [{"protocol": "sctp"}]},
            [("/portDefinitions(0)/protocol", ["error.unknown.enum.literal"])],
        ),
        ({"portDefinitions": [{"name": "Web"}]}, [("/portDefinitions(0)/name", ["error.pattern"])]),
        ({"portDefinitions": {"port": 80}}, [("/portDefinitions", ["error.expected.jsarray"])]),
        ({"requirePorts": "yes"}, [("/requirePorts", ["error.expected.jsboolean"])]),
        ({"env": {"A": 1}}, [("/env/A", ["error.expected.jsstring"])]),
        ({"env": {"A": {"secrets": "x"}}}, [("/env/A", ["error.expected.jsstring"])]),
        ({"env": ["A=1"]}, [("/env", ["error.expected.jsobject"])]),
        ({"labels": {"tier": 1}}, [("/labels/tier", ["error.expected.jsstring"])]),
        ({"executor": "/test/"}, [("/executor", ["error.pattern"])]),
        ({"executor": "/test//path"}, [("/executor", ["error.pattern"])]),
        ({"role": ""}, [("/role", ["error.minLength"])]),
        ({"killSelection": "RANDOM"}, [("/killSelection", ["error.unknown.enum.literal"])]),
        (
            {"unreachableStrategy": "never"},
            [("/unreachableStrategy", ["error.unknown.enum.literal"])],
        ),
        (
            {"unreachableStrategy": {"inactiveAfterSeconds": -1}},
            [("/unreachableStrategy/inactiveAfterSeconds", ["error.min"])],
        ),
        (
            {"upgradeStrategy": {"minimumHealthCapacity": 2}},
            [
                ("/upgradeStrategy/minimumHealthCapacity", ["error.max"]),
                ("/upgradeStrategy/maximumOverCapacity", ["error.path.missing"]),
            ],
        ),
        ({"container": {"type": "RKT"}}, [("/container/type", ["error.unknown.enum.literal"])]),
        ({"container": {"docker": {}}}, [("/container/docker/image", ["error.path.missing"])]),
        ({"container": "docker"}, [("/container", ["error.expected.jsobject"])]),
        (
            {"healthChecks": [{"protocol": "UDP"}]},
            [("/healthChecks(0)/protocol", ["error.unknown.enum.literal"])],
        ),
        (
            {"readinessChecks": [{"timeoutSeconds": 0}]},
            [("/readinessChecks(0)/timeoutSeconds", ["error.min"])],
        ),
        ({"fetch": [{"uri": ""}]}, [("/fetch(0)/uri", ["error.minLength"])]),
        # ipAddress.discovery.ports were read only while translating them (500s)
        (
            {"ipAddress": {"discovery": {"ports": [{"number": "80", "name": "Web"}]}}},
            [
                ("/ipAddress/discovery/ports(0)/number", ["error.expected.jsnumber"]),
                ("/ipAddress/discovery/ports(0)/name", ["error.pattern"]),
            ],
        ),
        (
            {"ipAddress": {"discovery": {"ports": [{"number": 2**31}]}}},
            [("/ipAddress/discovery/ports(0)/number", ["error.expected.int"])],
        ),
        (
            {"ipAddress": {"discovery": {"ports": "80"}}},
            [("/ipAddress/discovery/ports", ["error.expected.jsarray"])],
        ),
        ({"secrets": {"pw": {}}}, [("/secrets/pw/source", ["error.path.missing"])]),
        ({"version": "yesterday"}, [("/version", ["error.expected.date.isoformat"])]),
        # in UTC this is before year 1 (was a 500 when the time was used)
        (
            {"version": "0001-01-01T00:00:00+14:00"},
            [("/version", ["error.expected.date.isoformat"])],
        ),
        # several problems: every path reported, in field order
        (
            {"cpus": -1, "mem": "lots"},
            [("/cpus", ["error.min"]), ("/mem", ["error.expected.jsnumber"])],
        ),
    ],
)
def test_shape_errors_have_marathons_422_body(changes: dict[str, Any], expected: list) -> None:
    assert shape_failure({**BASE, **changes}) == invalid_json(*expected)


def test_missing_id_is_error_path_missing() -> None:
    assert shape_failure({"cmd": "sleep 1"}) == invalid_json(("/id", ["error.path.missing"]))


@pytest.mark.parametrize("body", [[], "app", 3, None])
def test_a_body_that_is_not_an_object_is_rejected_at_the_root(body: object) -> None:
    assert shape_failure(body) == invalid_json(("/", ["error.expected.jsobject"]))


@pytest.mark.parametrize(
    ("changes", "field", "value"),
    [
        ({"instances": 2.0}, "instances", 2),  # a whole float is an int (isValidInt)
        ({"cpus": 2}, "cpus", 2.0),
        ({"cpus": None}, "cpus", None),  # null is "not given", as Play's validateOpt
        ({"unknownField": {"x": 1}}, "cmd", "sleep 100"),  # unknown fields are ignored
        ({"id": "prod//web/"}, "id", "prod//web/"),  # canonicalised later, not here
        ({"id": "../web"}, "id", "../web"),
        ({"executor": "//cmd"}, "executor", "//cmd"),
        ({"executor": "some/relative/path.mte"}, "executor", "some/relative/path.mte"),
        ({"executor": ""}, "executor", ""),
        ({"gpus": 0.5}, "gpus", 0.5),  # Pallet shares GPUs; Marathon would want an int
        ({"unreachableStrategy": "disabled"}, "unreachable_strategy", "disabled"),
    ],
)
def test_valid_values_are_read(changes: dict[str, Any], field: str, value: object) -> None:
    app = read_app({**BASE, **changes})
    got = getattr(app, field)
    if field == "unreachable_strategy":
        assert got.disabled
    else:
        assert got == value
        assert type(got) is type(value)


def test_the_url_id_replaces_the_body_id() -> None:
    assert read_app({"id": "/other", "cmd": "x"}, app_id="/web").id == "/web"
    assert read_app({"cmd": "x"}, app_id="/web").id == "/web"


def test_nested_defaults_are_filled_when_read() -> None:
    app = read_app(
        {
            **BASE,
            "portDefinitions": [{}],
            "healthChecks": [{}],
            "upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0},
        }
    )
    (port,) = app.port_definitions or []
    assert (port.port, port.protocol, port.name, port.labels) == (0, "tcp", None, {})
    (check,) = app.health_checks or []
    assert (check.protocol, check.grace_period_seconds, check.interval_seconds) == ("HTTP", 300, 60)
    assert (check.timeout_seconds, check.max_consecutive_failures, check.delay_seconds) == (
        20,
        3,
        15,
    )


def test_update_fields_are_all_optional_and_track_what_was_given() -> None:
    update = read_update({"instances": 3, "cmd": None})
    assert update.given() == {"instances"}
    assert read_update({}).given() == frozenset()


def test_update_shape_errors_use_the_same_body() -> None:
    with pytest.raises(MarathonApiError) as info:
        read_update({"instances": -2})
    assert info.value.body == invalid_json(("/instances", ["error.min"]))
