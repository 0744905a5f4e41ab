"""App definitions through normalisation and back to Marathon's JSON: defaults, deprecated
fields, exact field sets, round trips and updates."""

from __future__ import annotations

from typing import Any

import pytest

from pallet.api.marathon import (
    MarathonApiError,
    ReadinessCheckResult,
    TaskCounts,
    app_json,
    apply_update,
    freeze,
    read_app,
    read_update,
    rollback_version,
    thaw,
)

from .conftest import VERSION, VERSION_TEXT, spec_of

MINIMAL_JSON = {
    "id": "/web",
    "backoffFactor": 1.15,
    "backoffSeconds": 1,
    "cmd": "sleep 100",
    "cpus": 1.0,
    "disk": 0.0,
    "executor": "",
    "instances": 1,
    "labels": {},
    "maxLaunchDelaySeconds": 300,
    "mem": 128.0,
    "gpus": 0,
    "networks": [{"mode": "host"}],
    "portDefinitions": [{"port": 0, "protocol": "tcp", "name": "default"}],
    "requirePorts": False,
    "upgradeStrategy": {"minimumHealthCapacity": 1.0, "maximumOverCapacity": 1.0},
    "version": VERSION_TEXT,
    "killSelection": "YOUNGEST_FIRST",
    "unreachableStrategy": {"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0},
    "role": "*",
}

BODIES: list[dict[str, Any]] = [
    {"id": "/web", "cmd": "sleep 100"},
    {
        "id": "prod/api",
        "args": ["/bin/api", "--port", "$PORT0"],
        "cpus": 0.25,
        "mem": 64.5,
        "disk": 10,
        "instances": 3,
        "constraints": [
            ["hostname", "UNIQUE"],
            ["rack", "GROUP_BY", "2"],
            ["zone", "LIKE", "eu-.*"],
        ],
        "portDefinitions": [{"port": 8080, "name": "http", "labels": {"VIP_0": "/api:80"}}],
        "requirePorts": True,
        "env": {"MODE": "prod", "PW": {"secret": "db"}},
        "secrets": {"db": {"source": "/prod/db/password"}},
        "labels": {"team": "core"},
        "role": "prod",
        "acceptedResourceRoles": ["*", "prod"],
        "healthChecks": [{"protocol": "HTTP", "path": "/health"}],
        "readinessChecks": [{"portName": "http"}],
        "fetch": [{"uri": "https://example.com/app.tgz"}],
        "dependencies": ["/prod/db"],
        "upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.2},
        "unreachableStrategy": {"inactiveAfterSeconds": 60, "expungeAfterSeconds": 600},
        "killSelection": "OLDEST_FIRST",
        "backoffSeconds": 5,
        "backoffFactor": 2,
        "maxLaunchDelaySeconds": 600,
        "taskKillGracePeriodSeconds": 30,
        "user": "nobody",
        "gpus": 0.5,
    },
    {
        "id": "/bridge",
        "container": {
            "type": "DOCKER",
            "docker": {"image": "nginx:1.25", "forcePullImage": True},
            "portMappings": [{"containerPort": 80, "name": "http"}, {"containerPort": 443}],
            "volumes": [{"containerPath": "/data", "hostPath": "/srv", "mode": "RW"}],
        },
        "networks": [{"mode": "container/bridge"}],
    },
    {
        "id": "/mesos",
        "cmd": "x",
        "container": {"type": "MESOS"},
        "networks": [{"mode": "container", "name": "dev"}],
    },
    {
        "id": "/resident",
        "cmd": "x",
        "container": {
            "type": "MESOS",
            "volumes": [{"containerPath": "data", "mode": "RW", "persistent": {"size": 10}}],
        },
    },
    {
        "id": "/tty",
        "cmd": "x",
        "tty": True,
        "check": {"http": {"portIndex": 0}},
        "executor": "//cmd",
    },
]


@pytest.mark.parametrize("body", BODIES, ids=lambda b: b["id"])
def test_json_round_trips_to_the_same_spec(body: dict[str, Any]) -> None:
    spec = spec_of(body)
    first = app_json(spec, VERSION)
    again = spec_of(first)
    assert again == spec
    assert app_json(again, VERSION) == first


def test_minimal_app_gets_marathons_defaults_and_exact_field_set() -> None:
    assert app_json(spec_of({"id": "web", "cmd": "sleep 100"}), VERSION) == MINIMAL_JSON


def test_embeds_appear_only_when_given() -> None:
    spec = spec_of({"id": "/web", "cmd": "sleep 100"})
    out = app_json(
        spec,
        VERSION,
        version_info=(VERSION, VERSION),
        counts=TaskCounts(staged=1, running=2),
        deployments=["d1"],
        tasks=[],
        readiness=[ReadinessCheckResult(name="readinessCheck", task_id="web.1", ready=True)],
    )
    assert out == {
        **MINIMAL_JSON,
        "versionInfo": {"lastScalingAt": VERSION_TEXT, "lastConfigChangeAt": VERSION_TEXT},
        "tasksStaged": 1,
        "tasksRunning": 2,
        "tasksHealthy": 0,
        "tasksUnhealthy": 0,
        "deployments": [{"id": "d1"}],
        "tasks": [],
        "readinessCheckResults": [{"name": "readinessCheck", "taskId": "web.1", "ready": True}],
    }


def test_deprecated_fields_are_translated_and_never_written() -> None:
    spec = spec_of(
        {
            "id": "/old",
            "cmd": "x",
            "ports": [0, 9000],
            "uris": ["https://example.com/a.tar.gz", "https://example.com/run.sh"],
        }
    )
    out = app_json(spec, VERSION)
    assert "ports" not in out and "uris" not in out and "ipAddress" not in out
    assert out["portDefinitions"] == [
        {"port": 0, "protocol": "tcp"},
        {"port": 9000, "protocol": "tcp"},
    ]
    assert out["fetch"] == [
        {
            "uri": "https://example.com/a.tar.gz",
            "extract": True,
            "executable": False,
            "cache": False,
        },
        {
            "uri": "https://example.com/run.sh",
            "extract": False,
            "executable": False,
            "cache": False,
        },
    ]


def test_docker_network_and_port_mappings_move_to_the_canonical_fields() -> None:
    spec = spec_of(
        {
            "id": "/old-docker",
            "container": {
                "type": "DOCKER",
                "docker": {
                    "image": "nginx",
                    "network": "BRIDGE",
                    "portMappings": [{"containerPort": 80}],
                },
            },
        }
    )
    out = app_json(spec, VERSION)
    assert out["networks"] == [{"mode": "container/bridge"}]
    assert "portDefinitions" not in out
    assert out["container"] == {
        "type": "DOCKER",
        "docker": {
            "image": "nginx",
            "forcePullImage": False,
            "parameters": [],
            "privileged": False,
        },
        "volumes": [],
        # bridge mode: a missing host port means "any port"
        "portMappings": [{"containerPort": 80, "hostPort": 0, "protocol": "tcp", "servicePort": 0}],
    }


def test_ip_address_becomes_a_container_network() -> None:
    spec = spec_of(
        {"id": "/ip", "cmd": "x", "ipAddress": {"networkName": "dev", "labels": {"a": "b"}}}
    )
    out = app_json(spec, VERSION)
    assert out["networks"] == [{"name": "dev", "mode": "container", "labels": {"a": "b"}}]
    assert out["container"]["type"] == "MESOS"
    assert out["container"]["portMappings"] == [
        {"containerPort": 0, "name": "default", "protocol": "tcp", "servicePort": 0}
    ]


def test_ip_address_discovery_ports_become_port_mappings() -> None:
    discovery = {"ports": [{"number": 8080, "name": "http", "protocol": "udp"}, {}]}
    spec = spec_of(
        {"id": "/ip", "cmd": "x", "ipAddress": {"networkName": "dev", "discovery": discovery}}
    )
    assert app_json(spec, VERSION)["container"]["portMappings"] == [
        {"containerPort": 8080, "name": "http", "protocol": "udp", "servicePort": 0},
        {"containerPort": 0, "protocol": "tcp", "servicePort": 0},
    ]


def test_port_definitions_off_the_host_network_are_dropped_as_marathon_does() -> None:
    spec = spec_of(
        {
            "id": "/ct",
            "cmd": "x",
            "networks": [{"mode": "container", "name": "dev"}],
            "portDefinitions": [{"port": 0}],
        }
    )
    assert spec.port_definitions is None
    assert spec.container is not None and spec.container["type"] == "MESOS"


def test_health_check_gets_port_index_zero_when_ports_are_defined() -> None:
    spec = spec_of(
        {"id": "/hc", "cmd": "x", "portDefinitions": [{}], "healthChecks": [{"path": "/"}]}
    )
    (check,) = app_json(spec, VERSION)["healthChecks"]
    assert check == {
        "gracePeriodSeconds": 300,
        "intervalSeconds": 60,
        "maxConsecutiveFailures": 3,
        "path": "/",
        "portIndex": 0,
        "protocol": "HTTP",
        "ipProtocol": "IPv4",
        "timeoutSeconds": 20,
        "delaySeconds": 15,
    }


def test_resident_apps_get_residency_and_a_disabled_unreachable_strategy() -> None:
    spec = spec_of(BODIES[4])
    out = app_json(spec, VERSION)
    assert out["residency"] == {
        "relaunchEscalationTimeoutSeconds": 3600,
        "taskLostBehavior": "WAIT_FOREVER",
    }
    assert out["unreachableStrategy"] == "disabled"
    assert out["upgradeStrategy"] == {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.0}


def test_readiness_check_defaults() -> None:
    spec = spec_of(BODIES[1])
    assert app_json(spec, VERSION)["readinessChecks"] == [
        {
            "name": "readinessCheck",
            "protocol": "HTTP",
            "path": "/",
            "portName": "http",
            "intervalSeconds": 30,
            "timeoutSeconds": 10,
            "httpStatusCodesForReady": [200],
            "preserveLastResponse": False,
        }
    ]


def test_duplicate_constraints_collapse_as_in_marathons_set() -> None:
    spec = spec_of(
        {"id": "/c", "cmd": "x", "constraints": [["hostname", "unique"], ["hostname", "UNIQUE"]]}
    )
    assert app_json(spec, VERSION)["constraints"] == [["hostname", "UNIQUE"]]


def test_version_must_be_timezone_aware() -> None:
    from datetime import datetime

    with pytest.raises(ValueError, match="timezone"):
        app_json(spec_of({"id": "/web", "cmd": "x"}), datetime(2024, 1, 1))


# ---------------------------------------------------------------- updates


def test_update_changes_only_the_given_fields() -> None:
    current = spec_of(BODIES[1])
    updated = apply_update(current, read_update({"instances": 5, "cmd": None}))
    assert updated.instances == 5
    assert updated == current.__class__(**{**_fields(current), "instances": 5})


def test_update_replaces_collections_wholesale() -> None:
    current = spec_of(BODIES[1])
    updated = apply_update(current, read_update({"env": {"ONLY": "this"}, "constraints": []}))
    assert dict(updated.env) == {"ONLY": "this"}
    assert updated.constraints == ()


def test_update_with_deprecated_ports_replaces_port_definitions() -> None:
    current = spec_of({"id": "/web", "cmd": "x"})
    updated = apply_update(current, read_update({"ports": [8080, 0]}))
    assert [p.port for p in updated.port_definitions or ()] == [8080, 0]


def test_update_with_uris_replaces_fetch() -> None:
    current = spec_of({"id": "/web", "cmd": "x", "fetch": [{"uri": "http://a/x"}]})
    updated = apply_update(current, read_update({"uris": ["http://b/y.zip"]}))
    assert [thaw(f)["uri"] for f in updated.fetch] == ["http://b/y.zip"]


def test_update_that_breaks_a_rule_is_rejected_whole() -> None:
    current = spec_of({"id": "/web", "cmd": "x"})
    with pytest.raises(MarathonApiError) as info:
        apply_update(current, read_update({"args": ["y"]}))
    assert info.value.body["details"] == [
        {
            "path": "/",
            "errors": [
                "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'."
            ],
        }
    ]


def test_update_never_changes_the_id() -> None:
    current = spec_of({"id": "/web", "cmd": "x"})
    assert apply_update(current, read_update({"id": "/other", "instances": 2})).id == "/web"


def test_rollback_is_a_version_alone() -> None:
    assert rollback_version(read_update({"instances": 2})) is None
    asked = rollback_version(read_update({"version": VERSION_TEXT, "id": "/web"}))
    assert asked == VERSION.replace(microsecond=123000)
    with pytest.raises(MarathonApiError) as info:
        rollback_version(read_update({"version": VERSION_TEXT, "instances": 2}))
    assert info.value.body == {
        "message": "Object is not valid",
        "details": [
            {
                "path": "/",
                "errors": ["The 'version' field may only be combined with the 'id' field."],
            }
        ],
    }


def test_frozen_json_thaws_to_what_was_frozen() -> None:
    value = {"a": [1, {"b": None, "c": [True, "x"]}], "d": {}}
    frozen = freeze(value)
    assert thaw(frozen) == value
    assert hash(frozen) == hash(freeze(value))
    with pytest.raises(TypeError):
        frozen["a"] = 2  # type: ignore[index]


def _fields(spec: Any) -> dict[str, Any]:
    return {name: getattr(spec, name) for name in spec.__slots__}


def test_read_app_accepts_its_own_output_with_read_only_fields() -> None:
    spec = spec_of(BODIES[0])
    out = app_json(
        spec, VERSION, version_info=(VERSION, VERSION), counts=TaskCounts(), deployments=[]
    )
    assert spec_of(read_app(out).model_dump(by_alias=True, exclude_none=True)) == spec


def test_ignore_http1xx_is_read_and_written_under_marathons_name() -> None:
    check = {"protocol": "HTTP", "portIndex": 0, "ignoreHttp1xx": True}
    out = app_json(spec_of({"id": "/web", "cmd": "x", "healthChecks": [check]}), VERSION)
    assert out["healthChecks"][0]["ignoreHttp1xx"] is True
