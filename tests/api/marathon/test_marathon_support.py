"""Fields Pallet accepts but cannot honour are refused with a 422 naming them, never
stored and ignored; metadata for other tools is accepted."""

from __future__ import annotations

from typing import Any

import pytest

from pallet.api.convert import check_runnable
from pallet.api.marathon import MarathonApiError, normalize_app, read_app
from pallet.api.marathon.support import Allowances, unsupported, unsupported_message
from pallet.model import ContainerPort, ContainerSpec, FetchUri, VolumeSpec
from pallet.model.app_run import run_spec

BASE = {"id": "/web", "cmd": "sleep 100"}
IMAGE = {"type": "DOCKER", "docker": {"image": "busybox"}}


ALLOW = Allowances(host_paths=("/srv",))


def refused(body: dict[str, Any], allow: Allowances = ALLOW) -> list[tuple[str, str]]:
    spec = normalize_app(read_app({**BASE, **body}))
    return [(v.path, v.message) for v in unsupported(spec, allow)]


def no(path: str, what: str) -> tuple[str, str]:
    return (path, unsupported_message(what))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"fetch": [{"uri": "ftp://x/app.tgz"}, {"uri": "app.jar"}]},
            [
                no("/fetch(0)/uri", "fetching ftp URIs (http, https, file)"),
                no("/fetch(1)/uri", "fetching relative URIs (http, https, file)"),
            ],
        ),
        # the legacy uris become fetch, and are checked with it
        (
            {"uris": ["hdfs://nn/app.jar"]},
            [no("/fetch(0)/uri", "fetching hdfs URIs (http, https, file)")],
        ),
        (
            {"fetch": [{"uri": "http://x/a", "destPath": "../a"}, {"uri": "/a", "destPath": "/a"}]},
            [
                ("/fetch(0)/destPath", "must be a relative path inside the sandbox (no '..')"),
                ("/fetch(1)/destPath", "must be a relative path inside the sandbox (no '..')"),
            ],
        ),
        (
            {"container": {"type": "MESOS", "docker": {"image": "Not/Valid"}}},
            [
                (
                    "/container/docker/image",
                    "invalid image reference 'Not/Valid': 'Not': a name is lower-case letters "
                    "and digits, separated by '.', '_', '__' or '-'",
                )
            ],
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
                no("/container/docker/parameters", "docker parameters"),
                no(
                    "/container/docker/privileged",
                    "privileged containers (the operator allows them with --allow-privileged)",
                ),
            ],
        ),
        (
            {
                "container": {
                    "type": "MESOS",
                    "volumes": [{"containerPath": "/d", "hostPath": "/srv", "mode": "RW"}],
                }
            },
            [no("/container/volumes(0)", "host volumes for a task without a container image")],
        ),
        (
            {
                "container": {
                    "type": "MESOS",
                    "volumes": [
                        {
                            "containerPath": "data",
                            "mode": "RW",
                            "persistent": {
                                "type": "mount",
                                "size": 1,
                                "maxSize": 2,
                                "constraints": [["path", "LIKE", "/mnt/ssd-.+"]],
                            },
                        },
                        {"containerPath": "a/b", "mode": "RO", "persistent": {"size": 0}},
                    ],
                }
            },
            [
                # type mount and its maxSize are honoured (an operator's disk)
                no(
                    "/container/volumes(0)/persistent/constraints", "constraints on the disk's path"
                ),
                ("/container/volumes(1)/persistent/size", "must be a whole number of MiB >= 1"),
                (
                    "/container/volumes(1)/containerPath",
                    "a persistent volume's containerPath is one relative path segment (no '/')",
                ),
                ("/container/volumes(1)/mode", "a persistent volume's mode must be RW"),
            ],
        ),
        (
            {
                "container": {
                    **IMAGE,
                    "volumes": [
                        {"containerPath": "/etc/x", "hostPath": "/etc", "mode": "RO"},
                        {"containerPath": "/d", "hostPath": "/srv/../etc", "mode": "RW"},
                        {"containerPath": "/d", "hostPath": "data", "mode": "RW"},
                        {"containerPath": "../up", "hostPath": "/srv/a", "mode": "rw"},
                        {"containerPath": "/s", "secret": "pw"},
                        {"containerPath": "/e", "external": {"name": "v"}, "mode": "RW"},
                    ],
                }
            },
            [
                (
                    "/container/volumes(0)/hostPath",
                    "/etc is outside the host paths this cluster allows (/srv; the operator "
                    "allows more with --allow-host-path)",
                ),
                (
                    "/container/volumes(1)/hostPath",
                    "/srv/../etc is outside the host paths this cluster allows (/srv; the "
                    "operator allows more with --allow-host-path)",
                ),
                no(
                    "/container/volumes(2)/hostPath",
                    "a relative hostPath (a sandbox path or a named volume)",
                ),
                (
                    "/container/volumes(3)/containerPath",
                    "must be a relative path inside the sandbox (no '..')",
                ),
                ("/container/volumes(3)/mode", "must be RO or RW"),
                ("/container/volumes(4)/secret", "references an undefined secret"),
                no(
                    "/container/volumes(4)/containerPath",
                    "a secret file at an absolute path (give a path relative to the sandbox)",
                ),
                no("/container/volumes(5)", "external volumes"),
            ],
        ),
        (
            {"container": {"type": "MESOS", "linuxInfo": {"seccomp": {"unconfined": True}}}},
            [no("/container/linuxInfo", "linuxInfo (seccomp, IPC, shared memory)")],
        ),
        (
            {"networks": [{"mode": "container/bridge"}]},
            [no("/networks(0)/mode", "container/bridge networking without an image")],
        ),
        (
            {"networks": [{"mode": "container", "name": "dev"}]},
            [no("/networks(0)/mode", "container networks without an image")],
        ),
        (
            {
                "container": {"type": "MESOS", "docker": {"image": "busybox"}},
                "networks": [
                    {"mode": "container", "name": "a"},
                    {"mode": "container", "name": "b"},
                ],
            },
            [no("/networks(1)", "more than one container network per app")],
        ),
        (
            {
                "secrets": {"pw": {"source": "db/../pw"}, "ok": {"source": "db/pw"}},
                "env": {"PW": {"secret": "pw"}},
                "container": {
                    "type": "MESOS",
                    "volumes": [
                        {"containerPath": "pw", "secret": "ok"},
                        {"containerPath": "pw", "secret": "ok", "mode": "RO"},
                    ],
                },
            },
            [
                no("/container/volumes(1)/mode", "mode on a secret volume"),
                ("/secrets/pw/source", "'db/../pw' has a '..' segment"),
                ("/container/volumes", "two secret volumes share a containerPath"),
            ],
        ),
        ({"check": {"http": {"portIndex": 0}}}, [no("/check", "Mesos checks (check)")]),
        (
            {
                "container": {"type": "DOCKER", "docker": {"image": "x"}},
                "healthChecks": [{"protocol": "MESOS_HTTP", "ipProtocol": "IPv6"}],
            },
            [no("/healthChecks(0)/ipProtocol", "IPv6 health checks")],
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
        {"fetch": [{"uri": "https://x/a.tgz", "cache": True, "destPath": "lib/a.tgz"}]},
        {"uris": ["http://x/app.jar", "file:///opt/app.jar", "/opt/conf.json"]},
        {"portDefinitions": [{"port": 0, "name": "http", "labels": {"VIP_0": "/web:80"}}]},
        {"dependencies": ["/db"]},
        {"executor": "//cmd", "tty": False},
        {"container": {"type": "MESOS"}},
        {"container": IMAGE},
        {
            "container": {**IMAGE, "portMappings": [{"containerPort": 80, "hostPort": 0}]},
            "networks": [{"mode": "container/bridge"}],
        },
        {
            "container": {
                "type": "MESOS",
                "docker": {"image": "127.0.0.1:5000/app@sha256:" + "a" * 64},
            }
        },
        {"container": {**IMAGE, "docker": {"image": "busybox:1.36", "forcePullImage": True}}},
        {
            "container": {
                **IMAGE,
                "volumes": [
                    {"containerPath": "/data", "hostPath": "/srv/data", "mode": "RW"},
                    {"containerPath": "conf", "hostPath": "/srv", "mode": "RO"},
                ],
            }
        },
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


def test_what_the_agent_is_told_to_run() -> None:
    spec = normalize_app(
        read_app(
            {
                "id": "/web",
                "container": {
                    "type": "MESOS",
                    "docker": {"image": "busybox", "forcePullImage": True},
                },
                "user": "app",
                "uris": ["http://x/a.tgz"],
            }
        )
    )
    check_runnable(spec)  # an image alone is something to run
    run = run_spec(spec)
    assert run.container == ContainerSpec("MESOS", "busybox", force_pull=True)
    assert run.cmd is None and run.args == () and run.user == "app"
    assert run.fetch == (FetchUri("http://x/a.tgz", extract=True),)
    launch = run.launch_spec("web.1", "/web", "v1", ())
    assert launch.container == run.container and launch.user == "app"
    assert type(launch).from_json(launch.to_json()) == launch
    plain = run_spec(normalize_app(read_app({**BASE, "container": {"type": "MESOS"}})))
    assert plain.container is None and plain.launch_spec("w.1", "/w", "v", ()).container is None


def test_the_operator_allows_privileged_containers_and_more_host_paths() -> None:
    body = {
        "container": {
            "type": "DOCKER",
            "docker": {"image": "busybox", "privileged": True},
            "volumes": [{"containerPath": "/h", "hostPath": "/home", "mode": "RO"}],
        }
    }
    assert [path for path, _ in refused(body, Allowances())] == [
        "/container/docker/privileged",
        "/container/volumes(0)/hostPath",
    ]
    assert refused(body, Allowances(host_paths=("/home/",), privileged=True)) == []
    run = run_spec(normalize_app(read_app({**BASE, **body})))
    assert run.container is not None and run.container.privileged is True
    assert run.container.volumes == (VolumeSpec("/h", "/home", "RO"),)


def test_bridge_port_mappings_tell_the_agent_where_each_host_port_goes() -> None:
    body = {
        "container": {
            **IMAGE,
            "portMappings": [
                {"containerPort": 8080, "hostPort": 0, "name": "http"},
                {"containerPort": 53, "protocol": "udp,tcp"},
                {"containerPort": 0, "hostPort": 31000},
            ],
        },
        "networks": [{"mode": "container/bridge"}],
    }
    run = run_spec(normalize_app(read_app({**BASE, **body})))
    assert run.host_ports == (0, 0, 31000)  # a mapping without hostPort takes any, in bridge
    assert run.container is not None and run.container.network == "bridge"
    assert run.container.port_mappings == (
        ContainerPort(8080),
        ContainerPort(53, "udp,tcp"),
        ContainerPort(0),
    )
    launch = run.launch_spec("web.1", "/web", "v1", (31005, 31006, 31000))
    assert type(launch).from_json(launch.to_json()) == launch


def test_a_resident_app_is_run_with_its_persistent_volumes() -> None:
    volume = {"containerPath": "data", "mode": "RW", "persistent": {"type": "root", "size": 64}}
    body = {"container": {"type": "MESOS", "volumes": [volume]}}
    assert refused(body) == []
    spec = normalize_app(read_app({**BASE, **body}))
    assert spec.kept.residency is not None  # Marathon adds it for persistent volumes
    run = run_spec(spec)
    assert [(v.container_path, v.size) for v in run.persistent] == [("data", 64)]
    assert run.unreachable_inactive_after_seconds is None  # resident: unreachableStrategy disabled
    # residency without persistent volumes means nothing to Marathon: refused
    lone = {"residency": {"taskLostBehavior": "WAIT_FOREVER"}}
    assert refused(lone) == [
        ("/", "AppDefinition must contain persistent volumes and define residency")
    ]


@pytest.mark.parametrize(
    ("value", "refusal"),
    [
        ("64", None),
        (" 4194304 ", None),
        ("0", "'0' is not a number of processes from 1 to 4194304"),
        ("4194305", "'4194305' is not a number of processes from 1 to 4194304"),
        ("-1", "'-1' is not a number of processes from 1 to 4194304"),
        ("lots", "'lots' is not a number of processes from 1 to 4194304"),
        ("١٢", "'١٢' is not a number of processes from 1 to 4194304"),  # digits, not ASCII
    ],
)
def test_the_pids_label_is_a_number_or_refused(value: str, refusal: str | None) -> None:
    # Marathon has no field for a process limit: the label is Pallet's, honoured or refused
    found = refused({"labels": {"PALLET_PIDS_MAX": value, "other": "x"}})
    assert found == ([] if refusal is None else [("/labels/PALLET_PIDS_MAX", refusal)])
