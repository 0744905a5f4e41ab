"""``pallet bench containers``: container images on a real ``pallet up``, against runc and
skopeo driven directly in the same run; spawns processes (needs root, runc, skopeo and
Debian's docker-registry).

Images are built from this machine's files (``ocibuild``) and served by a
``docker-registry`` on loopback: ``busybox`` (busybox-static, 1.2 MiB) or ``python``
(busybox and this machine's Python 3.11 with its standard library, about 36 MiB; its Cmd
runs Python, which sleeps). Measured:

- ``pallet_s`` against ``raw_runc_s``: seconds until ``tasks`` instances of the image
  (busybox's Cmd: ``sleep 600``) all run on ``agents`` agents (the API says RUNNING and
  runc says every container runs), against ``tasks`` sequential ``runc run -d`` of one
  prepared bundle of the same image and command;
- ``pulls_per_agent``: the most pulls of that image by one agent (the goal is 1);
- ``rootfs_disk_ratio``: per agent, the disk its tasks' root filesystems take (the
  image's layer snapshots, once, plus every task's upper and work directories) over the
  image's unpacked size; the largest over the agents;
- ``pull_ratio_to_skopeo``: an agent store's pull of a ``pull_mib`` MiB image (a
  busybox layer and four layers of random bytes, gzipped: skopeo into the blob
  directory, every layer unpacked, its diff id verified and its snapshot in place,
  the image recorded: usable by a task), against ``skopeo copy`` of it to a directory;
- ``restarts_after_agent_kill``: with ``survivors`` containers running, every agent is
  killed with SIGKILL (``pallet up`` starts them again); containers whose task was
  replaced or whose first process changed.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from pallet.bench.cluster import free_port, running_up
from pallet.bench.ocibuild import Entry, File, build_image, busybox_layer, layer_tar, python_layer
from pallet.bench.registry import Registry, run_registry
from pallet.model.images import parse_image

__all__ = ["IMAGES", "ContainersResult", "run_containers_bench"]

_SLEEP = ["/bin/sleep", "600"]
_IMAGES: dict[str, tuple[Callable[[], list[dict[str, Entry]]], list[str], int]] = {
    # name: (its layers, its Cmd, the MiB of memory an instance asks)
    "busybox": (lambda: [busybox_layer()], _SLEEP, 16),
    "python": (
        lambda: [busybox_layer(), python_layer()],
        ["/usr/bin/python3.11", "-S", "-B", "-c", "import time; time.sleep(600)"],
        32,
    ),
}
IMAGES = tuple(_IMAGES)


@dataclass(frozen=True, slots=True)
class ContainersResult:
    tasks: int
    agents: int
    pallet_s: float
    raw_runc_s: float
    pulls_per_agent: int
    rootfs_disk_ratio: float
    pull_mib: int
    pull_s: float
    skopeo_s: float
    survivors: int
    restarts_after_agent_kill: int
    rootfs_bytes_per_task: int = 0
    image: str = "busybox"

    @property
    def ratio(self) -> float:
        return self.pallet_s / self.raw_runc_s if self.raw_runc_s else float("inf")

    @property
    def pull_ratio(self) -> float:
        return self.pull_s / self.skopeo_s if self.skopeo_s else float("inf")

    def to_json(self) -> dict[str, Any]:
        return {
            "tasks": self.tasks,
            "pallet_s": round(self.pallet_s, 3),
            "raw_runc_s": round(self.raw_runc_s, 3),
            "ratio": round(self.ratio, 2),
            "pulls_per_agent": self.pulls_per_agent,
            "rootfs_disk_ratio": round(self.rootfs_disk_ratio, 3),
            "pull_ratio_to_skopeo": round(self.pull_ratio, 2),
            "restarts_after_agent_kill": self.restarts_after_agent_kill,
            "agents": self.agents,
            "pull_mib": self.pull_mib,
            "pull_s": round(self.pull_s, 3),
            "skopeo_s": round(self.skopeo_s, 3),
            "survivors": self.survivors,
            "rootfs_bytes_per_task": self.rootfs_bytes_per_task,
            "image": self.image,
        }


Pull = Callable[[str, Path], object]
"""Pulls an image reference into a fresh store directory, as an agent does (the CLI
passes the agent's ``ImageStore``; the bench sits beside the agent, not above it)."""


def run_containers_bench(
    pull: Pull,
    tasks: int = 200,
    agents: int = 4,
    pull_mib: int = 100,
    survivors: int = 50,
    timeout: float = 600.0,
    image: str = "busybox",
) -> ContainersResult:
    if image not in _IMAGES:
        raise ValueError(f"image: one of {', '.join(IMAGES)}, not {image!r}")
    layers, cmd, mem = _IMAGES[image]
    if os.geteuid() != 0:
        raise RuntimeError("pallet bench containers runs containers: run it as root")
    for tool in ("runc", "skopeo", "docker-registry"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            raise RuntimeError(f"pallet bench containers needs {tool} (Debian package)")
    with tempfile.TemporaryDirectory(prefix="pallet-bench-containers-") as tmp:
        work = Path(tmp)
        layout = work / "layout"
        sleeper = layers()
        build_image(layout, sleeper, {"Cmd": cmd}, tag="sleep")
        big = [busybox_layer(), *_random_layers(pull_mib)]
        build_image(layout, big, {"Cmd": _SLEEP}, tag="big")
        with run_registry(work / "registry") as registry:
            registry.push(layout, "sleep", "bench/sleep:1")
            registry.push(layout, "big", "bench/big:1")
            raw = _raw_runc_seconds(tasks, work / "raw", sleeper, cmd)
            skopeo_s, pull_s = _pull_seconds(registry, work / "pulls", pull)
            cluster = _cluster_figures(
                registry, tasks, agents, survivors, work / "up", timeout, mem
            )
    return ContainersResult(
        tasks=tasks,
        agents=agents,
        pallet_s=cluster["pallet_s"],
        raw_runc_s=raw,
        pulls_per_agent=int(cluster["pulls_per_agent"]),
        rootfs_disk_ratio=cluster["rootfs_disk_ratio"],
        pull_mib=pull_mib,
        pull_s=pull_s,
        skopeo_s=skopeo_s,
        survivors=survivors,
        restarts_after_agent_kill=int(cluster["restarts"]),
        rootfs_bytes_per_task=int(cluster["rootfs_bytes_per_task"]),
        image=image,
    )


def _random_layers(mib: int, layers: int = 4) -> list[dict[str, Any]]:
    """``mib`` MiB of incompressible files in ``layers`` layers (a layer per 25 MiB)."""
    per = max(1, mib // layers)
    return [{f"data-{i}": File(os.urandom(per << 20))} for i in range(layers)]


# ------------------------------------------------------------------ baselines


def _raw_runc_seconds(
    count: int, directory: Path, layers: list[dict[str, Entry]], args: list[str]
) -> float:
    """Seconds for ``count`` sequential ``runc run -d`` of one prepared bundle: the image's
    layers unpacked in order, ``args``, runc's own default spec (namespaces, devices, masked paths) with no
    terminal, the host's network and this process's open-files limit."""
    bundle = directory / "bundle"
    rootfs = bundle / "rootfs"
    rootfs.mkdir(parents=True)
    for layer in layers:
        with tarfile.open(fileobj=io.BytesIO(layer_tar(layer))) as tar:
            tar.extractall(rootfs)  # our own layers
    subprocess.run(["runc", "spec", "--bundle", str(bundle)], check=True)
    config = json.loads((bundle / "config.json").read_text())
    process = config["process"]
    process.update(terminal=False, args=args)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    process["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": hard, "soft": soft}]
    linux = config["linux"]
    linux["namespaces"] = [n for n in linux["namespaces"] if n["type"] != "network"]
    state = directory / "runc"
    ids = [f"pallet-bench-raw-{os.getpid()}-{i}" for i in range(count)]
    try:
        start = time.perf_counter()
        for cid in ids:
            linux["cgroupsPath"] = cid  # one level: runc delete removes all of it
            (bundle / "config.json").write_text(json.dumps(config))
            subprocess.run(
                ["runc", "--root", str(state), "run", "-d", "--bundle", str(bundle), cid],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=True,
            )
        return time.perf_counter() - start
    finally:
        for cid in ids:
            subprocess.run(
                ["runc", "--root", str(state), "delete", "--force", cid],
                capture_output=True,
            )


def _pull_seconds(registry: Registry, directory: Path, pull: Pull) -> tuple[float, float]:
    """Seconds of ``skopeo copy`` of the big image to a directory, and of an agent
    store's pull of it (the best of three runs each, each into a fresh directory; the
    two alternate, so both meet the same load of a shared machine)."""
    ref = registry.ref("bench/big:1")
    directory.mkdir(parents=True, exist_ok=True)
    skopeo, store = [], []
    for attempt in range(3):
        target = directory / f"skopeo-{attempt}"
        start = time.perf_counter()
        subprocess.run(
            [
                "skopeo",
                "copy",
                "--quiet",
                "--src-tls-verify=false",
                f"docker://{ref}",
                f"oci:{target}:x",
            ],
            check=True,
        )
        skopeo.append(time.perf_counter() - start)
        start = time.perf_counter()
        pull(ref, directory / f"store-{attempt}")
        store.append(time.perf_counter() - start)
    return min(skopeo), min(store)


# ------------------------------------------------------------------ the cluster


def _runc_running(state_dir: Path) -> dict[str, int]:
    """Task id -> pid of its container's first process, for every container that runs."""
    out = {}
    for state in state_dir.glob("agent-*/runc/*/state.json"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            doc = json.loads(state.read_text())
            pid = int(doc["init_process_pid"])
            if pid > 0 and os.path.exists(f"/proc/{pid}"):
                out[state.parent.name] = pid
    return out


def _app_tasks(client: httpx.Client, app_id: str) -> list[dict[str, Any]]:
    r = client.get(f"/v2/apps{app_id}/tasks")
    return list(r.json().get("tasks", [])) if r.status_code == 200 else []


def _wait_all_running(
    client: httpx.Client, state_dir: Path, app_id: str, count: int, timeout: float
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        tasks = [t for t in _app_tasks(client, app_id) if t["state"] == "TASK_RUNNING"]
        if len(tasks) == count:
            running = _runc_running(state_dir)
            if all(t["id"] in running for t in tasks):
                return tasks
        if time.monotonic() > deadline:
            raise RuntimeError(f"{count} containers were not all running after {timeout:.0f} s")
        time.sleep(0.05)


def _cluster_figures(
    registry: Registry,
    tasks: int,
    agents: int,
    survivors: int,
    state: Path,
    timeout: float,
    mem: int,
) -> dict[str, float]:
    state.mkdir()
    memory = max(1024, tasks * (mem + 8) // agents)
    resources = f"cpus:{max(1.0, tasks * 0.01 / agents * 1.5):.2f};mem:{memory};disk:4000"
    ref = registry.ref("bench/sleep:1")
    figures: dict[str, float] = {}
    with (
        running_up(state, agents, resources, free_port()) as url,
        httpx.Client(base_url=url, timeout=30.0) as client,
    ):
        app_id = "/bench-containers"
        app: dict[str, Any] = {
            "id": app_id,
            "instances": tasks,
            "cpus": 0.01,
            "mem": mem,
            "container": {"type": "MESOS", "docker": {"image": ref}},
            "portDefinitions": [],
        }
        start = time.perf_counter()
        client.post("/v2/apps", json=app).raise_for_status()
        _wait_all_running(client, state, app_id, tasks, timeout)
        figures["pallet_s"] = time.perf_counter() - start
        figures["pulls_per_agent"] = max(_pulls(state, ref).values(), default=0)
        figures["rootfs_disk_ratio"], per_task = _rootfs_disk(state)
        figures["rootfs_bytes_per_task"] = float(per_task)
        client.put(f"/v2/apps{app_id}", json={"instances": survivors}).raise_for_status()
        kept = _wait_all_running(client, state, app_id, survivors, timeout)
        running = _runc_running(state)
        pids = {t["id"]: running[t["id"]] for t in kept}
        figures["restarts"] = float(
            _kill_agents_and_count_restarts(client, state, app_id, pids, timeout)
        )
        client.delete(f"/v2/apps{app_id}", params={"force": "true"})
    return figures


def _pulls(state: Path, ref: str) -> dict[str, int]:
    counts = {}
    for agent in state.glob("agent-*"):
        path = agent / "images" / "pulls.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        counts[agent.name] = sum(
            1 for line in lines if json.loads(line)["reference"] == str(parse_image(ref))
        )
    return counts


def _tree_bytes(root: Path) -> int:
    """``du`` of a directory, itself included: allocated blocks, hard links once."""
    total, seen = 0, set()
    for directory, dirs, files in os.walk(root):
        for name in [".", *dirs, *files]:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(directory, name))
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_blocks * 512
    return total


def _rootfs_disk(state: Path) -> tuple[float, int]:
    """The largest ratio over the agents of (the image's layer snapshots and the shared
    mountpoints layer, each once, plus every task's upper and work directories) to the
    image's unpacked size; and the bytes one task's own directories take (the most)."""
    worst, per_task = 0.0, 0
    for agent in state.glob("agent-*"):
        layer_dir = agent / "images" / "layers"
        layers = [p for p in layer_dir.iterdir() if p.is_dir()] if layer_dir.is_dir() else []
        image = sum(_tree_bytes(p) for p in layers)
        if not image:
            continue
        shared = _tree_bytes(agent / "images" / "mountpoints")
        own = [
            _tree_bytes(task / "upper") + _tree_bytes(task / "work")
            for task in (agent / "containers").iterdir()
        ]
        worst = max(worst, (image + shared + sum(own)) / image)
        per_task = max([per_task, *own])
    return worst, per_task


def _kill_agents_and_count_restarts(
    client: httpx.Client, state: Path, app_id: str, pids: dict[str, int], timeout: float
) -> int:
    up = json.loads((state / "up.json").read_text())
    logs = {a["pid"]: Path(a["work_dir"]) / "agent.log" for a in up["agents"]}
    registered = {pid: log.read_text().count("registered as") for pid, log in logs.items()}
    for pid in logs:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while any(
        log.read_text().count("registered as") <= registered[pid] for pid, log in logs.items()
    ):
        if time.monotonic() > deadline:
            raise RuntimeError("the killed agents did not register again")
        time.sleep(0.1)
    time.sleep(2.0)  # a replacement, had there been one, would be under way by now
    tasks = _wait_all_running(client, state, app_id, len(pids), timeout)
    now = _runc_running(state)
    same = sum(1 for t in tasks if t["id"] in pids and now.get(t["id"]) == pids[t["id"]])
    return len(pids) - same
