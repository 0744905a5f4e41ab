"""The machine as a Node: measured resources, --resources and --attributes overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from pallet.agent import fingerprint, parse_attributes, parse_resources
from pallet.agent.fingerprint import Offered, measure
from pallet.model import PortRange, Resources, ValidationError

MEASURED = Offered(
    cpu_milli=4000, mem_mib=7168, disk_mib=50_000, gpus=0, ports=(PortRange(31000, 32000),)
)


def test_resources_in_mesos_syntax() -> None:
    assert parse_resources(
        "cpus:8;mem:16384;disk:10000;gpus:2;ports:[31000-32000,33000-33010]"
    ) == {
        "cpus": 8000,
        "mem": 16384,
        "disk": 10000,
        "gpus": 2,
        "ports": (PortRange(31000, 32000), PortRange(33000, 33010)),
    }
    # Fractions: 0.5 cpus = 500 millicpus; 1024.7 MiB offers 1024 whole MiB.
    assert parse_resources(" cpus:0.5 ; mem:1024.7 ;") == {"cpus": 500, "mem": 1024}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cpus=8", "cannot read 'cpus=8'; write name:value"),
        ("cpus:8;mem", "cannot read 'mem'"),
        ("cpu:8", "'cpu:8': unknown resource 'cpu'; use one of cpus, mem, disk, gpus, ports"),
        ("cpus:eight", "'cpus:eight': 'eight' is not a non-negative number"),
        ("mem:-5", "'mem:-5': '-5' is not a non-negative number"),
        ("gpus:1.5", "'gpus:1.5': gpus counts whole devices"),
        ("cpus:1;cpus:2", "'cpus:2': cpus is given twice"),
        ("cpus(web):2", "'cpus(web):2': roles on agent resources are not supported"),
        ("ports:[32000-31000]", "port range '32000-31000' must lie within 1-65535"),
        ("ports:[31000-32000,31500-31600]", "overlap"),
    ],
)
def test_bad_resources_name_the_item(text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=r"^--resources") as info:
        parse_resources(text)
    assert message in str(info.value)


def test_attributes() -> None:
    assert parse_attributes("rack:r1;zone:a; os:debian-12") == {
        "rack": "r1",
        "zone": "a",
        "os": "debian-12",
    }
    for text, message in [
        ("rack", "cannot read 'rack'"),
        ("rack:r1;rack:r2", "attribute rack is given twice"),
        ("ra ck:r1", "has odd characters"),
    ]:
        with pytest.raises(ValidationError, match=r"^--attributes") as info:
            parse_attributes(text)
        assert message in str(info.value)


def test_fingerprint_overrides_what_it_names_and_keeps_the_rest(tmp_path: Path) -> None:
    node = fingerprint(
        "node-7",
        sandbox_root=tmp_path,
        hostname="h7",
        resources="cpus:2;gpus:1",
        attributes="rack:r1",
        gpu_model="A100",
        measured=MEASURED,
    )
    assert node.id == "node-7" and node.hostname == "h7"
    assert node.capacity == Resources(cpu_milli=2000, mem_mib=7168, disk_mib=50_000, gpu_milli=1000)
    assert (node.gpu_count, node.gpu_model) == (1, "A100")
    assert node.ports == (PortRange(31000, 32000),)
    assert node.attributes == {"rack": "r1"}


def test_measure_this_machine(tmp_path: Path) -> None:
    offered = measure(tmp_path)
    assert offered.cpu_milli >= 1000 and offered.cpu_milli % 1000 == 0
    assert offered.mem_mib > 0 and offered.disk_mib > 0 and offered.gpus == 0
    assert offered.ports == (PortRange(31000, 32000),)
    node = fingerprint("self", sandbox_root=tmp_path)
    assert node.capacity.cpu_milli == offered.cpu_milli
