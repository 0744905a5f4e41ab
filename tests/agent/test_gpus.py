"""GPUs: found through a fake NVML (or nvidia-smi's output), offered as the node's GPUs with
their model and memory as attributes, named to the task that was given them, and the
only ones its device cgroup lets it open."""

from __future__ import annotations

import errno
import os
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pallet.agent import Executor
from pallet.agent.fingerprint import Offered, fingerprint
from pallet.agent.gpus import (
    DRM_MAJOR,
    NVIDIA_MAJOR,
    Gpu,
    detect_amd_gpus,
    detect_gpus,
    device_rules,
    gpu_environment,
    parse_nvidia_smi,
)
from pallet.model import parse_port_ranges

from .conftest import make_spec

A100 = "NVIDIA A100-SXM4-40GB"


class FakeNvml:
    """The parts of ``pynvml`` the agent calls, over a list of (name, MiB, uuid, minor)."""

    class NVMLError(Exception):
        pass

    def __init__(self, devices: list[tuple[str, int, str, int]], broken: bool = False) -> None:
        self.devices = devices
        self.broken = broken
        self.calls: list[str] = []

    def nvmlInit(self) -> None:
        self.calls.append("init")
        if self.broken:
            raise self.NVMLError("Driver Not Loaded")

    def nvmlShutdown(self) -> None:
        self.calls.append("shutdown")

    def nvmlDeviceGetCount(self) -> int:
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetName(self, h: int) -> bytes:
        return self.devices[h][0].encode()

    def nvmlDeviceGetMemoryInfo(self, h: int) -> Any:
        return SimpleNamespace(total=self.devices[h][1] << 20, used=0, free=0)

    def nvmlDeviceGetUUID(self, h: int) -> str:
        return self.devices[h][2]

    def nvmlDeviceGetMinorNumber(self, h: int) -> int:
        return self.devices[h][3]


TWO = [(A100, 40960, "GPU-aaaa", 0), (A100, 40960, "GPU-bbbb", 1)]


def _no_smi(*args: Any, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    raise FileNotFoundError("nvidia-smi")


def test_nvml_finds_the_devices_with_name_memory_uuid_and_minor() -> None:
    nvml = FakeNvml(TWO)
    gpus, how = detect_gpus(nvml, run=_no_smi)
    assert how == "nvml"
    assert gpus == [
        Gpu(0, A100, 40960, "GPU-aaaa", 0),
        Gpu(1, A100, 40960, "GPU-bbbb", 1),
    ]
    assert nvml.calls == ["init", "shutdown"]


def test_without_a_driver_nvidia_smi_is_asked_then_nothing_is_found(tmp_path: Path) -> None:
    smi = "0, GPU-cccc, Tesla T4, 15360, 3\n"

    def run(*args: Any, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(args, 0, smi, "")

    gpus, how = detect_gpus(FakeNvml([], broken=True), run=run)
    assert (how, gpus) == ("nvidia-smi", [Gpu(0, "Tesla T4", 15360, "GPU-cccc", 3)])
    gpus, how = detect_gpus(FakeNvml([], broken=True), run=_no_smi, sysfs=tmp_path)
    assert gpus == []
    assert how == (
        f"NVML: Driver Not Loaded; no nvidia-smi; no AMD GPU in {tmp_path}/class/kfd/kfd/topology/nodes"
    )


def test_nvidia_smi_lines_that_do_not_read_are_skipped() -> None:
    text = "index, uuid\n1, GPU-d, NVIDIA H100 80GB HBM3, 81559, [N/A]\n\n"
    assert parse_nvidia_smi(text) == [Gpu(1, "NVIDIA H100 80GB HBM3", 81559, "GPU-d", None)]


def test_detected_gpus_are_offered_with_model_and_memory_attributes(tmp_path: Path) -> None:
    gpus = [Gpu(0, A100, 40960, "GPU-aaaa", 0), Gpu(1, A100, 40960, "GPU-bbbb", 1)]
    measured = Offered(4000, 8192, 1000, 0, parse_port_ranges("[31000-31009]"))
    node = fingerprint("n1", sandbox_root=tmp_path, measured=measured, gpus=gpus)
    assert node.gpu_count == 2 and node.gpu_model == A100
    assert node.attributes == {"gpu.model": A100, "gpu.memory": "40960"}
    # Declared GPUs win over what was found; the operator's attributes over the GPUs'.
    node = fingerprint(
        "n1",
        sandbox_root=tmp_path,
        measured=measured,
        gpus=gpus,
        resources="gpus:1",
        attributes="gpu.model:a100",
    )
    assert node.gpu_count == 1 and node.attributes["gpu.model"] == "a100"
    # No driver, declared GPUs: offered, with no attributes to claim.
    node = fingerprint("n1", sandbox_root=tmp_path, measured=measured, resources="gpus:2")
    assert node.gpu_count == 2 and node.attributes == {}


def test_the_environment_names_exactly_the_devices_given() -> None:
    gpus = [Gpu(i, A100, 40960, f"GPU-{i}", i) for i in range(4)]
    env = gpu_environment((1, 3), gpus)
    assert env == {"CUDA_VISIBLE_DEVICES": "GPU-1,GPU-3", "NVIDIA_VISIBLE_DEVICES": "GPU-1,GPU-3"}
    assert gpu_environment((), gpus) == {}
    # Declared GPUs (no driver, no UUIDs): indices, in nvidia-smi's order.
    assert gpu_environment((0,), []) == {
        "CUDA_VISIBLE_DEVICES": "0",
        "NVIDIA_VISIBLE_DEVICES": "0",
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
    }


def test_device_rules_deny_every_gpu_but_the_tasks_own() -> None:
    gpus = [Gpu(0, A100, 1, "a", 0), Gpu(1, A100, 1, "b", 5), Gpu(2, A100, 1, "c", None)]
    # Index 1 is /dev/nvidia5; index 2's minor is unknown: its index stands for it.
    assert device_rules((1,), gpus) == [f"c {NVIDIA_MAJOR}:0 rwm", f"c {NVIDIA_MAJOR}:2 rwm"]
    assert device_rules((0,), []) == []


def _end(ex: Executor, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ex.wait(0.2):
            return
    raise AssertionError("the task did not end")


def test_a_task_is_told_its_gpus(tmp_path: Path, agent_id: str) -> None:
    gpus = [Gpu(0, A100, 40960, "GPU-aaaa", 0), Gpu(1, A100, 40960, "GPU-bbbb", 1)]
    ex = Executor(tmp_path / "sb", agent_id=agent_id, node_id="n", host="h", gpus=gpus)
    try:
        ex.launch(
            make_spec(
                "gpu.1",
                cmd='echo "$CUDA_VISIBLE_DEVICES $NVIDIA_VISIBLE_DEVICES"',
                gpu_milli=1000,
                gpu_devices=(1,),
                env={"CUDA_VISIBLE_DEVICES": "0,1"},  # the app cannot claim others
            )
        )
        _end(ex)
        assert (ex.sandbox("gpu.1") / "stdout").read_text() == "GPU-bbbb GPU-bbbb\n"
    finally:
        ex.close()


@pytest.mark.root
def test_the_device_cgroup_lets_a_task_open_only_its_gpus(tmp_path: Path, agent_id: str) -> None:
    """Device nodes with NVIDIA's numbers but no driver behind them: opening one the task
    may use fails with ENXIO (no such device), one it may not with EPERM."""
    dev = tmp_path / "dev"
    dev.mkdir()
    for minor in (0, 1, 255):
        os.mknod(dev / f"nvidia{minor}", 0o666 | 0o020000, os.makedev(NVIDIA_MAJOR, minor))
    try:
        os.close(os.open(dev / "nvidia0", os.O_RDWR))
    except OSError as exc:
        if exc.errno != errno.ENXIO:
            pytest.skip(f"this container itself denies NVIDIA devices: {exc}")
    gpus = [Gpu(0, A100, 1, "GPU-a", 0), Gpu(1, A100, 1, "GPU-b", 1)]
    ex = Executor(tmp_path / "sb", agent_id=agent_id, node_id="n", host="h", gpus=gpus)
    try:
        if "devices" not in ex.isolator.paths("x"):
            pytest.skip("no cgroup v1 devices hierarchy here (cgroup v2 needs eBPF: not done)")
        probe = (
            "import errno, os, sys\n"
            "for name in sys.argv[1:]:\n"
            "    try:\n"
            "        os.close(os.open(name, os.O_RDWR))\n"
            "    except OSError as e:\n"
            "        print(name.rsplit('/', 1)[1], errno.errorcode[e.errno])\n"
        )
        ex.launch(
            make_spec(
                "gpu.2",
                args=("python3", "-c", probe, *(str(dev / f"nvidia{m}") for m in (0, 1, 255))),
                gpu_milli=1000,
                gpu_devices=(1,),
            )
        )
        _end(ex)
        out = (ex.sandbox("gpu.2") / "stdout").read_text().split("\n")
        assert out[:3] == ["nvidia0 EPERM", "nvidia1 ENXIO", "nvidia255 ENXIO"], out
    finally:
        ex.close()


MI250 = "AMD Instinct MI250X"


def _fake_kfd(sysfs: Path) -> None:
    """The amdgpu driver's KFD topology: node 0 a CPU (no SIMDs), nodes 1 and 2 GPUs
    (render nodes 128 and 129), node 1's product name known to DRM, node 2's not."""
    nodes = sysfs / "class/kfd/kfd/topology/nodes"
    gpus = {1: (128, 0x4B1B2E1A6F4C1234), 2: (129, 0)}
    for n in (0, 1, 2):
        node = nodes / str(n)
        node.mkdir(parents=True)
        simd, (minor, unique) = (0, (0, 0)) if n == 0 else (440, gpus[n])
        (node / "properties").write_text(
            f"cpu_cores_count {16 if n == 0 else 0}\nsimd_count {simd}\n"
            f"drm_render_minor {minor}\nunique_id {unique}\nvendor_id 4098\n"
        )
        (node / "name").write_text("" if n == 0 else "gfx90a\n")
        bank = node / "mem_banks/0"
        bank.mkdir(parents=True)
        heap = 0 if n == 0 else 1  # system memory for the CPU, frame buffer for the GPUs
        (bank / "properties").write_text(f"heap_type {heap}\nsize_in_bytes {64 << 30}\n")
    product = sysfs / "class/drm/renderD128/device"
    product.mkdir(parents=True)
    (product / "product_name").write_text(MI250 + "\n")


def test_amd_gpus_are_read_from_the_kfd_topology(tmp_path: Path) -> None:
    _fake_kfd(tmp_path)
    expected = [
        Gpu(0, MI250, 65536, "GPU-4b1b2e1a6f4c1234", 128, "amd"),
        Gpu(1, "AMD gfx90a", 65536, "", 129, "amd"),
    ]
    assert detect_amd_gpus(tmp_path) == expected
    # After NVIDIA's ways found nothing.
    gpus, how = detect_gpus(FakeNvml([], broken=True), run=_no_smi, sysfs=tmp_path)
    assert (how, gpus) == ("kfd", expected)
    assert detect_amd_gpus(tmp_path / "elsewhere") == []


def test_an_amd_task_is_named_its_devices_for_rocr_and_hip(tmp_path: Path) -> None:
    gpus = [Gpu(i, MI250, 65536, "", 128 + i, "amd") for i in range(4)]
    # ROCr takes the devices by index; HIP numbers what ROCr shows it from 0.
    assert gpu_environment((1, 3), gpus) == {
        "ROCR_VISIBLE_DEVICES": "1,3",
        "HIP_VISIBLE_DEVICES": "0,1",
    }
    # The other GPUs' render nodes are denied; /dev/kfd stays open.
    assert device_rules((1, 3), gpus) == [f"c {DRM_MAJOR}:128 rwm", f"c {DRM_MAJOR}:130 rwm"]
    measured = Offered(4000, 8192, 1000, 0, parse_port_ranges("[31000-31009]"))
    node = fingerprint("n1", sandbox_root=tmp_path, measured=measured, gpus=gpus)
    assert node.gpu_count == 4 and node.gpu_model == MI250
    assert node.attributes == {"gpu.model": MI250, "gpu.memory": "65536"}


def test_an_amd_task_is_told_its_gpus(tmp_path: Path, agent_id: str) -> None:
    gpus = [Gpu(i, MI250, 65536, "", 128 + i, "amd") for i in range(2)]
    ex = Executor(tmp_path / "sb", agent_id=agent_id, node_id="n", host="h", gpus=gpus)
    try:
        ex.launch(
            make_spec(
                "gpu.3",
                cmd='echo "$ROCR_VISIBLE_DEVICES $HIP_VISIBLE_DEVICES ${CUDA_VISIBLE_DEVICES:-unset}"',
                gpu_milli=1000,
                gpu_devices=(1,),
                env={"ROCR_VISIBLE_DEVICES": "0,1"},  # the app cannot claim others
            )
        )
        _end(ex)
        assert (ex.sandbox("gpu.3") / "stdout").read_text() == "1 0 unset\n"
    finally:
        ex.close()
