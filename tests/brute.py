"""Brute force for the ceiling tests: the best GPU allocation over every
work-conserving placement of a small arrival sequence under the FGD protocol's filter."""

from __future__ import annotations

import functools

from pallet.sim.traces.openb import OpenbPod

Cluster = tuple[tuple[int, int, str, tuple[int, ...]], ...]  # cpu, mem, model, device idle


def least_idle_anywhere(nodes: Cluster, pods: tuple[OpenbPod, ...]) -> int:
    """Idle milli of the best placement under the protocol's filter, by trying every
    node and device a pod fits (a pod fails only where none does). Devices of a node
    are kept sorted: which one of equal idle a pod takes does not matter."""

    @functools.cache
    def best(k: int, state: Cluster) -> int:
        if k == len(pods):
            return sum(sum(devices) for _, _, _, devices in state)
        p = pods[k]
        models = {m for m in p.gpu_spec.split("|") if m}
        results = []
        for i, (cpu, mem, model, devices) in enumerate(state):
            if cpu < p.cpu_milli or mem < p.memory_mib:
                continue
            if p.num_gpu and models and model not in models:
                continue
            if not p.num_gpu:
                changed = [(devices, 0)]
            elif p.num_gpu == 1 and p.gpu_milli < 1000:
                changed = [
                    (tuple(sorted((*devices[:j], d - p.gpu_milli, *devices[j + 1 :]))), 0)
                    for j, d in enumerate(devices)
                    if d >= p.gpu_milli and (j == 0 or devices[j - 1] != d)
                ]
            else:
                whole = [j for j, d in enumerate(devices) if d == 1000]
                if len(whole) < p.num_gpu:
                    continue
                left = list(devices)
                for j in whole[: p.num_gpu]:
                    left[j] = 0
                changed = [(tuple(sorted(left)), 0)]
            for after, _ in changed:
                node = (cpu - p.cpu_milli, mem - p.memory_mib, model, after)
                results.append(best(k + 1, tuple(sorted((*state[:i], node, *state[i + 1 :])))))
        return min(results) if results else best(k + 1, state)

    return best(0, tuple(sorted(nodes)))
