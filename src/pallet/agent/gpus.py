"""This machine's NVIDIA GPUs, and what a task that was given some of them sees: their
names in its environment, only them in its device cgroup. ``detect_gpus`` does I/O
(NVML, or ``nvidia-smi``); the rest is pure.

    detect_gpus()       NVML through nvidia-ml-py (``pynvml``), else
                        ``nvidia-smi --query-gpu=index,uuid,name,memory.total``, else none
    gpu_environment()   CUDA_VISIBLE_DEVICES and NVIDIA_VISIBLE_DEVICES: the devices placed
                        (their UUIDs when known; indices in PCI order otherwise)
    device_rules()      cgroup v1 ``devices.deny`` lines: every detected NVIDIA GPU but the
                        task's own (the control devices stay open)

GPUs declared with ``--resources gpus:N`` on a machine without a driver are counted
and named by index; there is nothing to deny.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "NVIDIA_MAJOR",
    "Gpu",
    "detect_gpus",
    "device_rules",
    "gpu_environment",
    "parse_nvidia_smi",
]

log = logging.getLogger(__name__)

NVIDIA_MAJOR = 195
"""Character-device major of /dev/nvidia<N> (minor N), nvidiactl (255), modeset (254)."""


@dataclass(frozen=True, slots=True)
class Gpu:
    """One device as the driver numbers it (``index``: NVML's and nvidia-smi's order)."""

    index: int
    name: str
    memory_mib: int
    uuid: str = ""
    minor: int | None = None
    """Minor number of /dev/nvidia<minor> (None: not known)."""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _from_nvml(nvml: Any) -> list[Gpu]:
    nvml.nvmlInit()
    try:
        gpus = []
        for i in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            try:
                minor: int | None = int(nvml.nvmlDeviceGetMinorNumber(handle))
            except nvml.NVMLError:
                minor = None
            gpus.append(
                Gpu(
                    index=i,
                    name=_text(nvml.nvmlDeviceGetName(handle)),
                    memory_mib=int(nvml.nvmlDeviceGetMemoryInfo(handle).total) // (1 << 20),
                    uuid=_text(nvml.nvmlDeviceGetUUID(handle)),
                    minor=minor,
                )
            )
        return gpus
    finally:
        nvml.nvmlShutdown()


def parse_nvidia_smi(text: str) -> list[Gpu]:
    """``nvidia-smi --query-gpu=index,uuid,name,memory.total,minor_number
    --format=csv,noheader,nounits`` output as GPUs (unreadable lines are skipped)."""
    gpus = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 4 or not parts[0].isdigit():
            continue
        memory = parts[3].split()[0] if parts[3] else "0"
        minor = parts[4] if len(parts) > 4 and parts[4].isdigit() else None
        gpus.append(
            Gpu(
                index=int(parts[0]),
                uuid=parts[1],
                name=parts[2],
                memory_mib=int(memory) if memory.isdigit() else 0,
                minor=int(minor) if minor is not None else None,
            )
        )
    return gpus


_SMI = [
    "nvidia-smi",
    "--query-gpu=index,uuid,name,memory.total,minor_number",
    "--format=csv,noheader,nounits",
]


def detect_gpus(
    nvml: Any = None,
    run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
) -> tuple[list[Gpu], str]:
    """This machine's NVIDIA GPUs and how they were found (``"nvml"``, ``"nvidia-smi"``,
    or why none were). ``nvml`` is the ``pynvml`` module (a fake one in tests)."""
    why = []
    if nvml is None:
        try:
            import pynvml

            nvml = pynvml
        except ImportError:
            why.append("nvidia-ml-py is not installed")
    if nvml is not None:
        try:
            return _from_nvml(nvml), "nvml"
        except nvml.NVMLError as exc:
            why.append(f"NVML: {exc}")
    try:
        done = run(_SMI, capture_output=True, text=True, timeout=20)
    except FileNotFoundError:
        why.append("no nvidia-smi")
    except (OSError, subprocess.TimeoutExpired) as exc:
        why.append(f"nvidia-smi: {exc}")
    else:
        if done.returncode == 0:
            return parse_nvidia_smi(done.stdout), "nvidia-smi"
        why.append(f"nvidia-smi exited with {done.returncode}: {done.stderr.strip()[:200]}")
    return [], "; ".join(why)


def gpu_environment(devices: Sequence[int], gpus: Sequence[Gpu]) -> dict[str, str]:
    """What tells CUDA and the NVIDIA container runtime which devices a task was given:
    UUIDs when the agent detected the GPUs, else indices in PCI order."""
    if not devices:
        return {}
    by_index = {g.index: g for g in gpus}
    if all(d in by_index and by_index[d].uuid for d in devices):
        names = ",".join(by_index[d].uuid for d in devices)
        return {"CUDA_VISIBLE_DEVICES": names, "NVIDIA_VISIBLE_DEVICES": names}
    names = ",".join(str(d) for d in devices)
    return {
        "CUDA_VISIBLE_DEVICES": names,
        "NVIDIA_VISIBLE_DEVICES": names,
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",  # index i is nvidia-smi's GPU i
    }


def device_rules(devices: Sequence[int], gpus: Sequence[Gpu]) -> list[str]:
    """cgroup v1 ``devices.deny`` lines so that a task opens only its own GPUs: one per
    detected device it was not given. (A task cgroup allows every device by default;
    its exceptions deny, and an allow cannot reopen part of a wildcard deny, so the
    other devices are denied one by one.) None for GPUs declared without a driver."""
    given = set(devices)
    return [
        f"c {NVIDIA_MAJOR}:{g.minor if g.minor is not None else g.index} rwm"
        for g in gpus
        if g.index not in given
    ]
