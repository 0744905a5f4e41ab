"""Launches that fetch first: the agent goes on meanwhile, a failed fetch fails the task
with its reason, a kill during the fetch ends it as killed during launch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from httpserve import serve
from pallet.agent import Executor, Reason, TaskRuntime, TaskState
from pallet.model import FetchUri

from .conftest import make_spec
from .test_runtime import run_until, states

S = TaskState


@pytest.fixture
def runtime(executor: Executor) -> Iterator[TaskRuntime]:
    rt = TaskRuntime(executor)
    yield rt
    rt.close(timeout=5.0)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    (root / "hello.sh").write_text("echo fetched-and-run\n")
    return root


def test_a_fetching_task_starts_once_its_uris_are_in_the_sandbox(
    runtime: TaskRuntime, site: Path
) -> None:
    with serve(site, delay=0.5) as (url, _):
        fetching = make_spec("fetching.1", cmd="sh hello.sh", fetch=(FetchUri(f"{url}/hello.sh"),))
        plain = make_spec("plain.1", cmd="sleep 30")
        first = runtime.set_desired([fetching, plain])
        # the plain task does not wait for the download
        assert states(first, "fetching.1") == [S.STARTING]  # nothing later yet: sent
        assert states(first, "plain.1") == [S.RUNNING]  # its STARTING superseded
        seen = run_until(runtime, "fetching.1", S.FINISHED)
    assert states(seen, "fetching.1") == [S.RUNNING, S.FINISHED]
    assert runtime.read_log("fetching.1", "stdout").data == b"fetched-and-run\n"


def test_a_failed_fetch_fails_the_task_with_the_uri_and_the_answer(
    runtime: TaskRuntime, site: Path
) -> None:
    with serve(site) as (url, _):
        runtime.set_desired([make_spec("nofile.1", fetch=(FetchUri(f"{url}/nope.tgz"),))])
        seen = run_until(runtime, "nofile.1", S.FAILED)
    (end,) = [s for s in seen if s.state is S.FAILED]
    assert end.reason is Reason.CONTAINER_LAUNCH_FAILED
    assert end.message == f"fetch {url}/nope.tgz: 404 File not found"


def test_a_kill_during_the_fetch_ends_the_task_killed_during_launch(
    runtime: TaskRuntime, site: Path
) -> None:
    with serve(site, delay=1.0) as (url, _):
        spec = make_spec("slow.1", cmd="sleep 30", fetch=(FetchUri(f"{url}/hello.sh"),))
        assert states(runtime.set_desired([spec]), "slow.1") == [S.STARTING]
        assert states(runtime.set_desired([]), "slow.1") == [S.KILLING]
        seen = run_until(runtime, "slow.1", S.KILLED)
    (end,) = [s for s in seen if s.state is S.KILLED]
    assert end.reason is Reason.TASK_KILLED_DURING_LAUNCH
    assert runtime.executor.running() == set()
