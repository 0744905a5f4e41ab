"""A node's wire shape: what the agent sends on registration and the master stores."""

from __future__ import annotations

from pallet.model import Node, NodeState, parse_port_ranges
from pallet.model.node import node_from_json, node_to_json


def test_node_json_round_trip() -> None:
    node = Node.build(
        "n1",
        cpu_milli=8000,
        mem_mib=16384,
        disk_mib=1000,
        gpus=2,
        gpu_model="T4",
        ports=parse_port_ranges("[31000-31010,31020-31020]"),
        attributes={"rack": "r1"},
        state=NodeState.DRAINING,
    )
    doc = node_to_json(node)
    assert doc["capacity"] == [8000, 16384, 1000, 2000]
    assert doc["state"] == "DRAINING" and doc["attributes"] == {"rack": "r1"}
    assert node_from_json(doc) == node


def test_a_missing_state_reads_as_active() -> None:
    doc = {"id": "n2", "hostname": "h", "capacity": [1000, 512, 0, 0]}
    assert node_from_json(doc).state is NodeState.ACTIVE
