"""``pallet bench faults`` partition scenario: an agent cut off from the master by the network
for a while, then healed; spawns a cluster in network namespaces (root only).

Three agents, an app of 6 instances with ``unreachableStrategy.inactiveAfterSeconds`` 10 and
a master whose heartbeat grace is 3 s; the agent with the most tasks is cut off. Measured:
``replaced_after_s`` (the cut until ``instances`` tasks run on the other agents) and, once
healed, ``running_after_heal`` against ``instances``. Baseline: the same app launched from
nothing.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from pallet.bench.lab_cluster import LabCluster, lab_cluster, poll
from pallet.bench.netns import lab_unavailable

__all__ = ["run_partition"]

INSTANCES = 6
GRACE = 3.0
INACTIVE_AFTER = 10


def _running(cluster: LabCluster, exclude: str = "") -> int:
    return sum(
        1 for t in cluster.tasks("/part") if t["state"] == "TASK_RUNNING" and t["host"] != exclude
    )


def run_partition(partition_s: float = 60.0) -> dict[str, Any]:
    if why := lab_unavailable():
        return {"scenario": "partition", "skipped": why}
    with (
        tempfile.TemporaryDirectory(prefix="pallet-faults-") as tmp,
        lab_cluster(Path(tmp), agents=3, heartbeat_grace=GRACE) as cluster,
    ):
        app = {
            "id": "/part",
            "cmd": "sleep 100000",
            "cpus": 0.05,
            "mem": 16,
            "instances": INSTANCES,
            "unreachableStrategy": {
                "inactiveAfterSeconds": INACTIVE_AFTER,
                "expungeAfterSeconds": 3600,
            },
        }
        started = time.monotonic()
        cluster.api("POST", "/v2/apps", json=app).raise_for_status()
        poll(lambda: _running(cluster) == INSTANCES, 120, "the app running")
        launch_s = time.monotonic() - started
        hosts = [t["host"] for t in cluster.tasks("/part")]
        victim_address = max(set(hosts), key=hosts.count)
        victim = next(h for h in cluster.agent_hosts if h.address == victim_address)
        cut_tasks = hosts.count(victim_address)
        cluster.lab.cut(victim)
        cut_at = time.monotonic()
        poll(
            lambda: _running(cluster, victim_address) == INSTANCES,
            max(60.0, partition_s),
            "the replacements running",
        )
        replaced_after_s = time.monotonic() - cut_at
        time.sleep(max(0.0, cut_at + partition_s - time.monotonic()))
        survived = len(cluster.task_processes(victim))
        cluster.lab.heal(victim)
        healed_at = time.monotonic()
        poll(lambda: cluster.nodes()[victim_address] == "ACTIVE", 60, "the agent back")
        poll(
            lambda: (
                len(cluster.tasks("/part")) == INSTANCES
                and _running(cluster) == INSTANCES
                and len(cluster.task_processes()) == INSTANCES
            ),
            60,
            "exactly the instances running",
        )
        converged_s = time.monotonic() - healed_at
        running_after_heal = _running(cluster)
        processes_after_heal = len(cluster.task_processes())
    return {
        "scenario": "partition",
        "partition_s": partition_s,
        "heartbeat_grace_s": GRACE,
        "inactive_after_s": INACTIVE_AFTER,
        "tasks_cut_off": cut_tasks,
        "tasks_alive_in_partition": survived,
        "replaced_after_s": round(replaced_after_s, 2),
        "running_after_heal": running_after_heal,
        "processes_after_heal": processes_after_heal,
        "instances": INSTANCES,
        "converged_after_heal_s": round(converged_s, 2),
        "baseline_launch_s": round(launch_s, 2),
    }
