"""How close the pallet policy's GPU allocation is to what any scheduler could reach.

Replays the FGD arrival protocol (``pallet.sim.packing``) through the pods that the
protocol's point ``--load`` % (100 or 130) averages over, and prints, per seed:

- ``alloc``: the protocol's value at that point for ``--policy``;
- ``ceiling``: the highest value any policy can reach on the same arrivals under the
  protocol, where a pod that fits somewhere is placed (``pallet.sim.ceiling``, an LP
  bound that accounts for shares failing on CPU or memory; ``shares_failed_with_room``
  counts the shares that failed in this run while a GPU had room for the largest);
- the fractional cutting-stock waste (``pallet_shares.share_duals``) of every share that
  arrived, and of the shares the policy did place.

    python bench/share_ceiling.py --workload default --seeds 42,43 --policy pallet \
        [--load 130] [--json]
"""

from __future__ import annotations

import argparse
import collections
import json
import math

import numpy as np

from pallet.core.policies import make_policy
from pallet.core.policies.pallet_shares import share_duals
from pallet.core.schedule import schedule
from pallet.core.view import ClusterView
from pallet.sim.packing import SEQUENCES, arrivals, ceiling, curve, typical_workload
from pallet.sim.traces.openb import OpenbPod, read_openb_nodes, read_openb_pods, resolve_workload


def lp_waste(sizes: collections.Counter[int]) -> float:
    """GPUs the best fractional packing of these share sizes leaves idle."""
    if not sizes:
        return 0.0
    duals = share_duals(dict(sizes))
    devices = sum(count * duals[size] for size, count in sizes.items())
    return devices - sum(size * count for size, count in sizes.items()) / 1000


def run(
    workload: str, policy_name: str, seed: int, load: int, draws: str = "go"
) -> dict[str, float | int | str]:
    nodes = read_openb_nodes()
    pods = read_openb_pods(resolve_workload(workload)[1])
    total = sum(n.capacity.gpu for n in nodes)
    view = ClusterView(sorted(nodes, key=lambda n: n.id))
    sequence, view.rank, rng = arrivals(pods, len(nodes), total, seed, draws)
    policy = make_policy(policy_name, typical_workload(pods))
    largest = max(p.gpu_milli for p in sequence if is_share(p))
    arrived: collections.Counter[int] = collections.Counter()
    placed: collections.Counter[int] = collections.Counter()
    arrived_milli, used_milli = [], []
    failed_with_room = 0  # shares turned away while a device had room for the largest
    so_far = 0
    for k, pod in enumerate(sequence):
        so_far += pod.gpu_total
        if so_far * 1000 > total * (10 * load + 5):  # rounds to load + 1 %: past the point
            break
        room = bool((view.gpu_maxidle >= largest).any())
        plan = schedule([pod.request(f"{pod.name}#{k}")], view, policy, rng)
        arrived_milli.append(so_far)
        used_milli.append(view.allocated_gpu_milli())
        if is_share(pod):
            arrived[pod.gpu_milli] += 1
            placed[pod.gpu_milli] += 0 if plan.unplaced else 1
            failed_with_room += int(room and bool(plan.unplaced))
    idle = float(view.free_gpu.sum()) / 1000
    every = lp_waste(arrived)
    bound = ceiling(nodes, pods, seed, load, draws)
    point = curve(np.array(arrived_milli), np.array(used_milli), total)[load]
    return {
        "workload": workload,
        "policy": policy_name,
        "seed": seed,
        "load": load,
        "alloc": point,
        "idle_gpus": round(idle, 1),
        "lp_idle_if_every_share_placed": round(every, 1),
        "lp_idle_of_placed_shares": round(lp_waste(placed), 1),
        "shares_unplaced": sum(arrived.values()) - sum(placed.values()),
        "shares_failed_with_room": failed_with_room,
        "idle_gpus_at_least": round(bound.idle_milli / 1000, 1),
        "ceiling": math.ceil(100 * bound.alloc_pct) / 100,  # rounded up: still a bound
    }


def is_share(pod: OpenbPod) -> bool:
    return pod.num_gpu == 1 and pod.gpu_milli < 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="default")
    parser.add_argument("--policy", default="pallet")
    parser.add_argument("--seeds", default="42,43,44")
    parser.add_argument("--load", type=int, default=100, help="arrived GPU load, %%")
    parser.add_argument("--sequence", choices=SEQUENCES, default="go", help="whose draws")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = [
        run(args.workload, args.policy, int(s), args.load, args.sequence)
        for s in args.seeds.split(",")
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    keys = list(rows[0])
    print(" | ".join(keys))
    for row in rows:
        print(" | ".join(str(row[k]) for k in keys))


if __name__ == "__main__":
    main()
