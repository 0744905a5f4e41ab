"""Machine-shape readers: Google 2011 joint configurations and Alibaba 2018 machines."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from pallet.model import NodeState
from pallet.model.errors import TraceError
from pallet.sim.traces.alibaba2018 import alibaba2018_nodes, read_machine_meta
from pallet.sim.traces.google import (
    GOOGLE_CELL_MACHINES,
    GoogleScale,
    MachineConfig,
    apportion,
    google_cluster,
    read_machine_configs,
)

# ------------------------------------------------------------------ Google 2011


@pytest.mark.traces
def test_google_configs_match_the_readme():
    configs = read_machine_configs()
    assert len(configs) == 10
    assert configs[:4] == [
        MachineConfig(0.5, 0.5, 53.47),
        MachineConfig(0.5, 0.25, 30.74),
        MachineConfig(0.5, 0.75, 7.95),
        MachineConfig(1.0, 1.0, 6.32),
    ]
    assert sum(c.percent for c in configs) == pytest.approx(100.0, abs=0.1)


@pytest.mark.traces
def test_google_cluster_has_the_joint_shares_at_the_stated_scale():
    nodes = google_cluster()
    assert len(nodes) == GOOGLE_CELL_MACHINES == 12_583
    shapes = Counter((n.capacity.cpu_milli, n.capacity.mem_mib) for n in nodes)
    # 1.0 = 32 cores / 128 GiB: (0.5, 0.5) is 16 cores / 64 GiB, 53.47 % of 12,583 = 6728.1
    assert shapes[(16_000, 65_536)] == 6728
    assert shapes[(16_000, 32_768)] == 3868  # 30.74 % = 3868.0
    assert shapes[(32_000, 131_072)] == 795  # 6.32 % = 795.2
    assert len({n.id for n in nodes}) == len(nodes)
    assert nodes[0].attributes == {"cpu_normalized": "0.5", "mem_normalized": "0.5"}


@pytest.mark.traces
def test_google_cluster_scales_and_sizes():
    nodes = google_cluster(100, GoogleScale(cores=64, mem_gib=256))
    assert len(nodes) == 100
    # Floors 53, 30, 7, 6, 0, ... leave 4 nodes for the largest remainders: .99 (0.25/0.25),
    # .95 (0.5/0.75), .74 (0.5/0.25) and .47 (0.5/0.5), so 0.5/0.5 gets 54.
    counts = Counter((n.capacity.cpu_milli, n.capacity.mem_mib) for n in nodes)
    assert counts[(32_000, 131_072)] == 54 and counts[(16_000, 65_536)] == 1
    assert counts[(64_000, 262_144)] == 6


@pytest.mark.parametrize(
    ("shares", "n", "expected"),
    [
        ([1, 1, 1], 10, [4, 3, 3]),  # 3.33 each: the one spare goes to the first
        ([53.47, 30.74, 15.79], 7, [4, 2, 1]),  # 3.74, 2.15, 1.11 -> 3, 2, 1 + 1 to the first
        ([1, 0], 5, [5, 0]),
        ([2, 1], 0, [0, 0]),
    ],
)
def test_apportion_largest_remainder(shares, n, expected):
    assert apportion(shares, n) == expected


def test_google_bad_share_is_a_trace_error(tmp_path: Path):
    path = tmp_path / "joint.csv"
    path.write_text("cpu_normalized,mem_normalized,pct_machines\n0.5,0.5,60\n1.5,1,40\n")
    with pytest.raises(TraceError) as err:
        read_machine_configs(path)
    assert (err.value.line, err.value.field) == (3, "cpu_normalized")
    path.write_text("cpu_normalized,mem_normalized,pct_machines\n0.5,0.5,60\n1,1,30\n")
    with pytest.raises(TraceError, match="add up to 90"):
        read_machine_configs(path)


# ------------------------------------------------------------------ Alibaba 2018


@pytest.mark.traces
def test_alibaba_machines_match_the_readme():
    machines = read_machine_meta()
    assert len(machines) == 4034
    assert {m.cores for m in machines} == {96}
    assert {m.mem_normalized for m in machines} == {100}
    assert len({m.failure_domain_1 for m in machines}) == 292
    # The README's 21 values of failure_domain_2 include the blank some rows carry;
    # every machine has a non-blank value in a later row.
    assert len({m.failure_domain_2 for m in machines}) == 20
    assert all(m.failure_domain_2 for m in machines)
    assert [m.machine_id for m in machines if m.status != "USING"] == ["m_2739"]


@pytest.mark.traces
def test_alibaba_nodes_have_capacity_domains_and_state():
    nodes = {n.id: n for n in alibaba2018_nodes()}
    first = nodes["m_1"]
    assert first.capacity.as_tuple() == (96_000, 384 * 1024, 0, 0)
    assert first.attributes == {
        "status": "USING",
        "failure_domain_1": "219",
        "failure_domain_2": "17",
    }
    assert first.state is NodeState.ACTIVE
    assert nodes["m_2739"].state is NodeState.DRAINING
    assert alibaba2018_nodes(mem_gib=512)[0].capacity.mem_mib == 512 * 1024


def test_alibaba_latest_row_wins_and_blank_domains_fall_back(tmp_path: Path):
    path = tmp_path / "machine_meta.csv"
    path.write_text(
        "m_1,0,5,7,96,100,IMPORT_INSTALLING\n"
        "m_2,10,1,2,96,50,USING\n"
        "m_1,100,6,,96,100,USING\n"  # latest: domain 1 moves to 6, domain 2 stays 7
    )
    machines = read_machine_meta(path)
    assert [(m.machine_id, m.failure_domain_1, m.failure_domain_2, m.status) for m in machines] == [
        ("m_1", "6", "7", "USING"),
        ("m_2", "1", "2", "USING"),
    ]
    assert machines[1].node(mem_gib=100).capacity.mem_mib == 50 * 1024


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        ("m_1,0,5,7,96,100,USING\nm_2,x,5,7,96,100,USING\n", 2, "time_stamp"),
        ("m_1,0,5,7,0,100,USING\n", 1, "cpu_num"),
        ("m_1,0,5,7,96,101,USING\n", 1, "mem_size"),
        ("m_1,0,5,7,96,100\n", 1, "-"),
        ("m_1,0,5,7,96,100,\n", 1, "status"),
    ],
)
def test_alibaba_malformed_rows(tmp_path: Path, text: str, line: int, field: str):
    path = tmp_path / "machine_meta.csv"
    path.write_text(text)
    with pytest.raises(TraceError) as err:
        read_machine_meta(path)
    assert (err.value.path, err.value.line, err.value.field) == (str(path), line, field)
