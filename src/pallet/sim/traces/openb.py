"""The Alibaba GPU 2023 "openb" trace: GPU nodes and pod lists; does file I/O."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pallet.model import GPU_MILLI, Node, PlacementRequest, Resources
from pallet.sim.traces.csvrows import read_rows
from pallet.sim.traces.paths import traces_dir

__all__ = [
    "OPENB_WORKLOADS",
    "OpenbPod",
    "openb_dir",
    "read_openb_nodes",
    "read_openb_pods",
    "resolve_workload",
]

OPENB_WORKLOADS = (
    "default",
    "cpu050",
    "cpu200",
    "gpushare40",
    "gpushare80",
    "multigpu30",
    "gpuspec10",
    "gpuspec25",
)


def openb_dir() -> Path:
    return traces_dir() / "alibaba_gpu_2023"


def resolve_workload(name_or_path: str) -> tuple[str, Path]:
    """A shared workload name (``default``, ``cpu050``, ...) or any pod list file in the
    openb format; returns (label, path)."""
    if name_or_path in OPENB_WORKLOADS:
        return name_or_path, openb_dir() / "csv" / f"openb_pod_list_{name_or_path}.csv"
    path = Path(name_or_path)
    label = path.stem.removeprefix("openb_pod_list_")
    return label, path


@dataclass(frozen=True, slots=True)
class OpenbPod:
    """One pod row; ``gpu_milli`` is per GPU, clipped to (0, 1000] as the simulator does."""

    name: str
    cpu_milli: int
    memory_mib: int
    num_gpu: int
    gpu_milli: int
    gpu_spec: str
    line: int

    @property
    def gpu_total(self) -> int:
        return self.num_gpu * self.gpu_milli

    def request(self, task_id: str | None = None) -> PlacementRequest:
        models = (
            frozenset(m for m in self.gpu_spec.split("|") if m) if self.num_gpu else frozenset()
        )
        return PlacementRequest(
            id=task_id or self.name,
            app_id=self.name,
            resources=Resources(self.cpu_milli, self.memory_mib, 0, self.gpu_total),
            gpu_models=models,
        )


def read_openb_pods(path: Path) -> list[OpenbPod]:
    pods = []
    for row in read_rows(path, ("name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli")):
        name = row.text("name")
        num_gpu = row.integer("num_gpu", high=64)
        raw_milli = row.integer("gpu_milli", default=0)
        milli = min(raw_milli, GPU_MILLI) if num_gpu else 0
        if num_gpu and milli == 0:
            raise row.error("gpu_milli", "a pod with num_gpu > 0 needs gpu_milli > 0")
        if num_gpu > 1 and milli < GPU_MILLI:
            raise row.error("gpu_milli", f"{milli} is a GPU share, allowed only with num_gpu 1")
        pods.append(
            OpenbPod(
                name=name,
                cpu_milli=row.integer("cpu_milli"),
                memory_mib=row.integer("memory_mib"),
                num_gpu=num_gpu,
                gpu_milli=milli,
                gpu_spec=row.text("gpu_spec", default="") if num_gpu else "",
                line=row.line,
            )
        )
    return pods


def read_openb_nodes(path: Path | None = None) -> list[Node]:
    """The GPU nodes (default: ``openb_node_list_gpu_node.csv``)."""
    path = path or openb_dir() / "csv" / "openb_node_list_gpu_node.csv"
    nodes = []
    for row in read_rows(path, ("sn", "cpu_milli", "memory_mib", "gpu", "model")):
        gpus = row.integer("gpu", high=64)
        nodes.append(
            Node.build(
                row.text("sn"),
                cpu_milli=row.integer("cpu_milli"),
                mem_mib=row.integer("memory_mib"),
                gpus=gpus,
                gpu_model=row.text("model", default="") if gpus else "",
            )
        )
    return nodes
