"""``pallet bench``: bad input gives one clear line naming the file, line and field."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

GOLDEN_PODS = Path(__file__).parents[1] / "sim" / "data" / "golden_pods.csv"


def _pallet(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pallet.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    ("row", "field", "fragment"),
    [
        ("p1,abc,1024,1,1000,", "cpu_milli", "'abc' is not a number"),
        ("p1,1000,1024,2,500,", "gpu_milli", "allowed only with num_gpu 1"),
        ("p1,1000,-5,0,0,", "memory_mib", "out of range"),
        ("p1,1000,1024,,0,", "num_gpu", "is missing"),
    ],
)
def test_malformed_trace_row_names_file_line_and_field(
    tmp_path: Path, row: str, field: str, fragment: str
) -> None:
    bad = tmp_path / "pods.csv"
    bad.write_text(
        "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec\np0,1000,1024,0,0,\n" + row + "\n"
    )
    done = _pallet(
        "bench", "packing", "--workload", str(bad), "--seeds", "42", "--policies", "bestfit"
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert f"{bad}:3: field {field!r}" in done.stderr
    assert fragment in done.stderr


def test_missing_file_and_bad_options_are_clear(tmp_path: Path) -> None:
    done = _pallet("bench", "packing", "--workload", str(tmp_path / "nope.csv"), "--seeds", "42")
    assert (
        done.returncode == 2 and "file not found" in done.stderr and "Traceback" not in done.stderr
    )
    done = _pallet("bench", "packing", "--seeds", "4x")
    assert done.returncode == 2 and "--seeds" in done.stderr
    done = _pallet("bench", "packing", "--policies", "pallet,magic")
    assert done.returncode == 2 and "unknown magic" in done.stderr
    done = _pallet("bench", "packing", "--sequence", "mersenne")
    assert done.returncode == 2 and "--sequence: unknown 'mersenne'" in done.stderr


@pytest.mark.traces
def test_packing_json_shape_on_a_small_trace() -> None:
    # The golden trace's pods on the shared openb GPU nodes: small and quick.
    done = _pallet(
        "bench",
        "packing",
        "--workload",
        str(GOLDEN_PODS),
        "--seeds",
        "42,43",
        "--policies",
        "bestfit,random",
        "--ceiling",
        "--json",
        "--jobs",
        "1",
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["workload"] == "golden_pods" and doc["seeds"] == [42, 43]
    assert [r["policy"] for r in doc["results"]] == ["bestfit", "random"]
    for r in doc["results"]:
        assert set(r) >= {"policy", "alloc_at_100", "alloc_at_130", "published_at_100"}
        assert r["published_at_100"] is None  # the paper has no such workload
        # no policy passes the bound on what any policy could reach on these arrivals
        assert r["alloc_at_100"] <= doc["ceiling_at_100"] < 100
        assert r["alloc_at_130"] <= doc["ceiling_at_130"] < 100


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--sweep", "cpu-only=0:3"], "--sweep: '0:3' is not LO:HI:STEP"),
        (["--sweep", "cpus=1"], "--sweep: 'cpus=1' is not KIND=LO:HI:STEP"),
        (["--sweep", "cpu-only=1,2", "--workload", "all"], "--workload: a sweep scales one"),
    ],
)
def test_bad_sweeps_name_the_option(args: list[str], fragment: str) -> None:
    done = _pallet("bench", "packing", *args)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert fragment in done.stderr


@pytest.mark.traces
def test_a_scaling_that_makes_a_pod_bigger_than_every_node_is_refused() -> None:
    # The golden trace's 2-GPU pods ask 24 cores; times 6 no openb node (128 cores at
    # most) could hold one. Refused before anything runs.
    done = _pallet("bench", "packing", "--workload", str(GOLDEN_PODS), "--sweep", "pod-cpu=1,6")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--sweep: pod-cpu=6 makes a pod ask 144 CPUs" in done.stderr


def test_sweep_json_table_and_plot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # In-process, on the golden trace's 16 nodes instead of the 1,213 openb nodes, so
    # that each run is a few hundred pods.
    from typer.testing import CliRunner

    import pallet.bench.packing as bench_packing
    from pallet.cli.main import build
    from pallet.sim.traces.openb import read_openb_nodes

    app = build(["bench"])  # the command tree with the bench noun attached
    nodes = read_openb_nodes(GOLDEN_PODS.with_name("golden_nodes.csv"))
    monkeypatch.setattr(bench_packing, "_nodes", lambda: nodes)
    args = ["bench", "packing", "--workload", str(GOLDEN_PODS), "--seeds", "42", "--jobs", "1"]
    args += ["--sweep", "cpu-only=0,2", "--policies", "bestfit,pallet"]
    done = CliRunner().invoke(app, [*args, "--json", "--plot", str(tmp_path)])
    assert done.exit_code == 0, done.output
    doc = json.loads(done.stdout)
    assert doc["sweep"] == "cpu-only" and doc["seeds"] == [42] and doc["list_seed"] == 0
    assert doc["sequence"] == "go"
    first, second = doc["points"]
    assert (first["factor"], second["factor"]) == (0.0, 2.0)
    assert first["cpu_only_cores"] == 0 and second["cpu_only_cores"] > 0
    assert first["gpu_pod_cores"] == second["gpu_pod_cores"] > 0
    for point in doc["points"]:
        for policy in ("bestfit", "pallet"):
            assert point[policy]["alloc_at_100"] <= point["ceiling_at_100"] <= 100
            assert point[policy]["alloc_at_130"] <= point["ceiling_at_130"] <= 100
    assert list(tmp_path.glob("*.png")) == [tmp_path / "sweep-golden_pods-cpu-only.png"]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    assert "ceiling" in done.stdout and "kcores" in done.stdout
