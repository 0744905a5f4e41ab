"""Marathon's rules between fields: the exact 422 "Object is not valid" bodies."""

from __future__ import annotations

from typing import Any

import pytest

from pallet.api.marathon import MarathonApiError, normalize_app, read_app

BASE = {"id": "/web", "cmd": "sleep 100"}
CMD_OR_CONTAINER = "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'."
OPERATORS = (
    "operator must be one of the following UNIQUE, CLUSTER, GROUP_BY, LIKE, MAX_PER, UNLIKE or IS"
)
IS_TEXT = (
    "IS only supports Mesos text and float values "
    "(see http://mesos.apache.org/documentation/latest/attributes-resources/)"
)
PORT_INDEX = (
    "Health check port indices must address an element of the ports array "
    "or container port mappings."
)
RESERVED = (
    "must not end with any of the following reserved keywords: restart, tasks, versions, ., .."
)


def rule_failure(body: dict[str, Any]) -> dict[str, Any]:
    with pytest.raises(MarathonApiError) as info:
        normalize_app(read_app(body))
    assert info.value.status == 422
    return info.value.body


def not_valid(*details: tuple[str, list[str]]) -> dict[str, Any]:
    return {
        "message": "Object is not valid",
        "details": [{"path": p, "errors": e} for p, e in details],
    }


def constraint(*parts: str) -> dict[str, Any]:
    return {**BASE, "constraints": [list(parts)]}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # command: exactly one of cmd / args, or a container
        ({"id": "/web"}, [("/", [CMD_OR_CONTAINER])]),
        ({**BASE, "args": ["sleep", "1"]}, [("/", [CMD_OR_CONTAINER])]),
        (
            {"id": "/web", "container": {"type": "DOCKER"}},
            [("/container/docker", ["not defined"]), ("/", [CMD_OR_CONTAINER])],
        ),
        # ids after canonicalisation
        (
            {"id": "/", "cmd": "x"},
            [("/id", ["Path must contain at least one path element"]), ("/", ["must not be root"])],
        ),
        (
            {"id": "/a/..", "cmd": "x"},
            [("/id", ["Path must contain at least one path element"]), ("/", ["must not be root"])],
        ),
        ({"id": "/web/tasks", "cmd": "x"}, [("/id", [RESERVED])]),
        ({**BASE, "dependencies": ["/db/versions"]}, [("/dependencies(0)", [RESERVED])]),
        # constraints (SchedulingValidation.scala)
        (constraint("hostname", "FOO"), [("/constraints(0)", [OPERATORS])]),
        (
            constraint("hostname", "UNIQUE", "x"),
            [("/constraints(0)", ["UNIQUE does not accept a value"])],
        ),
        (
            constraint("rack", "MAX_PER"),
            [("/constraints(0)", ["MAX_PER requires an integer value"])],
        ),
        (
            constraint("rack", "MAX_PER", "two"),
            [("/constraints(0)", ["MAX_PER requires an integer value"])],
        ),
        (
            constraint("rack", "GROUP_BY", "x"),
            [
                (
                    "/constraints(0)",
                    ["GROUP BY must define an integer value or else no value at all"],
                )
            ],
        ),
        (
            constraint("rack", "LIKE"),
            [
                (
                    "/constraints(0)",
                    ["LIKE and UNLIKE require a non-empty, regular expression value"],
                )
            ],
        ),
        (
            constraint("rack", "UNLIKE", "["),
            [("/constraints(0)", ["is not a valid regular expression"])],
        ),
        (
            constraint("", "CLUSTER", "a"),
            [("/constraints(0)", ["illegal constraint specification"])],
        ),
        (constraint("rack", "IS", "[0-9]"), [("/constraints(0)", [IS_TEXT])]),
        # Pallet schedules MAX_PER / GROUP_BY counts only when positive: same path, Pallet's words
        (
            constraint("rack", "MAX_PER", "0"),
            [("/constraints(0)", ["MAX_PER needs a positive whole number, not '0'"])],
        ),
        (
            {**BASE, "constraints": [["hostname", "UNIQUE"], ["rack", "BOGUS"]]},
            [("/constraints(1)", [OPERATORS])],
        ),
        # ports
        ({**BASE, "ports": [80, 80]}, [("/", ["ports must be unique"])]),
        (
            {**BASE, "ports": [80], "portDefinitions": [{"port": 81}]},
            [("/", ["cannot specify both ports and port definitions"])],
        ),
        (
            {**BASE, "portDefinitions": [{"port": 80}, {"port": 80}]},
            [("/portDefinitions", ["Ports must be unique."])],
        ),
        (
            {**BASE, "portDefinitions": [{"name": "http"}, {"name": "http"}]},
            [("/portDefinitions", ["Port names must be unique."])],
        ),
        (
            {**BASE, "healthChecks": [{"protocol": "HTTP", "portIndex": 1}]},
            [("/healthChecks(0)", [PORT_INDEX])],
        ),
        (
            {**BASE, "portDefinitions": [], "healthChecks": [{"protocol": "TCP"}]},
            [("/healthChecks(0)", [PORT_INDEX])],
        ),
        (
            {**BASE, "healthChecks": [{"protocol": "MESOS_HTTP"}, {"protocol": "MESOS_TCP"}]},
            [("/", ["AppDefinition can contain at most one Mesos health check"])],
        ),
        # deprecated fields
        (
            {**BASE, "uris": ["http://x/a.tgz"], "fetch": [{"uri": "http://x/b"}]},
            [("/uris", ["may not be set in conjunction with fetch"])],
        ),
        (
            {**BASE, "ipAddress": {"networkName": "dev"}, "networks": [{"mode": "host"}]},
            [("/", ["must not specify both networks and ipAddress"])],
        ),
        # networks
        (
            {**BASE, "networks": [{"mode": "container"}]},
            [("/networks", ["Network name must be specified when container network is selected."])],
        ),
        (
            {**BASE, "networks": [{"mode": "host", "name": "x"}]},
            [("/networks", ["Host networks may not have names or labels"])],
        ),
        (
            {**BASE, "networks": [{"mode": "host"}, {"mode": "container/bridge"}]},
            [
                (
                    "/networks",
                    [
                        "May specify a single host network, single bridge network, or else 1-to-n container networks"
                    ],
                )
            ],
        ),
        # roles
        (
            {**BASE, "acceptedResourceRoles": ["other"]},
            [
                (
                    "/acceptedResourceRoles",
                    ["acceptedResourceRoles can only contain * and slave_public"],
                )
            ],
        ),
        (
            {**BASE, "role": "web", "acceptedResourceRoles": ["web", "x"]},
            [
                (
                    "/acceptedResourceRoles",
                    ["acceptedResourceRoles can only contain *, slave_public and web"],
                )
            ],
        ),
        (
            {**BASE, "acceptedResourceRoles": []},
            [("/acceptedResourceRoles", ["must not be empty"])],
        ),
        ({**BASE, "role": "-web"}, [("/role", ["A role name must not start with a '-'."])]),
        (
            {**BASE, "role": "a b"},
            [("/role", ["A role name must not include a space (\\x20) character."])],
        ),
        # the rest
        (
            {**BASE, "env": {"PW": {"secret": "db"}}},
            [("/env/PW/secret", ["references an undefined secret"])],
        ),
        (
            {**BASE, "unreachableStrategy": {"inactiveAfterSeconds": 10, "expungeAfterSeconds": 5}},
            [
                (
                    "/unreachableStrategy/inactiveAfterSeconds",
                    [
                        "inactiveAfterSeconds (10) must be less or equal to expungeAfterSeconds, which is 5"
                    ],
                )
            ],
        ),
        (
            {**BASE, "instances": 2, "labels": {"MARATHON_SINGLE_INSTANCE_APP": "true"}},
            [
                ("/", ["Single instance app may only have one instance"]),
            ],
        ),
        (
            {**BASE, "readinessChecks": [{"portName": "http"}]},
            [("/readinessChecks(0)/portName", ["No port definition reference for portName http"])],
        ),
        (
            {
                **BASE,
                "portDefinitions": [{"name": "http"}],
                "readinessChecks": [
                    {"portName": "http", "intervalSeconds": 5, "timeoutSeconds": 5}
                ],
            },
            [("/readinessChecks(0)/timeoutSeconds", ["got 5, expected less than 5"])],
        ),
        (
            {**BASE, "gpus": 1, "container": {"type": "DOCKER", "docker": {"image": "nginx"}}},
            [("/", ["GPU resources only work with the Mesos containerizer"])],
        ),
        ({**BASE, "gpus": 1.5}, [("/gpus", ["above one GPU, ask for whole GPUs (got 1.5)"])]),
        (
            {**BASE, "fetch": [{"uri": "http://x/a b"}]},
            [("/fetch(0)/uri", ["URI has invalid syntax."])],
        ),
    ],
)
def test_rule_violations_have_marathons_422_body(body: dict[str, Any], expected: list) -> None:
    assert rule_failure(body) == not_valid(*expected)


def test_deprecated_field_rules_are_reported_before_the_rest() -> None:
    # Marathon validates the deprecated fields first and stops there.
    body = {"id": "/web", "ports": [80, 80]}
    assert rule_failure(body) == not_valid(("/", ["ports must be unique"]))


@pytest.mark.parametrize(
    "body",
    [
        {**BASE, "args": None},
        {"id": "/web", "args": ["sleep", "1"]},
        {"id": "/web", "container": {"type": "DOCKER", "docker": {"image": "nginx"}}},
        {"id": "/web", "container": {"type": "MESOS"}},
        {**BASE, "ports": [80], "portDefinitions": [{"port": 80}]},
        {**BASE, "ports": [0, 0]},
        constraint("hostname", "cluster", "a"),  # operators are case-insensitive
        constraint("rack", "GROUP_BY"),
        constraint("rack", "IN", "a,b"),  # Pallet's extension
        constraint("rack", "IS", "rack-1.2/3_4"),
        {**BASE, "role": "web", "acceptedResourceRoles": ["*", "web"]},
        {**BASE, "acceptedResourceRoles": ["slave_public"]},  # DC/OS's public agents
        {**BASE, "acceptedResourceRoles": ["slave_public", "*"]},
        {**BASE, "env": {"PW": {"secret": "db"}}, "secrets": {"db": {"source": "/db/pw"}}},
        {**BASE, "portDefinitions": [{"name": "http"}], "readinessChecks": [{"portName": "http"}]},
        {**BASE, "networks": [{"mode": "container", "name": "dev"}]},
        {**BASE, "gpus": 0.5},
        {**BASE, "gpus": 2},
    ],
)
def test_valid_apps_pass(body: dict[str, Any]) -> None:
    normalize_app(read_app(body))
