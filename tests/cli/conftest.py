"""Fixtures for CLI tests: the ``pallet`` entry point run in-process against the master's
real API and control (``RealMaster``: a memory store, agents played over the agent
protocol), with a fake clock for ``--wait`` and a wide console. A test that asks for
``fake`` gets the in-memory double instead, for what the real master cannot do without
real agents (serving task logs)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from client.fake_master import FakeMaster
from client.real_master import RealMaster
from pallet.bench.cluster import free_port, running_master
from pallet.cli import client_opts, common, waiting
from pallet.cli.main import main
from pallet.model.clock import FakeClock


@dataclass
class Result:
    code: int
    out: str
    err: str


Run = Callable[..., Result]


@pytest.fixture
def fake() -> FakeMaster:
    return FakeMaster()


@pytest.fixture
def real() -> Iterator[RealMaster]:
    master = RealMaster()
    yield master
    master.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1000.0)


@pytest.fixture
def run(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    clock: FakeClock,
) -> Run:
    """``run("app", "list")`` -> exit code, stdout, stderr of ``pallet app list``, against
    the real master (or the fake, when the test asks for ``fake``). Each of the CLI's
    waits moves the fake clock and lets the cluster take a step. An exception other than
    SystemExit (a traceback for the user) fails the test."""
    monkeypatch.delenv("PALLET_MASTER", raising=False)
    monkeypatch.setattr(client_opts, "clock", clock)
    if "fake" in request.fixturenames:
        fake: FakeMaster = request.getfixturevalue("fake")
        monkeypatch.setattr(client_opts, "transport", fake.transport())
        monkeypatch.setattr(client_opts, "sleep", clock.sleep)
    else:
        master: RealMaster = request.getfixturevalue("real")
        monkeypatch.setattr(client_opts, "transport", master.transport())

        def sleep(seconds: float) -> None:
            clock.sleep(seconds)
            master.step(seconds)

        monkeypatch.setattr(client_opts, "sleep", sleep)
    monkeypatch.setattr(common.console, "width", 200)
    monkeypatch.setattr(waiting.err_console, "width", 200)

    def invoke(*args: str) -> Result:
        monkeypatch.setattr(sys, "argv", ["pallet", *args])
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return invoke


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``pallet master`` (SQLite, no agents), one per test module."""
    with running_master(tmp_path_factory.mktemp("master"), free_port()) as url:
        yield url


@pytest.fixture
def pallet(master: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    """``pallet("app", "list")`` against the module's real master: exit code, stdout,
    stderr; a traceback shown to the user fails the test."""
    monkeypatch.setenv("PALLET_MASTER", master)
    monkeypatch.setattr(common.console, "width", 200)

    def invoke(*args: str) -> Result:
        monkeypatch.setattr(sys, "argv", ["pallet", *args])
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        return Result(code, out, err)

    return invoke
