"""An app spec as the scheduler sees one instance: ``pallet.model.PlacementRequest``, built
in one place (``RunSpec.placement_request``) from what the API edge makes of the JSON."""

from __future__ import annotations

from typing import Any

import pytest

from pallet.api.marathon import AppSpec
from pallet.model import Constraint, Operator, PlacementRequest, Resources
from pallet.model.app_run import run_spec

from .conftest import spec_of


def placement(spec: AppSpec, task_id: str, priority: int = 0) -> PlacementRequest:
    return run_spec(spec).placement_request(spec.id, task_id, priority=priority)


def request(body: dict[str, Any]) -> PlacementRequest:
    return placement(spec_of({"id": "/web", "cmd": "x", **body}), "web.t1")


@pytest.mark.parametrize(
    ("body", "ports"),
    [
        ({}, (0,)),  # Marathon's default: one port definition, dynamic host port
        ({"portDefinitions": []}, ()),
        ({"ports": []}, ()),
        ({"portDefinitions": [{"port": 8080}, {"port": 0}]}, (0, 0)),  # service ports, host dynamic
        ({"portDefinitions": [{"port": 8080}, {"port": 0}], "requirePorts": True}, (8080, 0)),
        ({"ports": [9000, 9001], "requirePorts": True}, (9000, 9001)),
        # bridge: a mapping without hostPort gets 0 (any); container networks take none
        (
            {
                "networks": [{"mode": "container/bridge"}],
                "container": {
                    "type": "MESOS",
                    "portMappings": [
                        {"containerPort": 80},
                        {"containerPort": 81, "hostPort": 31000},
                    ],
                },
            },
            (0, 31000),
        ),
        (
            {
                "networks": [{"mode": "container", "name": "dev"}],
                "container": {
                    "type": "MESOS",
                    "portMappings": [{"containerPort": 80}, {"containerPort": 81, "hostPort": 0}],
                },
            },
            (0,),
        ),
        # requirePorts applies only on the host network
        ({"networks": [{"mode": "container/bridge"}], "requirePorts": True}, (0,)),
    ],
)
def test_host_ports(body: dict[str, Any], ports: tuple[int, ...]) -> None:
    assert request(body).ports == ports


@pytest.mark.parametrize(
    ("body", "resources"),
    [
        (
            {},
            Resources(cpu_milli=1000, mem_mib=128, disk_mib=0, gpu_milli=0),
        ),  # Marathon's defaults
        (
            {"cpus": 0.1, "mem": 100.5, "disk": 10},
            Resources(cpu_milli=100, mem_mib=101, disk_mib=10),
        ),  # rounded up
        ({"cpus": 0.001}, Resources(cpu_milli=1, mem_mib=128)),
        (
            {"gpus": 0.5},
            Resources(cpu_milli=1000, mem_mib=128, gpu_milli=500),
        ),  # a share of one device
        ({"gpus": 2}, Resources(cpu_milli=1000, mem_mib=128, gpu_milli=2000)),
    ],
)
def test_resources(body: dict[str, Any], resources: Resources) -> None:
    assert request(body).resources == resources


def test_request_carries_id_app_role_constraints_and_priority() -> None:
    spec = spec_of(
        {
            "id": "/prod/web",
            "cmd": "x",
            "role": "prod",
            "constraints": [
                ["hostname", "UNIQUE"],
                ["rack", "group_by", "3"],
                ["zone", "IN", "a,b"],
            ],
        }
    )
    got = placement(spec, "prod_web.t7", priority=5)
    assert got == PlacementRequest(
        id="prod_web.t7",
        app_id="/prod/web",
        resources=Resources(cpu_milli=1000, mem_mib=128),
        ports=(0,),
        constraints=(
            Constraint("hostname", Operator.UNIQUE),
            Constraint("rack", Operator.GROUP_BY, "3"),
            Constraint("zone", Operator.IN, "a,b"),
        ),
        role="prod",
        priority=5,
    )


def test_instances_of_one_app_share_a_shape_key() -> None:
    spec = spec_of({"id": "/web", "cmd": "x", "instances": 3})
    keys = {placement(spec, f"web.t{i}").shape_key() for i in range(spec.instances)}
    assert len(keys) == 1


def test_on_host_network() -> None:
    assert spec_of({"id": "/web", "cmd": "x"}).on_host_network
    assert not spec_of(
        {"id": "/web", "cmd": "x", "networks": [{"mode": "container/bridge"}]}
    ).on_host_network
