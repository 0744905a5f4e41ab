"""This machine's GPUs (NVIDIA, else AMD), and what a task that was given some of them
sees: their names in its environment, only them in its device cgroup. ``detect_gpus``
does I/O (NVML, ``nvidia-smi``, the amdgpu driver's KFD topology in sysfs); the rest is
pure.

    detect_gpus()       NVML through nvidia-ml-py (``pynvml``), else
                        ``nvidia-smi --query-gpu=index,uuid,name,memory.total``, else the
                        AMD GPUs of ``/sys/class/kfd/kfd/topology/nodes/*``, else none
    gpu_environment()   NVIDIA: CUDA_VISIBLE_DEVICES and NVIDIA_VISIBLE_DEVICES, the devices
                        placed (their UUIDs when known; indices in PCI order otherwise).
                        AMD: ROCR_VISIBLE_DEVICES, the devices placed by index (ROCm's
                        order: the KFD topology's), and HIP_VISIBLE_DEVICES 0..n-1 (HIP
                        numbers what ROCr lets it see from 0)
    device_rules()      cgroup v1 ``devices.deny`` lines: every detected GPU but the task's
                        own (NVIDIA's control devices and AMD's /dev/kfd stay open)

GPUs declared with ``--resources gpus:N`` on a machine without a driver are counted
and named by index as NVIDIA's; there is nothing to deny. A machine with both vendors'
GPUs offers the NVIDIA ones only.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "DRM_MAJOR",
    "NVIDIA_MAJOR",
    "Gpu",
    "detect_amd_gpus",
    "detect_gpus",
    "device_rules",
    "gpu_environment",
    "parse_nvidia_smi",
]

log = logging.getLogger(__name__)

NVIDIA_MAJOR = 195
"""Character-device major of /dev/nvidia<N> (minor N), nvidiactl (255), modeset (254)."""
DRM_MAJOR = 226
"""Character-device major of /dev/dri/renderD<minor>, an AMD GPU's render node."""
KFD_NODES = "class/kfd/kfd/topology/nodes"
"""Under /sys: one directory per HSA agent (CPUs and GPUs) of the amdgpu driver."""


@dataclass(frozen=True, slots=True)
class Gpu:
    """One device as the driver numbers it (``index``: NVML's and nvidia-smi's order)."""

    index: int
    name: str
    memory_mib: int
    uuid: str = ""
    minor: int | None = None
    """Minor number of /dev/nvidia<minor>, or of an AMD GPU's /dev/dri/renderD<minor>
    (None: not known)."""
    vendor: str = "nvidia"
    """``nvidia`` or ``amd``."""


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


def _properties(path: Path) -> dict[str, int]:
    """A KFD ``properties`` file: ``name value`` lines, the values whole numbers."""
    out = {}
    for line in path.read_text().splitlines():
        name, _, value = line.strip().partition(" ")
        if value.strip().lstrip("-").isdigit():
            out[name] = int(value)
    return out


def _amd_memory(node: Path) -> int:
    """MiB of the GPU's own memory: its frame-buffer banks (heap types 1 and 2)."""
    total = 0
    for bank in sorted(node.glob("mem_banks/*/properties")):
        props = _properties(bank)
        if props.get("heap_type") in (1, 2):
            total += props.get("size_in_bytes", 0)
    return total // (1 << 20)


def _amd_name(sysfs: Path, node: Path, render_minor: int | None) -> str:
    if render_minor is not None:
        product = sysfs / f"class/drm/renderD{render_minor}/device/product_name"
        try:
            name = product.read_text().strip()
        except OSError:
            name = ""
        if name:
            return name
    try:
        target = (node / "name").read_text().strip()
    except OSError:
        target = ""
    return f"AMD {target}".strip()


def detect_amd_gpus(sysfs: Path = Path("/sys")) -> list[Gpu]:
    """The AMD GPUs the amdgpu driver lists in its KFD topology: nodes with SIMDs (CPU
    nodes have none), numbered in node order, as ROCm numbers them."""
    root = sysfs / KFD_NODES
    try:
        nodes = sorted((p for p in root.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    except OSError:
        return []
    gpus: list[Gpu] = []
    for node in nodes:
        try:
            props = _properties(node / "properties")
        except OSError:
            continue
        if props.get("simd_count", 0) <= 0:
            continue
        minor = props.get("drm_render_minor")
        unique = props.get("unique_id", 0)
        gpus.append(
            Gpu(
                index=len(gpus),
                name=_amd_name(sysfs, node, minor),
                memory_mib=_amd_memory(node),
                uuid=f"GPU-{unique:016x}" if unique else "",
                minor=minor,
                vendor="amd",
            )
        )
    return gpus


def detect_gpus(
    nvml: Any = None,
    run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
    sysfs: Path = Path("/sys"),
) -> tuple[list[Gpu], str]:
    """This machine's GPUs and how they were found (``"nvml"``, ``"nvidia-smi"``,
    ``"kfd"``, or why none were). ``nvml`` is the ``pynvml`` module (a fake one in
    tests), ``sysfs`` where sysfs is (a fake tree in tests)."""
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
    amd = detect_amd_gpus(sysfs)
    if amd:
        return amd, "kfd"
    why.append(f"no AMD GPU in {sysfs / KFD_NODES}")
    return [], "; ".join(why)


def gpu_environment(devices: Sequence[int], gpus: Sequence[Gpu]) -> dict[str, str]:
    """What tells CUDA and the NVIDIA container runtime which devices a task was given:
    UUIDs when the agent detected the GPUs, else indices in PCI order."""
    if not devices:
        return {}
    by_index = {g.index: g for g in gpus}
    if gpus and all(g.vendor == "amd" for g in gpus):
        # Indices: ROCr reads them in the KFD topology's order, the one detect_amd_gpus
        # counts in. HIP then numbers the devices ROCr shows it from 0, and it reads
        # CUDA_VISIBLE_DEVICES as its own, so that one is not set.
        return {
            "ROCR_VISIBLE_DEVICES": ",".join(str(d) for d in devices),
            "HIP_VISIBLE_DEVICES": ",".join(str(i) for i in range(len(devices))),
        }
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
    rules = []
    for g in gpus:
        if g.index in given:
            continue
        if g.vendor == "amd":
            if g.minor is not None:  # its render node; /dev/kfd is every GPU's door
                rules.append(f"c {DRM_MAJOR}:{g.minor} rwm")
        else:
            rules.append(f"c {NVIDIA_MAJOR}:{g.minor if g.minor is not None else g.index} rwm")
    return rules
