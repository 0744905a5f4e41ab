"""Tasks with images under Debian's runc, on real processes: what runs (Entrypoint, Cmd,
cmd, args), with which environment, user and working directory; the memory, PIDs and
disk limits; kill; COMMAND health checks inside the container; adoption by a new agent
run; and nothing left behind (mounts, runc state)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from oci import PushedImages
from pallet.agent import Executor, LaunchError, TaskExit, TaskRuntime, TaskSpec
from pallet.agent.checks import probe
from pallet.agent.containers import Containers, container_id
from pallet.agent.images import ImageStore
from pallet.model import CheckProtocol, HealthCheckSpec, PersistentVolume

from .conftest import wait_for

pytestmark = pytest.mark.root


def runc_list(ex: Executor) -> list[str]:
    done = subprocess.run(ex.containers.command("list", "-q"), capture_output=True, text=True)
    return done.stdout.split()


@pytest.fixture
def ex(tmp_path: Path, agent_id: str) -> Iterator[Executor]:
    executor = Executor(tmp_path / "sandboxes", agent_id=agent_id, host="node-1")
    yield executor
    executor.close()
    assert not [m for m in Path("/proc/mounts").read_text().splitlines() if str(tmp_path) in m]
    assert runc_list(executor) == []


def run(ex: Executor, spec: TaskSpec, timeout: float = 30.0) -> TaskExit:
    """Launch ``spec`` (as the runtime does: prepared on a worker) and wait for its end."""
    ex.launch_later(spec)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for outcome in ex.take_launches():
            assert not hasattr(outcome, "message"), outcome
        for end in ex.wait(0.2):
            if end.task_id == spec.task_id:
                return end
    raise AssertionError(f"{spec.task_id} did not end")


def started(ex: Executor, spec: TaskSpec) -> int:
    """Launch ``spec`` and wait until runc says its container runs."""
    ex.launch_later(spec)
    outcomes = wait_for(ex.take_launches, 30, f"{spec.task_id} launched")
    (first,) = outcomes  # type: ignore[misc]
    assert hasattr(first, "pid"), first
    wait_for(lambda: container_id(spec.task_id) in runc_list(ex), 10, "the container runs")
    return int(first.pid)


def out(ex: Executor, task_id: str) -> str:
    return (ex.sandbox(task_id) / "stdout").read_text()


def test_an_image_alone_runs_its_entrypoint_and_cmd(ex: Executor, images: PushedImages) -> None:
    spec = TaskSpec("img.1", container={"type": "DOCKER", "image": images.busybox})
    end = run(ex, spec)
    assert (end.exit_code, end.message) == (0, "Command exited with status 0")
    assert out(ex, "img.1") == "hello from busybox\n"


def test_args_replace_cmd_and_cmd_runs_in_a_shell(ex: Executor, images: PushedImages) -> None:
    image = {"type": "MESOS", "image": images.busybox}
    run(ex, TaskSpec("args.1", container=image, args=("via", "args")))
    assert out(ex, "args.1") == "via args\n"
    run(ex, TaskSpec("cmd.1", container=image, cmd="echo $0 $IMAGE; exit 0"))
    assert out(ex, "cmd.1") == "/bin/sh busybox\n"


def test_environment_user_and_working_directory(ex: Executor, images: PushedImages) -> None:
    script = 'echo "$IMAGE|$GREETING|$MESOS_SANDBOX|$PORT0|$PATH"; pwd; id -u; id -G; hostname'
    spec = TaskSpec(
        "env.1",
        container={"type": "MESOS", "image": images.busybox},
        cmd=script,
        env={"GREETING": "hi", "IMAGE": "overridden by the app"},
        ports=(31005,),
    )
    run(ex, spec)
    lines = out(ex, "env.1").splitlines()
    assert lines[0] == "overridden by the app|hi|/mnt/mesos/sandbox|31005|/bin"
    assert lines[1:] == ["/home", "0", "0", "node-1"]  # WorkingDir; no User: root
    # the image's User (app, with its extra group); the sandbox is the working directory
    shell = {"type": "MESOS", "image": images.shell}
    run(ex, TaskSpec("user.1", container=shell, cmd="pwd; id -u; id -G; touch mine"))
    assert out(ex, "user.1").split() == ["/mnt/mesos/sandbox", "1000", "1000", "1500"]
    assert (ex.sandbox("user.1") / "mine").stat().st_uid == 1000  # the sandbox is the user's
    # the app's user wins over the image's; DOCKER without WorkingDir starts in /
    docker = {"type": "DOCKER", "image": images.shell}
    run(ex, TaskSpec("root.1", user="root", container=docker, cmd="pwd; id -u"))
    assert out(ex, "root.1").split() == ["/", "0"]


def test_whiteouts_and_private_roots(ex: Executor, images: PushedImages) -> None:
    image = {"type": "MESOS", "image": images.shell}
    script = "ls /opt /var/old; echo x > /opt/keep"
    run(ex, TaskSpec("a.1", container=image, user="root", cmd=script))
    assert out(ex, "a.1").split() == ["/opt:", "keep", "/var/old:", "b"]
    run(ex, TaskSpec("b.1", container=image, cmd="cat /opt/keep"))
    assert out(ex, "b.1") == "kept\n"  # what a.1 wrote stayed in a.1's own upper dir


def test_an_unknown_user_or_image_fails_the_launch_with_why(
    ex: Executor, images: PushedImages
) -> None:
    with pytest.raises(
        LaunchError, match=f"user 'ghost' does not exist in the image {images.busybox}"
    ):
        ex.launch(
            TaskSpec("ghost.1", user="ghost", container={"image": images.busybox}, cmd="true")
        )
    with pytest.raises(LaunchError, match="manifest unknown"):
        ex.launch(TaskSpec("none.1", container={"image": images.busybox + "-nope"}))
    assert ex.running() == set()


def test_memory_limit_kills_with_oom(ex: Executor, images: PushedImages) -> None:
    spec = TaskSpec(
        "oom.1",
        mem_mib=32,
        container={"image": images.busybox},
        cmd="dd if=/dev/zero of=/dev/null bs=100M count=1",
    )
    end = run(ex, spec)
    assert end.oom and end.message.startswith("Memory limit exceeded")


FORKS = "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do sleep 1 & done; wait"


def test_the_pids_limit_holds(
    ex: Executor, tmp_path: Path, agent_id: str, images: PushedImages
) -> None:
    # twenty processes are fine under the default limit ...
    end = run(ex, TaskSpec("forks.1", container={"image": images.busybox}, cmd=FORKS))
    assert end.exit_code == 0, end.message
    # ... and too many under a limit of 16
    limited = Executor(tmp_path / "limited", agent_id=agent_id + "-l")
    limited._containers = Containers(
        tmp_path / "limited-containers",
        ImageStore(tmp_path / "limited-images"),
        agent_id=agent_id + "-l",
        isolator=limited.isolator,
        hostname="n",
        pids_limit=16,
    )
    try:
        end = run(limited, TaskSpec("forks.2", container={"image": images.busybox}, cmd=FORKS))
        assert end.exit_code == 2
        assert "can't fork" in end.message
    finally:
        limited.close()


def test_kill_reaches_the_container_and_sigkill_follows(ex: Executor, images: PushedImages) -> None:
    spec = TaskSpec(
        "stubborn.1",
        container={"image": images.busybox},
        cmd="trap '' TERM; echo trapped; sleep 600",
    )
    started(ex, spec)
    # a SIGTERM before the shell has set its trap would end it: kill once it is set
    wait_for(lambda: out(ex, "stubborn.1") == "trapped\n", 30, "the trap is set")
    assert ex.kill("stubborn.1")
    time.sleep(0.5)
    assert "stubborn.1" in ex.running()
    ex.force_kill("stubborn.1")
    (end,) = wait_for(lambda: ex.wait(0.2), 10, "killed")  # type: ignore[misc]
    assert (end.exit_code, end.signal) == (None, signal.SIGKILL)
    assert end.message == "Command terminated by signal SIGKILL"


def test_disk_quota_counts_what_the_container_writes_to_its_root(
    ex: Executor, images: PushedImages
) -> None:
    spec = TaskSpec(
        "fill.1",
        disk_mib=1,
        container={"image": images.busybox},
        cmd="dd if=/dev/zero of=/big bs=1M count=3 2>/dev/null; sync; sleep 60",
    )
    end = run(ex, spec)
    assert end.limitation == "disk" and end.message.startswith("Disk usage 3.0 MiB")


def test_command_health_checks_run_inside_the_container(ex: Executor, images: PushedImages) -> None:
    spec = TaskSpec("checked.1", container={"image": images.busybox}, cmd="sleep 600")
    started(ex, spec)
    runtime = TaskRuntime(ex)
    ok_check = HealthCheckSpec(
        CheckProtocol.COMMAND, command="test -d /mnt/mesos/sandbox && test $IMAGE = busybox"
    )
    bad_check = HealthCheckSpec(CheckProtocol.COMMAND, command="test -f /etc/debian_version")
    assert asyncio.run(probe(ok_check, "x", spec, runtime, None)) == (True, "")
    verdict, cause = asyncio.run(probe(bad_check, "x", spec, runtime, None))
    assert verdict is False and cause.startswith("command exited with status 1")


def test_a_new_agent_run_adopts_a_running_container(
    tmp_path: Path, agent_id: str, images: PushedImages
) -> None:
    first = Executor(tmp_path / "sandboxes", agent_id=agent_id)
    spec = TaskSpec("kept.1", container={"image": images.busybox}, cmd="sleep 600")
    started(first, spec)
    identity = first.identity("kept.1")
    assert identity is not None
    # the agent goes away, its tasks run on; a new run adopts the container
    second = Executor(tmp_path / "sandboxes", agent_id=agent_id, sweep=False)
    try:
        assert second.adopt(spec, identity)
        second.sweep_orphans(keep=frozenset({"kept.1"}))
        assert os.path.ismount(second.containers.rootfs("kept.1").mountpoint)
        assert container_id("kept.1") in runc_list(second)
        second.force_kill("kept.1")
        (end,) = wait_for(lambda: second.wait(0.2), 10, "killed")  # type: ignore[misc]
        assert end.task_id == "kept.1"
        assert not os.path.ismount(second.containers.rootfs("kept.1").mountpoint)
        assert runc_list(second) == []
    finally:
        second.close()
        first.close()  # reaps the runc process it started (its container is gone)


def test_host_volumes_mount_read_write_or_read_only(
    ex: Executor, images: PushedImages, tmp_path: Path
) -> None:
    shared, conf = tmp_path / "shared", tmp_path / "conf"
    shared.mkdir()
    conf.mkdir()
    (conf / "app.conf").write_text("setting=1\n")
    container = {
        "image": images.busybox,
        "volumes": [
            {"container_path": "/data", "host_path": str(shared), "mode": "RW"},
            {"container_path": "conf", "host_path": str(conf), "mode": "RO"},
        ],
    }
    script = (
        "echo hi > /data/out; cat $MESOS_SANDBOX/conf/app.conf; touch /mnt/mesos/sandbox/conf/x"
    )
    end = run(ex, TaskSpec("vol.1", container=container, cmd=script))
    assert end.exit_code == 1 and "Read-only file system" in end.message
    assert (shared / "out").read_text() == "hi\n"
    assert out(ex, "vol.1") == "setting=1\n"
    assert not (conf / "x").exists()
    missing = {
        "image": images.busybox,
        "volumes": [{"container_path": "/m", "host_path": "/nonexistent-pallet"}],
    }
    with pytest.raises(
        LaunchError, match="volume hostPath /nonexistent-pallet does not exist on this node"
    ):
        ex.launch(TaskSpec("vol.2", container=missing, cmd="true"))


def test_privileged_containers_get_capabilities_and_unmasked_proc(
    ex: Executor, images: PushedImages
) -> None:
    script = "stat -c %F /proc/keys; grep CapEff /proc/self/status"
    run(ex, TaskSpec("plain.1", container={"image": images.busybox}, cmd=script))
    run(ex, TaskSpec("priv.1", container={"image": images.busybox, "privileged": True}, cmd=script))
    plain, priv = out(ex, "plain.1").splitlines(), out(ex, "priv.1").splitlines()
    assert plain[0] == "character special file"  # masked: /dev/null bound over it
    assert priv[0] != plain[0]
    assert int(priv[1].split()[1], 16) > int(plain[1].split()[1], 16)


def test_bridge_networking_forwards_host_ports_to_container_ports(
    tmp_path: Path, agent_id: str, images: PushedImages
) -> None:
    from oci import free_port
    from pallet.agent.bridge import BridgeNetwork

    ex = Executor(tmp_path / "sandboxes", agent_id=agent_id)
    network = BridgeNetwork(tmp_path / "network", agent_id, subnet="10.89.77.0/28")
    ex._containers = Containers(
        tmp_path / "containers",
        ImageStore(tmp_path / "images"),
        agent_id=agent_id,
        isolator=ex.isolator,
        hostname="node-1",
        network=network,
    )
    host_port = free_port()
    container = {
        "image": images.busybox,
        "network": "bridge",
        "port_mappings": [{"container_port": 8080}],
    }
    script = "echo bridged > /tmp/index.html; ip -4 -o addr show eth0 > $MESOS_SANDBOX/ip; exec httpd -f -p 8080 -h /tmp"
    spec = TaskSpec("web.1", container=container, cmd=script, ports=(host_port,))
    try:
        started(ex, spec)
        import httpx

        def served() -> str | None:
            try:
                return httpx.get(f"http://127.0.0.1:{host_port}/index.html", timeout=1).text
            except httpx.HTTPError:
                return None  # the server in the container is not listening yet

        answer = wait_for(served, 20, "the container's server through the host port")
        assert answer == "bridged\n"
        assert "10.89.77.2/28" in (ex.sandbox("web.1") / "ip").read_text()
        assert network.address("web.1") == "10.89.77.2"
        netns = network.netns("web.1")
        ex.force_kill("web.1")
        wait_for(lambda: ex.wait(0.2), 10, "killed")
        assert netns not in subprocess.run(["ip", "netns"], capture_output=True, text=True).stdout
        rules = subprocess.run(
            ["iptables", "-w", "-t", "nat", "-S", network.chain], capture_output=True, text=True
        )
        assert "pallet:web.1" not in rules.stdout
    finally:
        ex.close()
    assert not Path(f"/sys/class/net/{network.bridge}").exists()  # the last task took it away


def test_a_persistent_volume_outlives_its_container(ex: Executor, images: PushedImages) -> None:
    volume = PersistentVolume("data", 8, "db#data#slot1")
    script = 'echo "$(id -u) was here" >> $MESOS_SANDBOX/data/log; cat $MESOS_SANDBOX/data/log'
    for n in (1, 2):
        spec = TaskSpec(
            f"db.{n}",
            user="nobody",
            container={"type": "MESOS", "image": images.busybox},
            cmd=script,
            persistent_volumes=(volume,),
        )
        assert run(ex, spec).exit_code == 0
    uid = os.stat(ex.sandbox_root.parent / "volumes" / volume.id).st_uid
    assert out(ex, "db.2") == f"{uid} was here\n{uid} was here\n"
    assert uid != 0  # made for the task's user


def test_a_path_volume_is_mounted_from_the_operators_disk(
    ex: Executor, images: PushedImages, tmp_path: Path
) -> None:
    disk = tmp_path / "ssd1"
    disk.mkdir()
    ex.stager.volumes.disk_roots = (str(disk),)
    volume = PersistentVolume("data", 8, "db#data#slot1", "path", str(disk))
    spec = TaskSpec(
        "db.1",
        container={"type": "MESOS", "image": images.busybox},
        cmd="echo on-the-ssd > $MESOS_SANDBOX/data/note",
        persistent_volumes=(volume,),
    )
    assert run(ex, spec).exit_code == 0
    assert (disk / "pallet-volumes" / volume.id / "note").read_text() == "on-the-ssd\n"
