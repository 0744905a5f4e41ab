"""The README's first command, ``scripts/install``, in a fresh copy of the repository with
the system's python3 and an empty home: it makes a virtual environment, puts ``pallet``
on the PATH, and installs the cluster without the simulator's libraries."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
SIM_ONLY = ("scipy", "highspy", "matplotlib")
HEAVY = ("numpy", "scipy", "highspy", "matplotlib")


def _fresh_copy(dest: Path) -> Path:
    """The repository's files as a clone of this tree would have them (tracked and new,
    not ignored: no .venv, no caches)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "-co", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = ROOT / name.decode()
        if source.is_file():
            target = dest / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dest


def _user_env(home: Path) -> dict[str, str]:
    """A login-like environment: no virtual environment active, ~/.local/bin on the PATH
    (Debian's ~/.profile adds it when it exists), the system's python3."""
    (home / ".local" / "bin").mkdir(parents=True, exist_ok=True)
    env = {
        "HOME": str(home),
        "PATH": f"{home}/.local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
    }
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CACHE_DIR", "CI", "XDG_CACHE_HOME"):
        if name in os.environ:
            env[name] = os.environ[name]
    if "PIP_CACHE_DIR" not in env and "XDG_CACHE_HOME" not in env:
        env["XDG_CACHE_HOME"] = str(Path.home() / ".cache")  # reuse the suite's pip cache
    return env


def test_the_environment_is_the_active_venv_else_dot_venv(tmp_path: Path) -> None:
    script = f"source {ROOT}/scripts/lib/env.sh; echo $PALLET_VENV; echo $PALLET_PYTHON"
    plain = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    out = subprocess.run(["bash", "-c", script], env=plain, capture_output=True, text=True)
    assert out.stdout.split() == [f"{ROOT}/.venv", f"{ROOT}/.venv/bin/python"]
    active = plain | {"VIRTUAL_ENV": str(tmp_path / "mine")}
    out = subprocess.run(["bash", "-c", script], env=active, capture_output=True, text=True)
    assert out.stdout.split() == [f"{tmp_path}/mine", f"{tmp_path}/mine/bin/python"]


@pytest.mark.slow
def test_install_makes_a_venv_and_puts_pallet_on_the_path(tmp_path: Path) -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout to copy")
    if not Path("/usr/bin/python3").exists():
        pytest.skip("needs the system's python3")
    repo = _fresh_copy(tmp_path / "pallet")
    env = _user_env(tmp_path / "home")
    done = subprocess.run(
        ["scripts/install"], cwd=repo, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"pallet is {tmp_path}/home/.local/bin/pallet" in done.stdout

    # The README's next command finds `pallet` on the PATH.
    version = subprocess.run(
        ["pallet", "version"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == "0.1.0"
    assert (tmp_path / "home/.local/bin/pallet").resolve() == repo / ".venv/bin/pallet"

    # The cluster only: none of the simulator's libraries; the CLI loads no heavy one.
    python = str(repo / ".venv/bin/python")
    probe = (
        "import importlib.metadata as m, json, sys\n"
        "names = {d.metadata['Name'].lower() for d in m.distributions()}\n"
        "import pallet.cli.main\n"
        "print(json.dumps([sorted(names), sorted({k.split('.')[0] for k in sys.modules})]))"
    )
    found = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True)
    installed, loaded = json.loads(found.stdout)
    assert "pallet" in installed and "typer" in installed
    assert not set(SIM_ONLY) & set(installed), set(SIM_ONLY) & set(installed)
    assert not set(HEAVY) & set(loaded), set(HEAVY) & set(loaded)

    # Running it again reuses the environment and changes nothing.
    again = subprocess.run(
        ["scripts/install"], cwd=repo, env=env, capture_output=True, text=True, timeout=900
    )
    assert again.returncode == 0, again.stderr
    assert "created the virtual environment" not in again.stdout

    # A benchmark that needs the sim extra says how to get it, in one line.
    bench = subprocess.run(
        ["pallet", "bench", "compaction", "--workload", "azure-peak"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bench.returncode == 2, bench.stdout + bench.stderr
    assert "pip install 'pallet[sim]'" in bench.stderr
    assert "Traceback" not in bench.stderr
