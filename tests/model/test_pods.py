"""Pod containers: their spec round-trips and names bad fields, and the pod's supervisor
(run here as the agent runs it, as real processes) ends the instance as one unit."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pallet.model import TaskSpec, ValidationError
from pallet.model.pods import PodContainer, endpoint_env_name, pod_argv


def test_spec_round_trips_and_the_task_runs_the_supervisor() -> None:
    spec = TaskSpec(
        task_id="pod.instance-1",
        containers=(
            PodContainer("web", shell="exec sleep 1", env={"A": "1"}, cpu_milli=100, mem_mib=32),
            PodContainer("side", argv=("sleep", "2"), cpu_milli=50, mem_mib=16, disk_mib=5),
        ),
        kill_grace_seconds=2.5,
    )
    assert TaskSpec.from_json(spec.to_json()) == spec
    assert spec.argv[:2] == ("/bin/bash", "-c")
    # grace, count, then per container: name, word count, words
    assert spec.argv[4:] == (
        "2.5", "2",
        "web", "5", "env", "A=1", "/bin/sh", "-c", "exec sleep 1",
        "side", "3", "env", "sleep", "2",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ({"name": "Web", "shell": "x"}, "/containers/0/name"),
        ({"name": "web"}, "/containers/0/exec/command"),
        ({"name": "web", "shell": "x", "argv": ["y"]}, "/containers/0/exec/command"),
        ({"name": "web", "argv": ["A=b"]}, "/containers/0/exec/command/argv/0"),
        ({"name": "web", "shell": "x", "env": {"1X": "y"}}, "/containers/0/environment"),
        ({"name": "web", "shell": "x", "mem": 0}, "/containers/0/resources/mem"),
        ({"name": "web", "shell": "x", "image": "Not A Ref"}, "/containers/0/image/id"),
        (
            {"name": "web", "shell": "x", "mounts": [{"name": "v", "path": "/abs"}]},
            "/containers/0/volumeMounts/mountPath",
        ),
        (
            {"name": "web", "shell": "x", "mounts": [{"name": "v", "path": "a/../b"}]},
            "/containers/0/volumeMounts/mountPath",
        ),
        (
            {"name": "web", "image": "busybox", "mounts": [{"name": "v", "path": "/x", "bad": 1}]},
            "/containers/0",
        ),
    ],
)
def test_bad_containers_are_named(doc: dict[str, object], path: str) -> None:
    raw = {"task_id": "p.1", "containers": [doc]}
    with pytest.raises(ValidationError) as e:
        TaskSpec.from_json(raw)
    assert e.value.field == path


def test_a_pod_task_has_no_command_of_its_own() -> None:
    with pytest.raises(ValidationError, match="no cmd"):
        TaskSpec(task_id="p.1", cmd="x", containers=(PodContainer("a", shell="y"),))
    with pytest.raises(ValidationError, match="repeat"):
        TaskSpec(
            task_id="p.1", containers=(PodContainer("a", shell="y"), PodContainer("a", shell="z"))
        )


def test_endpoint_env_names() -> None:
    assert endpoint_env_name("http-api") == "ENDPOINT_HTTP_API"


# ------------------------------------------------------------ the supervisor, for real


def _start(
    tmp_path: Path, containers: tuple[PodContainer, ...], grace: float = 5.0
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        pod_argv(containers, grace),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def _pid(path: Path, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return int(path.read_text())
        time.sleep(0.02)
    raise AssertionError(f"{path} was never written")


def test_one_container_ending_ends_the_instance(tmp_path: Path) -> None:
    pod = _start(
        tmp_path,
        (
            PodContainer("web", shell="echo $$ > web.pid; echo $ROLE > web.env; exec sleep 60",
                          env={"ROLE": "web"}),
            PodContainer("job", shell="echo $ROLE > job.env; sleep 0.3; exit 3", env={"ROLE": "job"}),
        ),
    )  # fmt: skip
    web = _pid(tmp_path / "web.pid")
    _, err = pod.communicate(timeout=30)
    assert pod.returncode == 3
    assert err.decode().strip().splitlines()[-1] == (
        "pod: container job exited with status 3; stopping the others"
    )
    assert (tmp_path / "web.env").read_text() == "web\n"  # each its own environment
    assert (tmp_path / "job.env").read_text() == "job\n"
    assert not _alive(web)  # stopped with its sibling, not left behind


def test_a_killed_instance_stops_every_container_within_the_grace(tmp_path: Path) -> None:
    pod = _start(
        tmp_path,
        (
            PodContainer("a", shell="echo $$ > a.pid; exec sleep 60"),
            # ignores SIGTERM: SIGKILLed once the grace is over
            PodContainer("b", shell="trap '' TERM; echo $$ > b.pid; while :; do sleep 0.1; done"),
        ),
        grace=1.0,
    )
    a, b = _pid(tmp_path / "a.pid"), _pid(tmp_path / "b.pid")
    started = time.monotonic()
    os.killpg(pod.pid, signal.SIGTERM)  # what the agent's kill does first
    pod.communicate(timeout=30)
    assert pod.returncode == 143
    assert time.monotonic() - started >= 0.9  # b held out until the grace ended
    assert not _alive(a) and not _alive(b)
