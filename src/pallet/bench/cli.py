"""``pallet bench cli``: how fast the ``pallet`` command answers; spawns processes.

Each command runs once to warm the page cache and the bytecode (kept in a cache of the
run's own, even where ``PYTHONDONTWRITEBYTECODE`` is set), then ``runs`` times,
timed from spawn to exit; the median is the figure. CPU time (user + system of the
child) is reported beside it, for a shared machine's wall clock moves with its load.
The baseline, measured in the same run, is the interpreter starting and exiting
(``python -c pass``): no Python command can beat it. ``python -I -c pass`` is measured
beside it: an interpreter whose site directory runs import hooks (``.pth`` files, such as
one that loads certifi at every start) pays for them in both, but ``-I`` drops the user's
site and the environment's ``PYTHON*`` variables, so the gap between the two shows what
the machine's set-up, not Pallet, adds. One more run of each command with
``-X importtime`` names the imports that cost most and any heavy library loaded
(``HEAVY``): the CLI must not load the scheduler's, the server's or the simulator's.
``pallet app list`` asks a real master (``pallet master``, SQLite, a few apps).
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from pallet.bench.cluster import free_port, running_master

__all__ = [
    "GOAL_MS",
    "HEAVY",
    "CliResult",
    "CommandTiming",
    "pallet_command",
    "parse_importtime",
    "run_cli_bench",
]

GOAL_MS = 150.0
"""Start-up goal of ``pallet --help``, ``pallet version`` and ``pallet app list``."""

HEAVY = ("numpy", "scipy", "highspy", "matplotlib", "uvicorn", "fastapi")
"""Libraries a CLI command never needs: the scheduler's, the simulator's, the server's."""

_APPS = 10


@dataclass(frozen=True, slots=True)
class CommandTiming:
    name: str
    argv: tuple[str, ...]
    samples_ms: tuple[float, ...]
    cpu_ms: tuple[float, ...]
    top_imports: tuple[tuple[str, float], ...] = ()
    heavy: tuple[str, ...] = ()

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def median_cpu_ms(self) -> float:
        return statistics.median(self.cpu_ms)

    def to_json(self, baseline_ms: float | None) -> dict[str, Any]:
        return {
            "command": self.name,
            "median_ms": round(self.median_ms, 1),
            "over_baseline_ms": round(self.median_ms - baseline_ms, 1) if baseline_ms else None,
            "min_ms": round(min(self.samples_ms), 1),
            "max_ms": round(max(self.samples_ms), 1),
            "cpu_ms": round(self.median_cpu_ms, 1),
            "x_baseline": round(self.median_ms / baseline_ms, 2) if baseline_ms else None,
            "samples_ms": [round(s, 1) for s in self.samples_ms],
            "top_imports_ms": [[name, round(ms, 1)] for name, ms in self.top_imports],
            "heavy_imports": list(self.heavy),
        }


@dataclass(frozen=True, slots=True)
class CliResult:
    runs: int
    executable: str
    baseline: CommandTiming
    isolated: CommandTiming
    commands: list[CommandTiming] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        base = self.baseline.median_ms
        return {
            "runs": self.runs,
            "goal_ms": GOAL_MS,
            "executable": self.executable,
            "baseline": self.baseline.to_json(None),
            "isolated_baseline": self.isolated.to_json(None),
            "commands": [c.to_json(base) for c in self.commands],
            "goal_met": all(c.median_ms <= GOAL_MS for c in self.commands),
        }


def pallet_command() -> list[str]:
    """How a user starts ``pallet`` here: the console script beside this interpreter
    (what ``scripts/install`` puts on the PATH), else ``python -m pallet.cli.main``."""
    script = Path(sys.executable).with_name("pallet")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "pallet.cli.main"]


def _timed(argv: Sequence[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU milliseconds of one run of ``argv``; fails loudly if it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, env=env, timeout=120)
    wall = (time.perf_counter() - start) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(
            f"`{' '.join(argv)}` exited with {done.returncode}: {done.stderr.decode()[-500:]}"
        )
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000
    return wall, cpu


def parse_importtime(text: str, top: int) -> tuple[list[tuple[str, float]], set[str]]:
    """From ``-X importtime`` output: the ``top`` imports made at the top level (not by
    another import) by cumulative milliseconds, and every top-level package loaded."""
    first_level: list[tuple[str, float]] = []
    packages: set[str] = set()
    for line in text.splitlines():
        if not line.startswith("import time:"):
            continue
        parts = line[len("import time:") :].split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue  # the header line
        name = parts[2].rstrip()
        packages.add(name.strip().split(".")[0])
        if not name.startswith("  ", 1):  # one space of indent: imported directly
            first_level.append((name.strip(), int(parts[1]) / 1000))
    first_level.sort(key=lambda item: item[1], reverse=True)
    return first_level[:top], packages


def _measure(
    name: str, argv: Sequence[str], runs: int, env: dict[str, str], top: int
) -> CommandTiming:
    _timed(argv, env)  # warm-up: page cache, bytecode
    walls, cpus = zip(*(_timed(argv, env) for _ in range(runs)), strict=True)
    traced = subprocess.run(
        argv, capture_output=True, env={**env, "PYTHONPROFILEIMPORTTIME": "1"}, timeout=120
    )
    imports, packages = parse_importtime(traced.stderr.decode(errors="replace"), top)
    heavy = tuple(sorted(packages & set(HEAVY)))
    return CommandTiming(name, tuple(argv), tuple(walls), tuple(cpus), tuple(imports), heavy)


def _add_apps(url: str, count: int) -> None:
    with httpx.Client(base_url=url, timeout=30.0) as client:
        for i in range(count):
            body = {"id": f"/bench/cli-{i:02d}", "cmd": "sleep 600", "cpus": 0.01, "mem": 8}
            client.post("/v2/apps", json={**body, "instances": 0}).raise_for_status()


def run_cli_bench(runs: int = 5, top: int = 8) -> CliResult:
    """Time ``pallet --help``, ``pallet version`` and ``pallet app list`` (against a real
    master holding a few apps) against the interpreter's own start."""
    pallet = pallet_command()
    with tempfile.TemporaryDirectory(prefix="pallet-bench-cli-") as tmp:
        # As installed: pip compiles a package's bytecode when it installs it. A shell that
        # sets PYTHONDONTWRITEBYTECODE would have every run compile Pallet's modules again,
        # so the runs keep theirs in a cache of their own (the warm-up fills it).
        skip = ("PYTHONPROFILEIMPORTTIME", "PYTHONDONTWRITEBYTECODE")
        env = {k: v for k, v in os.environ.items() if k not in skip}
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "bytecode")
        baseline = _measure(
            "python -c pass (baseline)", [sys.executable, "-c", "pass"], runs, env, 0
        )
        isolated = _measure("python -I -c pass", [sys.executable, "-I", "-c", "pass"], runs, env, 0)
        with running_master(Path(tmp), free_port()) as url:
            _add_apps(url, _APPS)
            cases = [
                ("pallet --help", [*pallet, "--help"]),
                ("pallet version", [*pallet, "version"]),
                (f"pallet app list ({_APPS} apps)", [*pallet, "app", "list", "--master", url]),
            ]
            commands = [_measure(name, argv, runs, env, top) for name, argv in cases]
    return CliResult(runs, " ".join(pallet), baseline, isolated, commands)
