"""Online packing with departures on a tiny synthetic trace worked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from pallet.core.policies import POLICY_NAMES
from pallet.model import PlacementRequest, Resources
from pallet.sim.online import OnlineVM, run_online
from pallet.sim.traces.azure import NEVER, AzureVM
from pallet.sim.workloads import azure_hosts, busiest_moment

HOST = Resources(cpu_milli=4000, mem_mib=8192)


def vm(i: int, at: int, end: int, cpu: int, mem: int = 1024) -> OnlineVM:
    return OnlineVM(PlacementRequest(f"v{i}", f"v{i}", Resources(cpu, mem)), at, end)


# Two hosts of 4 cpus. Worked for k8s-most (fullest host first; ties to host 0):
#   t=0    v0 (2 cpus, leaves at 100) and v1 (2 cpus, leaves at 200) -> host 0 (full)
#   t=50   v2 (4 cpus, stays)          -> host 1 (full); 2 hosts in use: the peak
#   t=100  v0 leaves first (departures before arrivals), then v3 (2 cpus, leaves at
#          150) takes its room on host 0; were v3 handled first it would be rejected
#   t=120  v4 (4 cpus)                 -> both hosts full: rejected
#   t=200  v1 leaves, v3 left at 150   -> host 0 empty; 1 host in use until the end
# In use: 1 on [0, 50), 2 on [50, 200), 1 on [200, 300): (50 + 300 + 100) / 300 = 1.5.
TRACE = [
    vm(0, 0, 100, 2000),
    vm(1, 0, 200, 2000),
    vm(2, 50, NEVER, 4000),
    vm(3, 100, 150, 2000),
    vm(4, 120, NEVER, 4000),
]


@pytest.mark.parametrize("batch", [True, False])
def test_packing_policy_on_the_worked_trace(batch: bool):
    result = run_online(TRACE, "k8s-most", 2, host=HOST, end_s=300, batch=batch)
    assert (result.rejected, result.peak_in_use) == (1, 2)
    assert result.mean_in_use == pytest.approx(1.5)
    assert (result.vms, result.start_s, result.end_s) == (5, 0, 300)
    assert result.schedule_calls == (4 if batch else 5)  # 4 arrival times, 5 VMs


def test_spreading_policy_uses_both_hosts_from_the_start():
    # k8s-default puts v1 on the empty host 1 at t=0; at t=50 v2 (4 cpus) finds no
    # empty host and is rejected; v3 (t=100) goes to host 0, freed by v0; v4 rejected.
    # In use: 2 on [0, 150) (host 0: v0 then v3; host 1: v1), 1 on [150, 200) (v1),
    # 0 after: (300 + 50) / 300.
    result = run_online(TRACE, "k8s-default", 2, host=HOST, end_s=300)
    assert (result.rejected, result.peak_in_use) == (2, 2)
    assert result.mean_in_use == pytest.approx(350 / 300)


def test_default_window_ends_at_the_last_event():
    result = run_online(TRACE[:2], "bestfit", 2, host=HOST)
    # Both on host 0 from 0 to 200 (v1 leaves last): mean 1 over [0, 200).
    assert (result.end_s, result.mean_in_use, result.rejected) == (200, 1.0, 0)


def test_every_policy_runs_and_never_overcommits():
    rng = np.random.default_rng(1)
    trace = []
    for i in range(300):
        at = int(i // 10) * 300
        end = NEVER if rng.random() < 0.1 else at + int(rng.integers(1, 3000))
        trace.append(
            vm(i, at, end, int(rng.choice([1000, 2000, 4000])), int(rng.integers(1, 8)) * 1024)
        )
    for policy in POLICY_NAMES:
        result = run_online(trace, policy, 12, host=HOST)
        assert 0 <= result.rejected < 300 and 0 < result.peak_in_use <= 12, policy
        assert 0 < result.mean_in_use <= result.peak_in_use, policy


def test_busiest_moment_counts_vcpu_alive():
    vms = [
        AzureVM(0, 0, 0, 4000, 1024, "k", 1, False),
        AzureVM(1, 300, 1, 1000, 1024, "a", 1, False),
        AzureVM(2, 300, 2, 1000, 1024, "a", 1, False),
        AzureVM(3, 600, 3, 8000, 1024, "m", 1, False),
    ]
    # Alive vCPU: t=0 -> 4; t=300 -> 4 + 1 + 1 = 6 (VM 0 leaves at 301);
    # t=600 -> VMs 1 and 2 left at 600, VM 0 at 301: only VM 3, 8 vCPU. Busiest: 600.
    ends = np.array([301, 600, 600, 900], dtype=np.int64)
    assert busiest_moment(vms, ends) == (600, [3])
    ends = np.array([700, 900, 900, 900], dtype=np.int64)  # all alive at 600: 14
    assert busiest_moment(vms, ends) == (600, [0, 1, 2, 3])


def test_azure_hosts_are_identical():
    hosts = azure_hosts(3)
    assert [h.id for h in hosts] == ["azure-host-00000", "azure-host-00001", "azure-host-00002"]
    assert {h.capacity.as_tuple() for h in hosts} == {(64_000, 131_072, 0, 0)}
