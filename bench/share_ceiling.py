"""How close the pallet policy's GPU allocation is to what GPU shares allow.

Replays the FGD arrival protocol (``pallet.sim.packing``) up to ``--load`` % (100 or
130) of the cluster's GPUs arrived, then compares the GPUs left idle with the fractional cutting-stock
minimum (``pallet_shares.share_duals``: LP value = devices needed) of

- every share that arrived: the idle GPUs a scheduler that places every share must leave
  (at 100 %; past it not every share can be placed);
- the shares the policy did place: the waste no placement of that same set avoids.

    python bench/share_ceiling.py --workload default --seeds 42,43 --policy pallet \
        [--load 130] [--json]
"""

from __future__ import annotations

import argparse
import collections
import json

import numpy as np

from pallet.core.policies import make_policy
from pallet.core.policies.pallet_shares import share_duals
from pallet.core.schedule import schedule
from pallet.core.view import ClusterView
from pallet.sim.packing import build_sequence, typical_workload
from pallet.sim.traces.openb import read_openb_nodes, read_openb_pods, resolve_workload


def lp_waste(sizes: collections.Counter[int]) -> float:
    """GPUs the best fractional packing of these share sizes leaves idle."""
    if not sizes:
        return 0.0
    duals = share_duals(dict(sizes))
    devices = sum(count * duals[size] for size, count in sizes.items())
    return devices - sum(size * count for size, count in sizes.items()) / 1000


def run(workload: str, policy_name: str, seed: int, load: int) -> dict[str, float | int | str]:
    nodes = read_openb_nodes()
    pods = read_openb_pods(resolve_workload(workload)[1])
    rng = np.random.default_rng(seed)
    total = sum(n.capacity.gpu for n in nodes)
    view = ClusterView(sorted(nodes, key=lambda n: n.id))
    sequence = build_sequence(pods, total, rng)
    view.rank = rng.permutation(len(view))
    policy = make_policy(policy_name, typical_workload(pods))
    arrived: collections.Counter[int] = collections.Counter()
    placed: collections.Counter[int] = collections.Counter()
    so_far = 0
    for k, pod in enumerate(sequence):
        so_far += pod.gpu_total
        if so_far * 100 > total * load:
            break
        plan = schedule([pod.request(f"{pod.name}#{k}")], view, policy, rng)
        if pod.num_gpu == 1 and pod.gpu_milli < 1000:
            arrived[pod.gpu_milli] += 1
            placed[pod.gpu_milli] += 0 if plan.unplaced else 1
    gpus = total / 1000
    idle = float(view.free_gpu.sum()) / 1000
    every = lp_waste(arrived)
    return {
        "workload": workload,
        "policy": policy_name,
        "seed": seed,
        "load": load,
        "alloc": round(100 - 100 * idle / gpus, 2),
        "idle_gpus": round(idle, 1),
        "lp_idle_if_every_share_placed": round(every, 1),
        "ceiling_if_every_share_placed": round(100 - 100 * every / gpus, 2),
        "lp_idle_of_placed_shares": round(lp_waste(placed), 1),
        "shares_unplaced": sum(arrived.values()) - sum(placed.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="default")
    parser.add_argument("--policy", default="pallet")
    parser.add_argument("--seeds", default="42,43,44")
    parser.add_argument("--load", type=int, default=100, help="arrived GPU load, %%")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = [run(args.workload, args.policy, int(s), args.load) for s in args.seeds.split(",")]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    keys = list(rows[0])
    print(" | ".join(keys))
    for row in rows:
        print(" | ".join(str(row[k]) for k in keys))


if __name__ == "__main__":
    main()
