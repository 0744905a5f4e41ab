"""What a job's tasks run in, through the routes: Metronome's ``run.user``, ``artifacts``,
``docker``, ``ucr``, ``volumes`` and ``networks`` accepted and returned as Metronome
returns them, sent to the agent as an app's ``user``, ``fetch`` and ``container`` are,
and bad or unsupported values refused with their path, nothing stored."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from pallet.api import create_api
from pallet.api.marathon.support import Allowances
from pallet.control import Control

from .conftest import INFO, register
from .test_jobs import FULL, job, loops, paths

pytestmark = pytest.mark.anyio

IMAGE = "127.0.0.1:5000/tools/backup:1.2"


@pytest.fixture
async def allowing(control: Control) -> AsyncIterator[httpx.AsyncClient]:
    """The API of a cluster whose operator allows host paths under /srv and privileged
    containers (``pallet master --allow-host-path /srv --allow-privileged``)."""
    app = create_api(
        control, INFO, manage_control=False, allowances=Allowances(("/srv",), privileged=True)
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://master") as client:
        yield client


async def created(api: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    r = await api.post("/v1/jobs", json=body)
    assert r.status_code == 201, r.text
    got = (await api.get(f"/v1/jobs/{body['id']}")).json()
    assert got == r.json()
    return dict(got["run"])


async def test_each_field_round_trips_as_metronome_returns_it(api: httpx.AsyncClient) -> None:
    run = await created(
        api,
        job(
            "fetching",
            user="nobody",
            artifacts=[{"uri": "https://example.com/tool.tgz"}, {"uri": "/opt/x", "cache": True}],
            networks=[{"mode": "host"}],
        ),
    )
    assert run["user"] == "nobody"
    assert run["artifacts"] == [  # Metronome writes every flag, its defaults filled in
        {
            "uri": "https://example.com/tool.tgz",
            "extract": True,
            "executable": False,
            "cache": False,
        },
        {"uri": "/opt/x", "extract": True, "executable": False, "cache": True},
    ]
    assert run["networks"] == [{"mode": "host"}]
    assert "docker" not in run and "ucr" not in run

    run = await created(api, job("docker", docker={"image": IMAGE}))
    assert run["docker"] == {
        "image": IMAGE,
        "privileged": False,
        "parameters": [],
        "forcePullImage": False,
    }
    assert "user" not in run and run["artifacts"] == [] and run["networks"] == []

    body = {"id": "ucr", "run": {"cpus": 0.1, "mem": 32, "ucr": {"image": {"id": IMAGE}}}}
    run = await created(api, body)  # no cmd: the image's own entrypoint runs
    assert run["ucr"] == {
        "image": {"id": IMAGE, "kind": "docker", "forcePull": False},
        "privileged": False,
    }
    assert "cmd" not in run and "docker" not in run

    bridged = job(
        "bridged",
        ucr={"image": {"id": IMAGE, "kind": "docker", "forcePull": True}},
        networks=[{"mode": "container/bridge", "labels": {"team": "ops"}}],
    )
    run = await created(api, bridged)
    assert run["ucr"]["image"]["forcePull"] is True
    assert run["networks"] == [{"mode": "container/bridge", "labels": {"team": "ops"}}]


async def test_what_is_returned_can_be_sent_back_unchanged(allowing: httpx.AsyncClient) -> None:
    body = copy.deepcopy(FULL)
    body["run"]["networks"] = [{"mode": "container/bridge"}]
    body["run"]["volumes"] = [
        {"containerPath": "/mnt/test", "hostPath": "/srv/guest", "mode": "RW"}
    ]
    body["run"]["docker"] = {"image": "foo/bla:test", "privileged": True}
    first = (await allowing.post("/v1/jobs", json=body)).json()
    assert first["run"]["volumes"] == body["run"]["volumes"]
    assert first["run"]["docker"]["privileged"] is True
    r = await allowing.put("/v1/jobs/prod.example.app", json=first)
    assert r.status_code == 200, r.text
    assert r.json() == first


async def test_the_agent_gets_the_user_artifacts_and_container(
    allowing: httpx.AsyncClient, control: Control
) -> None:
    await register(allowing, 1)
    body = job(
        "backup",
        cmd="./tool",
        user="nobody",
        artifacts=[{"uri": "http://files.local/tool", "executable": True, "extract": False}],
        ucr={"image": {"id": IMAGE}, "privileged": True},
        volumes=[{"containerPath": "data", "hostPath": "/srv/backups", "mode": "RO"}],
        networks=[{"mode": "container/bridge"}],
    )
    await created(allowing, body)
    assert (await allowing.post("/v1/jobs/backup/runs")).status_code == 201
    await loops(control)
    r = await allowing.get("/v1/agent/nodes/node-0/desired", params={"after": 0, "wait": 0})
    (spec,) = r.json()["tasks"]
    assert spec["user"] == "nobody" and spec["cmd"] == "./tool"
    assert spec["fetch"] == [
        {
            "uri": "http://files.local/tool",
            "extract": False,
            "executable": True,
            "cache": False,
            "dest_path": None,
        }
    ]
    container = spec["container"]
    assert (container["type"], container["image"], container["privileged"]) == (
        "MESOS",
        IMAGE,
        True,
    )
    assert container["volumes"] == [
        {"container_path": "data", "host_path": "/srv/backups", "mode": "RO"}
    ]
    assert container["network"] == "bridge" and container["port_mappings"] == []


@pytest.mark.parametrize(
    ("run", "path", "says"),
    [
        ({"docker": {"image": IMAGE, "parameters": [{"key": "a", "value": "b"}]}},
         "/run/docker/parameters", "unsupported by Pallet: docker parameters"),
        ({"docker": {"image": IMAGE, "privileged": True}},
         "/run/docker/privileged", "--allow-privileged"),
        ({"ucr": {"image": {"id": IMAGE}, "privileged": True}},
         "/run/ucr/privileged", "--allow-privileged"),
        ({"ucr": {"image": {"id": IMAGE, "kind": "appc"}}},
         "/run/ucr/image/kind", "unsupported by Pallet: appc images"),
        ({"ucr": {"image": {"id": IMAGE, "kind": "oci"}}},
         "/run/ucr/image/kind", "error.unknown.enum.literal"),
        ({"docker": {"image": IMAGE}, "ucr": {"image": {"id": IMAGE}}},
         "/run", "Either Docker or UCR should be provided, but not both"),
        ({"docker": {"image": "Not An Image!"}}, "/run/docker/image", "invalid image reference"),
        ({"ucr": {"image": {"id": ""}}}, "/run/ucr/image/id", "invalid image reference"),
        ({"docker": {"forcePullImage": True}}, "/run/docker/image", "error.path.missing"),
        ({"docker": {"image": IMAGE, "pullConfig": {}}}, "/run/docker/pullConfig", "unknown field"),
        ({"docker": {"image": IMAGE}, "gpus": 1}, "/run/gpus", "GPUs are not supported with Docker"),
        ({"artifacts": [{"uri": "ftp://host/x"}]}, "/run/artifacts(0)/uri", "unsupported by Pallet"),
        ({"artifacts": [{"uri": "http://x/" + "a" * 2000}]}, "/run/artifacts(0)/uri", "1-1024"),
        ({"artifacts": [{"extract": False}]}, "/run/artifacts(0)/uri", "error.path.missing"),
        ({"artifacts": [{"uri": "http://x/y", "destPath": "y"}]},
         "/run/artifacts(0)/destPath", "unknown field"),
        ({"artifacts": [{"uri": "http://x/y", "cache": "yes"}]},
         "/run/artifacts(0)/cache", "error.expected.jsboolean"),
        ({"user": ""}, "/run/user", "user name"),
        ({"user": 7}, "/run/user", "error.expected.jsstring"),
        ({"volumes": [{"containerPath": "/etc/x", "secret": "s"}]},
         "/run/volumes(0)/secret", "references an undefined secret"),
        ({"volumes": [{"containerPath": "/etc/x", "secret": "s"}], "secrets": {"s": {"source": "s"}}},
         "/run/volumes(0)/containerPath", "relative path inside the sandbox"),
        ({"volumes": [{"containerPath": "/d", "hostPath": "/srv/d", "mode": "RW"}]},
         "/run/volumes(0)", "host volumes for a task without a container image"),
        ({"docker": {"image": IMAGE},
          "volumes": [{"containerPath": "/d", "hostPath": "/etc", "mode": "RW"}]},
         "/run/volumes(0)/hostPath", "--allow-host-path"),
        ({"docker": {"image": IMAGE},
          "volumes": [{"containerPath": "/d", "hostPath": "/srv/d", "mode": "RX"}]},
         "/run/volumes(0)/mode", "must be RO or RW"),
        ({"docker": {"image": IMAGE}, "volumes": [{"containerPath": "/d", "hostPath": "/srv/d"}]},
         "/run/volumes(0)", "expected a host volume"),
        ({"docker": {"image": IMAGE}, "volumes": ["/srv:/d"]},
         "/run/volumes(0)", "error.expected.jsobject"),
        ({"networks": [{"mode": "container", "name": "calico"}], "docker": {"image": IMAGE}},
         "/run/networks(0)/mode", "unsupported by Pallet: container networks"),
        ({"networks": [{"mode": "container/bridge"}]},
         "/run/networks", "Only containers may join container or bridge networks"),
        ({"networks": [{"mode": "host"}, {"mode": "container/bridge"}], "docker": {"image": IMAGE}},
         "/run/networks", "You may not mix host, container, or container/bridge networking"),
        ({"networks": [{"mode": "host"}, {"mode": "host"}]},
         "/run/networks", "Only one host or container/bridge network modes are allowed"),
        ({"networks": [{"mode": "host", "name": "x"}]}, "/run/networks(0)/name", "host network"),
        ({"networks": [{"mode": "bridge"}]}, "/run/networks(0)/mode", "error.unknown.enum.literal"),
    ],
)  # fmt: skip
async def test_bad_or_unsupported_values_are_refused_with_their_path(
    allowing: httpx.AsyncClient, api: httpx.AsyncClient, run: dict[str, Any], path: str, says: str
) -> None:
    # privileged is refused only where the operator does not allow it; host paths are
    # checked against /srv, which ``allowing`` allows and ``api`` does not
    client = api if "privileged" in str(run) or "/etc" in str(run) else allowing
    found = paths(await client.post("/v1/jobs", json=job(**run)))
    assert path in found, found
    assert any(says in message for message in found[path]), found[path]
    assert (await client.get("/v1/jobs")).json() == []


async def test_metronomes_image_examples(api: httpx.AsyncClient) -> None:
    """job_ucr.json is accepted unchanged; job_docker_param.json is refused only for the
    docker parameters Pallet cannot pass to runc."""
    ucr = {
        "description": "example ucr runtime job",
        "id": "ucr-example",
        "run": {
            "cmd": "sleep inf",
            "cpus": 0.2,
            "mem": 32,
            "disk": 128,
            "ucr": {"image": {"id": "ubuntu"}},
        },
    }
    run = await created(api, ucr)
    assert run["ucr"] == {
        "image": {"id": "ubuntu", "kind": "docker", "forcePull": False},
        "privileged": False,
    }
    params = [{"key": "cap-drop", "value": "ALL"}, {"key": "cap-add", "value": "SYSLOG"}]
    docker = {
        "description": "example docker parameters job",
        "id": "docker-param",
        "run": {
            "cmd": "sleep inf",
            "cpus": 0.2,
            "mem": 32,
            "docker": {"image": "ubuntu", "parameters": params},
        },
    }
    assert set(paths(await api.post("/v1/jobs", json=docker))) == {"/run/docker/parameters"}
