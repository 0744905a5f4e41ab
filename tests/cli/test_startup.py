"""The CLI starts fast: only the noun being run is imported, and no command a user types
to talk to a cluster loads the scheduler's, the server's or the simulator's libraries."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pallet.bench.cli import HEAVY, parse_importtime
from pallet.cli.main import NOUNS, build

# Runs `pallet <argv>` in a fresh interpreter and prints the heavy modules it loaded.
_PROBE = """
import json, sys
heavy = json.loads(sys.argv[2])
sys.argv = ["pallet", *json.loads(sys.argv[1])]
from pallet.cli.main import main
try:
    main()
except SystemExit:
    pass
loaded = {m.split(".")[0] for m, module in sys.modules.items() if module is not None}
print("LOADED=" + json.dumps(sorted(loaded & set(heavy))))
"""


# Beside HEAVY, the CLI's blocking client needs no httpx: it sends with http.client.
NOT_FOR_THE_CLI = (*HEAVY, "httpx", "httpcore", "anyio", "asyncio")


def _loaded(*argv: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(argv), json.dumps(NOT_FOR_THE_CLI)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    line = [x for x in done.stdout.splitlines() if x.startswith("LOADED=")]
    assert line, done.stdout + done.stderr
    return list(json.loads(line[-1].removeprefix("LOADED=")))


@pytest.mark.parametrize(
    "argv",
    [
        ("--help",),
        ("version",),
        ("app", "list", "--help"),
        # No master listens there: the command fails as a user would see it, after
        # importing everything it needs.
        ("app", "list", "--master", "http://127.0.0.1:9"),
        ("node", "list", "--master", "http://127.0.0.1:9"),
        ("task", "list", "--master", "http://127.0.0.1:9"),
        ("job", "list", "--master", "http://127.0.0.1:9"),
    ],
)
def test_cluster_commands_load_no_heavy_library(argv: tuple[str, ...]) -> None:
    assert _loaded(*argv) == []


def test_importing_the_entry_point_loads_no_heavy_library() -> None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import pallet.cli.main"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    _, packages = parse_importtime(done.stderr, 0)
    assert "pallet" in packages
    assert not packages & set(HEAVY), packages & set(HEAVY)


def test_every_noun_lists_the_help_of_its_module() -> None:
    """`pallet --help` shows NOUNS' lines without importing the nouns: they must be the
    modules' own first help line."""
    for name, noun in NOUNS.items():
        module = importlib.import_module(noun.module)
        if noun.attr is None:
            real = module.app.info.help
        else:
            real = getattr(module, noun.attr).__doc__
        assert real.strip().splitlines()[0] == noun.help, name


def test_the_noun_asked_for_is_the_real_one() -> None:
    import typer.main

    group = typer.main.get_command(build(["app", "list"]))
    assert "list" in group.commands["app"].commands  # type: ignore[attr-defined]
    stand_in = typer.main.get_command(build(["version"])).commands["app"]  # type: ignore[attr-defined]
    assert not hasattr(stand_in, "commands")


def test_bench_seeds_default_matches_the_packing_benchmark() -> None:
    from pallet.bench.packing import DEFAULT_SEEDS
    from pallet.cli.bench import _SEEDS
    from pallet.cli.common import parse_ints

    assert parse_ints(_SEEDS, "--seeds") == DEFAULT_SEEDS


def test_parse_importtime_reads_first_level_imports() -> None:
    text = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:       100 |        100 |     numpy.core",
            "import time:      2000 |       5000 |   numpy",
            "import time:       300 |       9000 | pallet.cli.main",
            "import time:        50 |         50 | json",
        ]
    )
    top, packages = parse_importtime(text, 2)
    assert top == [("pallet.cli.main", 9.0), ("json", 0.05)]
    assert packages == {"numpy", "pallet", "json"}


@pytest.mark.slow
def test_bench_cli_times_the_commands_against_a_real_master() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pallet.cli.main", "bench", "cli", "--runs", "1", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).parent,
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["baseline"]["median_ms"] > 0
    names = [c["command"] for c in doc["commands"]]
    assert names == ["pallet --help", "pallet version", "pallet app list (10 apps)"]
    for c in doc["commands"]:
        assert c["heavy_imports"] == [], c
        assert c["top_imports_ms"], c


def test_a_missing_sim_library_is_one_line_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a cluster-only install prints for `pallet bench packing`: the library and the
    command that installs it, exit 2, no traceback."""
    from pallet.cli import main as main_module

    def import_fails(name: str) -> object:
        raise ModuleNotFoundError("No module named 'highspy'", name="highspy")

    monkeypatch.setattr(main_module.importlib, "import_module", import_fails)
    monkeypatch.setattr(sys, "argv", ["pallet", "bench", "packing", "--seeds", "42"])
    with pytest.raises(SystemExit) as exit_info:
        main_module.main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "pallet bench packing needs highspy" in err
    assert "pip install 'pallet[sim]'" in err


def test_a_stand_in_takes_the_real_commands_arguments() -> None:
    import typer
    from typer.testing import CliRunner

    from pallet.cli.extras import SimNotInstalled, command_settings, sim_stand_in

    app = typer.Typer()
    stand_in = sim_stand_in(ModuleNotFoundError(name="scipy.optimize"), "bench compaction")
    app.command(name="compaction", **command_settings(stand_in))(stand_in)
    app.command(name="other")(lambda: None)
    result = CliRunner().invoke(app, ["compaction", "--workload", "azure-peak", "--json"])
    assert isinstance(result.exception, SimNotInstalled)
    assert "needs scipy" in str(result.exception)
    with pytest.raises(ModuleNotFoundError):
        sim_stand_in(ModuleNotFoundError(name="yaml"), "bench compaction")


def test_the_cli_bench_reports_both_baselines_and_the_gap() -> None:
    from pallet.bench.cli import CliResult, CommandTiming

    def timing(name: str, *ms: float) -> CommandTiming:
        return CommandTiming(name, (name,), ms, ms)

    result = CliResult(
        5,
        "pallet",
        timing("python -c pass", 80, 90, 100),
        timing("python -I -c pass", 50, 60, 70),
        [timing("pallet version", 100, 120, 200), timing("pallet app list", 140, 160, 180)],
    )
    doc = result.to_json()
    assert doc["baseline"]["median_ms"] == 90 and doc["isolated_baseline"]["median_ms"] == 60
    version, listing = doc["commands"]
    # medians 120 and 160 against the baseline's 90: +30 ms (1.33 x), +70 ms (1.78 x)
    assert (version["over_baseline_ms"], version["x_baseline"]) == (30, 1.33)
    assert (listing["over_baseline_ms"], listing["x_baseline"]) == (70, 1.78)
    assert doc["goal_met"] is False  # 160 > 150


def test_python_m_pallet_is_the_pallet_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pallet", "app", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Usage: pallet app" in done.stdout
