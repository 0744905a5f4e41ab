"""``pallet bench throughput``: placements per second on a 12,500-node cluster.

Cluster: 12,500 nodes with the Google 2011 cell's joint (cpu, mem) shares, 1.0 scaled
to 64 cores / 256 GiB, each with host ports 31000-32000. Tasks: the first 100,000 VMs
of the Azure 2017 dev split in arrival order; a tenant batch is an app. A seeded 10 %
of the apps carry ``hostname UNIQUE`` and half of them (by a seeded coin per app) ask
for one dynamic host port. Each 5-minute arrival bin is one ``schedule`` call, as a
master's scheduling worker would batch them. The clock is read only around
``schedule`` calls; building requests is not timed. One core; each policy runs in a
child forked from the process that built the case, so every policy starts from the same
heap (run one after another in one process, a policy ran up to 1.8 times slower after
another had churned through 100,000 placements than on its own).
"""

from __future__ import annotations

import multiprocessing
import time
from dataclasses import dataclass, replace
from itertools import groupby
from multiprocessing.connection import Connection

import numpy as np

from pallet.core import ClusterView, make_policy, schedule
from pallet.model import Constraint, Operator, PlacementRequest, PortRange
from pallet.sim.traces.azure import read_azure_vms
from pallet.sim.traces.google import GoogleScale, google_cluster

__all__ = ["ThroughputResult", "build_throughput_case", "run_throughput", "run_throughput_apart"]

UNIQUE = (Constraint("hostname", Operator.UNIQUE),)


@dataclass(frozen=True, slots=True)
class ThroughputResult:
    policy: str
    placed: int
    unplaced: int
    seconds: float

    @property
    def placements_per_s(self) -> float:
        return self.placed / self.seconds if self.seconds else 0.0


def build_throughput_case(
    nodes: int = 12_500, tasks: int = 100_000, seed: int = 1
) -> tuple[ClusterView, list[list[PlacementRequest]]]:
    """The cluster and the request batches (one per arrival bin)."""
    ports = (PortRange(31000, 32000),)
    cluster = [replace(n, ports=ports) for n in google_cluster(nodes, GoogleScale(64, 256))]
    vms = read_azure_vms()[:tasks]
    rng = np.random.default_rng(seed)
    apps = sorted({vm.tenant_batch for vm in vms})
    unique = set(np.array(apps)[rng.random(len(apps)) < 0.10].tolist())
    with_port = set(np.array(apps)[rng.random(len(apps)) < 0.50].tolist())
    batches = []
    for _, group in groupby(vms, key=lambda vm: vm.time_s):
        batch = []
        for vm in group:
            r = vm.request()
            batch.append(
                replace(
                    r,
                    constraints=UNIQUE if vm.tenant_batch in unique else (),
                    ports=(0,) if vm.tenant_batch in with_port else (),
                )
            )
        batches.append(batch)
    return ClusterView(cluster), batches


def run_throughput(
    policy_name: str, view: ClusterView, batches: list[list[PlacementRequest]], seed: int = 0
) -> ThroughputResult:
    view = view.copy()
    policy = make_policy(policy_name)
    rng = np.random.default_rng(seed)
    placed = unplaced = 0
    elapsed = 0.0
    for batch in batches:
        start = time.perf_counter()
        plan = schedule(batch, view, policy, rng)
        elapsed += time.perf_counter() - start
        placed += len(plan.placements)
        unplaced += len(plan.unplaced)
    return ThroughputResult(policy_name, placed, unplaced, elapsed)


def run_throughput_apart(
    policy_name: str, view: ClusterView, batches: list[list[PlacementRequest]], seed: int = 0
) -> ThroughputResult:
    """``run_throughput`` in a child forked from this process, so that what an earlier
    run left on the heap does not slow this one down."""
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_run_in_child, args=(send, policy_name, view, batches, seed))
    child.start()
    send.close()
    try:
        result: ThroughputResult = receive.recv()
    except EOFError:
        child.join()
        raise RuntimeError(
            f"the {policy_name} run ended without a result (exit {child.exitcode})"
        ) from None
    finally:
        receive.close()
    child.join()
    return result


def _run_in_child(
    out: Connection,
    policy_name: str,
    view: ClusterView,
    batches: list[list[PlacementRequest]],
    seed: int,
) -> None:
    out.send(run_throughput(policy_name, view, batches, seed))
    out.close()
