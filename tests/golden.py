"""Regenerates the golden trace files and expected results (run by hand after an
intended change of a policy: ``python tests/golden.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent / "sim" / "data"
GOLDEN_POLICIES = ("fgd", "bestfit", "dotprod", "gpu-packing", "gpu-clustering", "random", "pallet")
SEED = 42


def write_trace() -> None:
    rng = np.random.default_rng(2023)
    shapes = [
        (96000, 393216, 8, "G2"),
        (104000, 524288, 2, "T4"),
        (16000, 122880, 2, "P100"),
        (32000, 131072, 4, "V100M16"),
    ]
    lines = ["sn,cpu_milli,memory_mib,gpu,model"]
    for i in range(16):
        cpu, mem, gpu, model = shapes[i % len(shapes)]
        lines.append(f"golden-node-{i:02d},{cpu},{mem},{gpu},{model}")
    (HERE / "golden_nodes.csv").write_text("\n".join(lines) + "\n")
    pods = ["name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec"]
    for i in range(220):
        kind = rng.choice(["cpu", "share", "one", "multi"], p=[0.15, 0.4, 0.4, 0.05])
        cpu = int(rng.choice([2000, 4000, 8000, 12000]))
        mem = int(rng.choice([4096, 16384, 32768]))
        spec = str(rng.choice(["", "", "", "T4|P100"]))
        if kind == "cpu":
            pods.append(f"golden-pod-{i:03d},{cpu},{mem},0,0,")
        elif kind == "share":
            pods.append(
                f"golden-pod-{i:03d},{cpu},{mem},1,{int(rng.choice([810, 470, 320, 230]))},{spec}"
            )
        elif kind == "one":
            pods.append(f"golden-pod-{i:03d},{cpu},{mem},1,1000,{spec}")
        else:
            pods.append(f"golden-pod-{i:03d},{cpu * 2},{mem},{int(rng.choice([2, 4]))},1000,")
    (HERE / "golden_pods.csv").write_text("\n".join(pods) + "\n")


def results() -> dict[str, dict[str, object]]:
    from pallet.core.policies import make_policy
    from pallet.sim.packing import run_packing
    from pallet.sim.traces.openb import read_openb_nodes, read_openb_pods

    nodes = read_openb_nodes(HERE / "golden_nodes.csv")
    pods = read_openb_pods(HERE / "golden_pods.csv")
    out = {}
    for name in GOLDEN_POLICIES:
        run = run_packing(
            nodes, pods, lambda w, n=name: make_policy(n, w), name, SEED, sequence="numpy"
        )
        out[name] = {"failed": run.failed, "used": [int(x) for x in run.used]}
    return out


if __name__ == "__main__":
    write_trace()
    (HERE / "golden_results.json").write_text(json.dumps(results(), indent=None) + "\n")
