"""Pod instances on a real executor: a container with an image runs under runc in its own
root filesystem beside command containers, all in the instance's cgroups and on the
host's network; ephemeral volumes are shared between them; each container writes its own
logs; one container ending ends the instance; nothing is left behind."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from oci import PushedImages
from pallet.agent import Executor, TaskExit, TaskRuntime, TaskSpec
from pallet.agent.checks import probe
from pallet.agent.pods import pod_container_key
from pallet.model import CheckProtocol, HealthCheckSpec
from pallet.model.pods import PodContainer, PodMount

from .conftest import wait_for

pytestmark = pytest.mark.root


def runc_list(ex: Executor) -> list[str]:
    done = subprocess.run(ex.containers.command("list", "-q"), capture_output=True, text=True)
    return done.stdout.split()


@pytest.fixture
def ex(tmp_path: Path, agent_id: str) -> Iterator[Executor]:
    executor = Executor(
        tmp_path / "sandboxes", agent_id=agent_id, host="node-1", task_user="nobody"
    )
    bases = [p.parent for p in executor.isolator.paths("x").values()]
    yield executor
    executor.close()
    assert not [m for m in Path("/proc/mounts").read_text().splitlines() if str(tmp_path) in m]
    assert runc_list(executor) == []
    assert not [b for b in bases if b.exists()], "cgroups left behind"


def running(ex: Executor, key: str) -> bool:
    """runc says the container's process runs (not only created)."""
    done = subprocess.run(ex.containers.command("state", key), capture_output=True, text=True)
    return done.returncode == 0 and '"status": "running"' in done.stdout


def ended(ex: Executor, task_id: str, timeout: float = 60.0) -> TaskExit:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for outcome in ex.take_launches():
            assert not hasattr(outcome, "message"), outcome
        for end in ex.wait(0.2):
            if end.task_id == task_id:
                return end
    procs = subprocess.run(
        ["ps", "-o", "pid,ppid,pgid,stat,args", "-e", "--forest"], capture_output=True, text=True
    ).stdout
    mine = [
        line for line in procs.splitlines() if "sleep" in line or "runc" in line or "bash" in line
    ]
    raise AssertionError(f"{task_id} did not end; runc: {runc_list(ex)}; processes: {mine}")


def log(ex: Executor, task_id: str, container: str, stream: str = "stdout") -> str:
    path = ex.log_path(task_id, stream, container)
    return path.read_text() if path.exists() else ""


def test_an_image_container_and_a_command_container_share_a_volume(
    ex: Executor, images: PushedImages
) -> None:
    spec = TaskSpec(
        task_id="pod.instance-1",
        containers=(
            PodContainer(
                "writer",
                image=images.busybox,
                shell="echo from-image > /shared/note; cat /etc/hostname; id -u; "
                "test -e /etc/debian_version || echo own-root; exec sleep 600",
                mounts=(PodMount("scratch", "/shared"),),
                env={"ROLE": "writer"},
            ),
            PodContainer(
                "reader",
                shell="while [ ! -s data/note ]; do sleep 0.1; done; cat data/note; id -un; exit 3",
                mounts=(PodMount("scratch", "data"),),
            ),
        ),
        kill_grace_seconds=1,
    )
    assert ex.needs_preparation(spec)
    ex.launch_later(spec)
    end = ended(ex, spec.task_id)
    # the reader ended the instance (status 3) once it had read what the image wrote
    assert end.exit_code == 3, end
    assert log(ex, spec.task_id, "reader") == "from-image\nnobody\n"
    assert log(ex, spec.task_id, "writer") == "node-1\n0\nown-root\n"
    assert (
        "pod: container reader exited with status 3"
        in (ex.sandbox(spec.task_id) / "stderr").read_text()
    )
    assert (ex.sandbox(spec.task_id) / "volumes/scratch/note").read_text() == "from-image\n"
    assert not (ex.sandbox(spec.task_id) / "stdout").read_text()  # the executor's own


def test_an_image_container_runs_its_entrypoint_argv_and_health_check(
    ex: Executor, images: PushedImages
) -> None:
    spec = TaskSpec(
        task_id="pod.instance-2",
        containers=(
            # argv after the image's entrypoint (/bin/sh -c)
            PodContainer("appended", image=images.sleeper, argv=("echo $IMAGE; exec sleep 600",)),
            PodContainer(
                "own",
                image=images.busybox,
                argv=("/bin/sleep", "600"),  # argv instead of the entrypoint (/bin/echo)
                override_entrypoint=True,
                health_checked=True,
            ),
        ),
        health_checks=(HealthCheckSpec(CheckProtocol.COMMAND, command="test $IMAGE = busybox"),),
        kill_grace_seconds=0.5,
    )
    ex.launch_later(spec)
    wait_for(lambda: log(ex, spec.task_id, "appended") == "sleeper\n", 60, "the first ran")
    key = pod_container_key(spec.task_id, "own")
    wait_for(lambda: running(ex, key), 30, "the sleeper runs")
    verdict = asyncio.run(probe(spec.health_checks[0], "x", spec, TaskRuntime(ex), None))
    assert verdict == (True, "")  # run inside the image (the host has no $IMAGE)
    assert ex.kill(spec.task_id)
    ended(ex, spec.task_id)
    assert runc_list(ex) == []
    assert not os.path.exists(ex.containers.bundle(key))


def test_a_killed_instance_stops_its_image_containers(ex: Executor, images: PushedImages) -> None:
    spec = TaskSpec(
        task_id="pod.instance-3",
        containers=(
            PodContainer("a", image=images.busybox, shell="exec sleep 600"),
            PodContainer("b", shell="exec sleep 600"),
        ),
        kill_grace_seconds=0.5,
    )
    ex.launch_later(spec)
    key = pod_container_key(spec.task_id, "a")
    wait_for(lambda: key in runc_list(ex), 60, "the container runs")
    assert ex.kill(spec.task_id)
    end = ended(ex, spec.task_id)
    assert end.exit_code is not None or end.signal is not None
    assert runc_list(ex) == []


def test_a_missing_image_fails_the_launch_and_leaves_nothing(
    ex: Executor, images: PushedImages
) -> None:
    missing = images.busybox.rsplit(":", 1)[0] + ":nope"
    spec = TaskSpec(
        task_id="pod.instance-4",
        containers=(
            PodContainer("ok", image=images.busybox, shell="sleep 600"),
            PodContainer("bad", image=missing, shell="sleep 600"),
        ),
    )
    ex.launch_later(spec)
    (outcome,) = wait_for(ex.take_launches, 60, "the launch failed")  # type: ignore[misc]
    assert "container bad" in outcome.message, outcome
    assert runc_list(ex) == []
    assert not os.path.exists(ex.containers.bundle(pod_container_key(spec.task_id, "ok")))


def test_a_new_agent_run_adopts_a_pod_with_images_and_sweeps_an_orphan(
    tmp_path: Path, agent_id: str, images: PushedImages
) -> None:
    first = Executor(tmp_path / "sandboxes", agent_id=agent_id, host="node-1")
    kept = TaskSpec(
        task_id="kept.instance-1",
        containers=(PodContainer("c", image=images.busybox, shell="exec sleep 600"),),
    )
    orphan = TaskSpec(
        task_id="orphan.instance-1",
        containers=(PodContainer("c", image=images.busybox, shell="exec sleep 600"),),
    )
    for spec in (kept, orphan):
        first.launch_later(spec)
    keys = [pod_container_key(s.task_id, "c") for s in (kept, orphan)]
    wait_for(lambda: set(keys) <= set(runc_list(first)), 60, "both pods run")
    identity = first.identity(kept.task_id)
    assert identity is not None
    # the agent goes away; a new run adopts the checkpointed pod and sweeps the other
    second = Executor(tmp_path / "sandboxes", agent_id=agent_id, host="node-1", sweep=False)
    try:
        assert second.adopt(kept, identity)
        second.sweep_orphans(keep=frozenset({kept.task_id}))
        assert runc_list(second) == [keys[0]]
        assert os.path.ismount(second.containers.rootfs(keys[0]).mountpoint)
        assert not os.path.exists(second.containers.bundle(keys[1]))
        second.force_kill(kept.task_id)
        (end,) = wait_for(lambda: second.wait(0.2), 30, "killed")  # type: ignore[misc]
        assert end.task_id == kept.task_id
        assert runc_list(second) == []
    finally:
        second.close()
        first.close()  # reaps the processes it started
    assert not [m for m in Path("/proc/mounts").read_text().splitlines() if str(tmp_path) in m]


def test_nothing_is_made_through_a_symlink_in_the_sandbox(ex: Executor, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    spec = TaskSpec(
        task_id="pod.instance-5",
        containers=(PodContainer("c", shell="exec sleep 600", mounts=(PodMount("v", "data"),)),),
    )
    sandbox = ex.sandbox(spec.task_id)
    sandbox.mkdir(parents=True)
    (sandbox / "volumes").symlink_to(outside)  # as an artifact could have unpacked it
    ex.launch_later(spec)
    (outcome,) = wait_for(ex.take_launches, 30, "the launch failed")  # type: ignore[misc]
    assert "volumes/v is a symlink in the sandbox" in outcome.message, outcome
    assert list(outside.iterdir()) == []
