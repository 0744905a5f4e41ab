"""Pod lists scaled from one openb list, for sweeps of the FGD protocol; pure.

The FGD paper's ``cpu050`` and ``cpu200`` lists keep the 7,064 GPU pods of the default
list and change only how much work without GPUs comes with them. ``cpu_only_scaled``
builds such a list for any factor of the base list's CPU-only demand: below 1 it keeps
a random subset of the CPU-only pods (no repeats), above 1 every one of them plus
pods drawn again with replacement, until their total CPU is as close to the target as
the draw allows. The same seed gives the same list, and a smaller factor's list is a
prefix of a larger one's. ``pod_cpu_scaled`` multiplies every pod's CPU request
instead (GPU tasks that bring more CPU per GPU).

A list is written as the shared variants are: CPU-only pods first, then the GPU pods
in their order, named ``openb-pod-NNNN`` in that order (the protocol sorts by name
before it shuffles).

A sweep spec is ``KIND=LO:HI:STEP`` (inclusive) or ``KIND=V1,V2,...``; a bad one
raises ``ValidationError`` naming the option.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from pallet.model import Node
from pallet.model.errors import ValidationError
from pallet.sim.traces.openb import OpenbPod

__all__ = [
    "SWEEP_KINDS",
    "SweepPoint",
    "cpu_only_scaled",
    "parse_sweep",
    "pod_cpu_scaled",
    "scaled_list",
    "too_big_for_every_node",
]

SWEEP_KINDS = {
    "cpu-only": "total CPU of the pods without GPUs, as a multiple of the base list's",
    "pod-cpu": "every pod's CPU request, as a multiple of its own",
}
MAX_POINTS = 1000
MAX_FACTOR = 1000.0


@dataclass(frozen=True, slots=True)
class SweepPoint:
    kind: str
    factor: float

    @property
    def label(self) -> str:
        return f"{self.kind}={self.factor:g}"


def parse_sweep(spec: str, option: str = "--sweep") -> list[SweepPoint]:
    """``cpu-only=0:3:0.25`` -> 13 points; ``pod-cpu=1,1.5`` -> 2 points."""
    kind, sep, values = spec.partition("=")
    kind = kind.strip()
    if not sep or kind not in SWEEP_KINDS:
        known = "; ".join(f"{k} ({v})" for k, v in SWEEP_KINDS.items())
        raise ValidationError(
            option, f"{spec!r} is not KIND=LO:HI:STEP or KIND=V1,V2; KIND: {known}"
        )
    values = values.strip()
    try:
        parts = [float(v) for v in values.split(":" if ":" in values else ",")]
    except ValueError:
        parts = []
    if not parts or (":" in values and len(parts) != 3):
        raise ValidationError(
            option, f"{values!r} is not LO:HI:STEP or a list of numbers like 0.5,1,2"
        )
    if not all(math.isfinite(v) for v in parts):
        raise ValidationError(option, f"{values!r}: every number must be finite")
    if ":" in values:
        lo, hi, step = parts
        if step <= 0 or hi < lo:
            raise ValidationError(option, f"{values!r}: need LO <= HI and a positive STEP")
        n = math.floor((hi - lo) / step + 1e-9) + 1
        if n > MAX_POINTS:
            raise ValidationError(option, f"{values!r} has {n} points; at most {MAX_POINTS}")
        factors = [round(lo + i * step, 9) for i in range(n)]
    else:
        factors = parts
    for f in factors:
        if not math.isfinite(f) or f < 0 or f > MAX_FACTOR:
            raise ValidationError(option, f"factor {f:g} is out of range (0 to {MAX_FACTOR:g})")
    if kind == "pod-cpu" and min(factors) <= 0:
        raise ValidationError(option, "pod-cpu factors must be above 0")
    return [SweepPoint(kind, f) for f in dict.fromkeys(factors)]


def _renamed(cpu_only: Sequence[OpenbPod], gpu: Sequence[OpenbPod]) -> list[OpenbPod]:
    pods = [*cpu_only, *gpu]
    width = max(4, len(str(len(pods) - 1)))
    return [replace(p, name=f"openb-pod-{i:0{width}d}") for i, p in enumerate(pods)]


def cpu_only_scaled(pods: Sequence[OpenbPod], factor: float, seed: int = 0) -> list[OpenbPod]:
    """``pods`` with its CPU-only pods dropped or drawn again until their total CPU is
    closest to ``factor`` times what it was (see the module docstring)."""
    plain = [p for p in pods if not p.num_gpu]
    gpu = [p for p in pods if p.num_gpu]
    have = sum(p.cpu_milli for p in plain)
    target = factor * have
    if factor > 0 and not have:
        raise ValueError("the pod list has no CPU asked by pods without GPUs to scale")
    rng = np.random.default_rng(seed)
    order = [plain[i] for i in rng.permutation(len(plain))]
    kept: list[OpenbPod] = []
    total = 0
    k = 0
    while total < target:
        if k < len(order):
            pod = order[k]
            k += 1
        else:
            pod = plain[int(rng.integers(len(plain)))]
        if total + pod.cpu_milli - target > target - total:
            break  # stopping short is closer to the target than taking it
        kept.append(pod)
        total += pod.cpu_milli
    return _renamed(kept, gpu)


def pod_cpu_scaled(pods: Sequence[OpenbPod], factor: float) -> list[OpenbPod]:
    """Every pod's CPU request times ``factor`` (whole millicores, at least 1)."""
    plain = [
        replace(p, cpu_milli=max(1, round(p.cpu_milli * factor))) for p in pods if not p.num_gpu
    ]
    gpu = [replace(p, cpu_milli=max(1, round(p.cpu_milli * factor))) for p in pods if p.num_gpu]
    return _renamed(plain, gpu)


def scaled_list(pods: Sequence[OpenbPod], point: SweepPoint, seed: int = 0) -> list[OpenbPod]:
    if point.kind == "cpu-only":
        return cpu_only_scaled(pods, point.factor, seed)
    return pod_cpu_scaled(pods, point.factor)


def too_big_for_every_node(pods: Sequence[OpenbPod], nodes: Sequence[Node]) -> OpenbPod | None:
    """The first pod that no node could hold even empty (CPU, memory, GPU count and
    size, GPU model), or None."""
    shapes = {(n.capacity.cpu_milli, n.capacity.mem_mib, n.gpu_count, n.gpu_model) for n in nodes}
    seen: set[tuple[int, int, int, int, str]] = set()
    for p in pods:
        key = (p.cpu_milli, p.memory_mib, p.num_gpu, p.gpu_milli, p.gpu_spec)
        if key in seen:
            continue
        seen.add(key)
        models = {m for m in p.gpu_spec.split("|") if m}
        if not any(
            cpu >= p.cpu_milli
            and mem >= p.memory_mib
            and count >= p.num_gpu
            and (not p.num_gpu or not models or model in models)
            for cpu, mem, count, model in shapes
        ):
            return p
    return None
