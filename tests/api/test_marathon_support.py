"""Fields Pallet accepts but cannot honour are refused with a 422 naming them, never
stored and ignored; metadata for other tools is accepted."""

from __future__ import annotations

from typing import Any

import pytest

from pallet.api.convert import check_runnable
from pallet.api.marathon import MarathonApiError, normalize_app, read_app
from pallet.api.marathon.support import unsupported, unsupported_message

BASE = {"id": "/web", "cmd": "sleep 100"}
IMAGE = {"type": "DOCKER", "docker": {"image": "busybox"}}


def refused(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(v.path, v.message) for v in unsupported(normalize_app(read_app({**BASE, **body})))]


def no(path: str, what: str) -> tuple[str, str]:
    return (path, unsupported_message(what))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"fetch": [{"uri": "http://x/app.tgz"}]},
            [no("/fetch", "fetching URIs into the sandbox (fetch, uris)")],
        ),
        # the legacy uris become fetch, and are refused with it
        (
            {"uris": ["http://x/app.jar"]},
            [no("/fetch", "fetching URIs into the sandbox (fetch, uris)")],
        ),
        ({"container": IMAGE}, [no("/container/docker/image", "container images")]),
        (
            {"container": {"type": "MESOS", "docker": {"image": "busybox"}}},
            [no("/container/docker/image", "container images")],
        ),
        (
            {
                "container": {
                    **IMAGE,
                    "docker": {
                        "image": "busybox",
                        "forcePullImage": True,
                        "privileged": True,
                        "parameters": [{"key": "label", "value": "a=b"}],
                    },
                }
            },
            [
                no("/container/docker/image", "container images"),
                no("/container/docker/forcePullImage", "container images"),
                no("/container/docker/parameters", "docker parameters"),
                no("/container/docker/privileged", "privileged containers"),
            ],
        ),
        (
            {
                "container": {
                    "type": "MESOS",
                    "volumes": [{"containerPath": "/d", "hostPath": "/srv", "mode": "RW"}],
                }
            },
            [no("/container/volumes", "volumes")],
        ),
        (
            {
                "container": {
                    "type": "MESOS",
                    "volumes": [{"containerPath": "data", "mode": "RW", "persistent": {"size": 1}}],
                }
            },
            [
                no("/container/volumes", "volumes"),
                no("/residency", "resident tasks (local persistent volumes)"),
            ],
        ),
        (
            {"container": {"type": "MESOS", "linuxInfo": {"seccomp": {"unconfined": True}}}},
            [no("/container/linuxInfo", "linuxInfo (seccomp, IPC, shared memory)")],
        ),
        (
            {"networks": [{"mode": "container/bridge"}]},
            [no("/networks(0)/mode", "container/bridge networking")],
        ),
        (
            {"networks": [{"mode": "container", "name": "dev"}]},
            [no("/networks(0)/mode", "container networks (IP per task)")],
        ),
        (
            {"secrets": {"pw": {"source": "db/pw"}}, "env": {"PW": {"secret": "pw"}}},
            [no("/secrets", "secrets"), no("/env/PW/secret", "environment values from secrets")],
        ),
        ({"check": {"http": {"portIndex": 0}}}, [no("/check", "Mesos checks (check)")]),
        (
            {
                "container": {"type": "DOCKER", "docker": {"image": "x"}},
                "healthChecks": [{"protocol": "MESOS_HTTP", "ipProtocol": "IPv6"}],
            },
            [
                no("/container/docker/image", "container images"),
                no("/healthChecks(0)/ipProtocol", "IPv6 health checks"),
            ],
        ),
        (
            {"executor": "/opt/my-executor"},
            [no("/executor", "custom executors (only the command executor, '' or '//cmd')")],
        ),
        (
            {"executorResources": {"cpus": 0.1}},
            [no("/executorResources", "executor resources (Pallet runs no executor)")],
        ),
        (
            {"resourceLimits": {"cpus": "unlimited"}},
            [no("/resourceLimits", "resource limits above the requested resources")],
        ),
        ({"tty": True}, [no("/tty", "a TTY for the task")]),
    ],
)
def test_fields_pallet_cannot_honour_are_refused_by_path(
    body: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    assert refused(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        # metadata for other tools, and fields Pallet honours
        {"labels": {"HAPROXY_GROUP": "external", "owner": "team-a"}},
        {"user": "nobody"},
        {"portDefinitions": [{"port": 0, "name": "http", "labels": {"VIP_0": "/web:80"}}]},
        {"dependencies": ["/db"]},
        {"executor": "//cmd", "tty": False},
        {"container": {"type": "MESOS"}},
        {"networks": [{"mode": "host"}]},
        {"acceptedResourceRoles": ["*"]},
        {"role": "dev", "acceptedResourceRoles": ["*", "dev"]},
        {"healthChecks": [{"protocol": "COMMAND", "command": {"value": "true"}}]},
        {"unreachableStrategy": "disabled", "killSelection": "OLDEST_FIRST"},
        {"upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.0}},
    ],
)
def test_honoured_fields_and_metadata_are_accepted(body: dict[str, Any]) -> None:
    assert refused(body) == []


def test_check_runnable_raises_one_422_with_every_refusal() -> None:
    spec = normalize_app(read_app({**BASE, "executor": "/x", "tty": True}))
    with pytest.raises(MarathonApiError) as info:
        check_runnable(spec)
    assert info.value.status == 422
    assert [d["path"] for d in info.value.body["details"]] == ["/executor", "/tty"]
