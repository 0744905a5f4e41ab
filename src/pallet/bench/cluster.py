"""Starting and stopping a local cluster (``pallet up``) or a lone master for the benchmarks,
and making sure nothing they started outlives them; spawns processes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil

__all__ = ["cgroup_dirs", "free_port", "leftovers", "reap", "running_master", "running_up"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pallet(*args: str) -> list[str]:
    return [sys.executable, "-m", "pallet.cli.main", *args]


@contextlib.contextmanager
def running_up(
    state_dir: Path,
    agents: int,
    resources: str,
    port: int,
    report: dict[str, int] | None = None,
    extra: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> Iterator[str]:
    """``pallet up`` in a subprocess (``env``: its environment); yields the master's URL
    once it is ready (https with ``--secure`` in ``extra``); stops it with SIGINT, as
    Ctrl-C would, then removes whatever is left, counting it in ``report["processes"]``
    and ``report["cgroups"]`` (both 0 when all went well)."""
    process = subprocess.Popen(
        _pallet(
            "up",
            "--agents",
            str(agents),
            "--port",
            str(port),
            "--state-dir",
            str(state_dir),
            "--agent-port",
            "0",
            "--resources",
            resources,
            *extra,
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline().decode()
        if "Pallet is up" not in first:
            raise RuntimeError(f"pallet up failed: {first}{process.stdout.read().decode()}")
        yield f"{'https' if '--secure' in extra else 'http'}://127.0.0.1:{port}"
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(120)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        procs, cgroups = reap(state_dir)
        if report is not None:
            report.update(processes=procs, cgroups=cgroups)


@contextlib.contextmanager
def running_master(
    state_dir: Path, port: int, info: dict[str, int] | None = None, extra: tuple[str, ...] = ()
) -> Iterator[str]:
    """``pallet master`` alone (no agents) with its SQLite store under ``state_dir``
    (``state.db``, its log in ``master.log``) and ``extra`` options; ``info["pid"]`` is
    set to its process id."""
    store = f"sqlite:///{state_dir.resolve() / 'state.db'}"
    log = open(state_dir / "master.log", "ab")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        _pallet("master", "--port", str(port), "--store", store, "--log-level", "warning", *extra),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    if info is not None:
        info["pid"] = process.pid
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # ~2 s when quiet; a busy machine takes 20 and more
        while True:
            try:
                if httpx.get(f"{url}/ping", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the master did not start; see {state_dir / 'master.log'}")
            time.sleep(0.05)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def leftovers(state_dir: Path) -> list[psutil.Process]:
    """Processes started from, or working in, ``state_dir`` (other than this one)."""
    mark = str(state_dir.resolve())
    found = []
    for p in psutil.process_iter(["cmdline", "cwd"]):
        with contextlib.suppress(psutil.Error):
            text = " ".join(p.info["cmdline"] or []) + " " + (p.info["cwd"] or "")
            if mark in text and p.pid != os.getpid():
                found.append(p)
    return found


def _node_ids(state_dir: Path) -> set[str]:
    return {
        p.read_text().strip() for p in state_dir.glob("agent-*/node-id") if p.read_text().strip()
    }


def cgroup_dirs(names: set[str], root: str = "/sys/fs/cgroup", depth: int = 6) -> list[str]:
    """Directories under the cgroup mounts named one of ``names`` (a pruned walk)."""
    found = []
    base = root.rstrip("/").count("/")
    for dirpath, dirnames, _ in os.walk(root):
        if dirpath.count("/") - base >= depth:
            dirnames[:] = []
        found += [os.path.join(dirpath, d) for d in dirnames if d in names]
    return found


def reap(state_dir: Path) -> tuple[int, int]:
    """Kill every process and remove every cgroup the cluster under ``state_dir`` left
    (normally none: the agents clean up); how many of each there were."""
    procs = leftovers(state_dir)
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(procs, timeout=5)
    cgroups = cgroup_dirs(_node_ids(state_dir)) if Path("/sys/fs/cgroup").is_dir() else []
    for path in sorted(cgroups, key=len, reverse=True):
        for dirpath, _dirs, _files in sorted(os.walk(path, topdown=False), reverse=True):
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)
    return len(procs), len(cgroups)
