"""Real processes: sandbox, environment, exit status, kill, OOM, cgroup placement, usage."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path

import psutil
import pytest

from pallet.agent import Executor, NullIsolator, TaskExit
from pallet.agent.exits import sandbox_bytes
from pallet.agent.measures import DISK_WATCH_INTERVAL

from .conftest import make_spec, own_cgroup_dirs, wait_for


def run_to_end(ex: Executor, timeout: float = 10.0) -> TaskExit:
    """Wait for the one task of ``ex`` to end."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ended = ex.wait(deadline - time.monotonic())
        if ended:
            (end,) = ended
            return end
    raise AssertionError("the task did not end")


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_stdout_and_stderr_land_in_the_sandbox(executor: Executor) -> None:
    spec = make_spec("hello.1", cmd="echo out; echo err >&2; pwd; exit 3")
    executor.launch(spec)
    end = run_to_end(executor)
    sandbox = executor.sandbox("hello.1")
    assert (end.exit_code, end.signal, end.oom) == (3, None, False)
    assert end.message == "Command exited with status 3: err"
    assert (sandbox / "stdout").read_text() == f"out\n{sandbox}\n"
    assert (sandbox / "stderr").read_text() == "err\n"
    assert executor.running() == set()


def test_the_environment_reaches_the_process(executor: Executor) -> None:
    spec = make_spec(
        "env.1",
        app_id="/shop/web",
        cmd='echo "$PORT0 $PORT $PORTS $PORT_HTTP $HOST $MESOS_TASK_ID $PALLET_NODE_ID"; '
        'echo "$MESOS_SANDBOX"; echo "$GREETING"; read line; echo "stdin:$line"',
        ports=(31000, 31001),
        port_names=("http",),
        env={"GREETING": "hello world"},
    )
    executor.launch(spec)
    assert run_to_end(executor).exit_code == 0
    lines = (executor.sandbox("env.1") / "stdout").read_text().splitlines()
    assert lines == [
        "31000 31000 31000,31001 31000 host-1 env.1 node-1",
        str(executor.sandbox("env.1")),
        "hello world",
        "stdin:",  # stdin is /dev/null, not the agent's
    ]


def test_args_run_without_a_shell(executor: Executor) -> None:
    executor.launch(make_spec("args.1", args=("printf", "%s|", "a b", "$HOME")))
    assert run_to_end(executor).exit_code == 0
    assert (executor.sandbox("args.1") / "stdout").read_text() == "a b|$HOME|"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"cmd": "nosuchcmd --flag"}, "/bin/sh: 1: nosuchcmd: not found"),
        ({"args": ("nosuchcmd", "--flag")}, "exec: nosuchcmd: not found"),
    ],
)
def test_a_missing_command_fails_fast_and_says_why(
    executor: Executor, fields: dict[str, object], expected: str
) -> None:
    started = time.monotonic()
    executor.launch(make_spec("missing.1", **fields))
    end = run_to_end(executor, timeout=5.0)
    assert time.monotonic() - started < 5.0
    assert end.exit_code == 127
    assert expected in end.message
    assert expected in (executor.sandbox("missing.1") / "stderr").read_text()


def test_kill_terminates_the_whole_process_group(executor: Executor) -> None:
    executor.launch(make_spec("group.1", cmd="sleep 60 & echo $! > child; echo up; wait"))
    child_file = executor.sandbox("group.1") / "child"
    child = int(str(wait_for(lambda: child_file.exists() and child_file.read_text().strip())))
    assert alive(child)
    assert executor.kill("group.1")
    end = run_to_end(executor)
    assert end.signal == signal.SIGTERM and end.exit_code is None
    assert end.message == "Command terminated by signal SIGTERM"
    wait_for(lambda: not alive(child), 5.0, "the background child to die")


def test_force_kill_of_a_task_that_ignores_sigterm(executor: Executor) -> None:
    executor.launch(make_spec("stubborn.1", cmd="trap '' TERM; echo ready; sleep 60"))
    stdout = executor.sandbox("stubborn.1") / "stdout"
    wait_for(lambda: stdout.read_text() == "ready\n")
    executor.kill("stubborn.1")
    assert executor.wait(0.3) == []  # SIGTERM is ignored
    executor.force_kill("stubborn.1")
    end = run_to_end(executor)
    assert end.signal == signal.SIGKILL
    assert not executor.kill("stubborn.1")  # gone: nothing to signal


def test_wait_times_out_and_usage_is_read_on_demand(executor: Executor) -> None:
    burn = (
        "import time; block = bytearray(40 << 20); block[::4096] = b'x' * len(block[::4096]); "
        "end = time.process_time() + 0.3\n"
        "while time.process_time() < end: pass\n"
        "print('done', flush=True); time.sleep(60)"
    )
    executor.launch(make_spec("usage.1", args=("python3", "-c", burn), mem_mib=256, cpu_milli=1000))
    stdout = executor.sandbox("usage.1") / "stdout"
    assert executor.wait(0.05) == []
    wait_for(lambda: stdout.read_text() == "done\n")
    usage = executor.usage("usage.1")
    assert usage is not None
    assert usage.cpu_seconds >= 0.25
    assert usage.mem_rss_bytes >= 40 << 20
    assert usage.processes >= 1
    sample = executor.sample("usage.1")  # the heartbeat's two numbers, read alone
    assert sample is not None
    assert sample.cpu_seconds >= usage.cpu_seconds
    assert sample.mem_rss_bytes >= 40 << 20
    executor.force_kill("usage.1")
    run_to_end(executor)
    assert executor.usage("usage.1") is None
    assert executor.sample("usage.1") is None


def test_without_cgroups_tasks_still_run_and_the_agent_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="pallet.agent")
    ex = Executor(tmp_path, agent_id="plain", isolator=NullIsolator("not root"))
    try:
        for tid in ("plain.1", "plain.2"):
            ex.launch(make_spec(tid, cmd="echo ok"))
            assert run_to_end(ex).exit_code == 0
            assert (ex.sandbox(tid) / "stdout").read_text() == "ok\n"
    finally:
        ex.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "agent plain: cgroups unavailable (not root): tasks run WITHOUT CPU or memory limits"
    ]


def test_a_task_id_cannot_run_twice_or_escape_the_sandbox_root(executor: Executor) -> None:
    executor.launch(make_spec("once.1", cmd="sleep 60"))
    with pytest.raises(Exception, match="already running"):
        executor.launch(make_spec("once.1", cmd="sleep 60"))
    with pytest.raises(ValueError, match="task id"):
        executor.sandbox("../../etc")


# ---------------------------------------------------------------- root: cgroups


@pytest.mark.root
def test_task_runs_in_its_own_nested_cgroups_which_are_removed(
    limited_executor: Executor, agent_id: str
) -> None:
    ex = limited_executor
    pid = ex.launch(make_spec("cg.1", cmd="sleep 60", cpu_milli=250, mem_mib=64))
    paths = ex.isolator.paths("cg.1")
    own = own_cgroup_dirs()
    for name, path in paths.items():
        assert path == own[name] / "pallet" / agent_id / "cg.1"
        assert str(pid) in (path / "cgroup.procs").read_text().split()
    # /proc/<pid>/cgroup agrees, hierarchy by hierarchy.
    proc_lines = Path(f"/proc/{pid}/cgroup").read_text()
    assert f"/pallet/{agent_id}/cg.1\n" in proc_lines
    if "cpu" in paths:
        assert (paths["cpu"] / "cpu.cfs_quota_us").read_text().strip() == "25000"
        assert (paths["memory"] / "memory.limit_in_bytes").read_text().strip() == str(64 << 20)
    else:
        assert (paths["unified"] / "cpu.max").read_text().strip() == "25000 100000"
        assert (paths["unified"] / "memory.max").read_text().strip() == str(64 << 20)
    ex.kill("cg.1")
    run_to_end(ex)
    assert not any(p.exists() for p in paths.values())


@pytest.mark.root
def test_exceeding_the_memory_limit_is_an_oom_kill(limited_executor: Executor) -> None:
    hog = "b = bytearray(200 << 20); b[::4096] = b'x' * len(b[::4096]); print('survived')"
    limited_executor.launch(
        make_spec("hog.1", cmd=f'python3 -c "{hog}"', mem_mib=64, cpu_milli=1000)
    )
    end = run_to_end(limited_executor, timeout=20.0)
    assert end.oom
    assert end.message == "Memory limit exceeded: the kernel OOM-killed the task (limit 64 MiB)"
    assert "survived" not in (limited_executor.sandbox("hog.1") / "stdout").read_text()


@pytest.mark.root
def test_processes_that_leave_the_session_are_killed_through_the_cgroup(
    limited_executor: Executor,
) -> None:
    # setsid puts the sleeper in a new session and process group: only the cgroup holds it.
    cmd = "setsid sleep 60 & echo $! > escaped; sleep 60"
    limited_executor.launch(make_spec("escape.1", cmd=cmd))
    marker = limited_executor.sandbox("escape.1") / "escaped"
    escaped = int(str(wait_for(lambda: marker.exists() and marker.read_text().strip())))
    wait_for(lambda: alive(escaped) and os.getsid(escaped) == escaped, what="setsid to take effect")
    assert escaped in limited_executor.isolator.pids("escape.1")
    limited_executor.kill("escape.1")
    run_to_end(limited_executor)
    wait_for(lambda: not alive(escaped), 5.0, "the escaped process to die")


@pytest.mark.root
def test_cpu_quota_is_enforced(limited_executor: Executor) -> None:
    # 100 millicpus: 10 ms per 100 ms period, so ~0.1 CPU s per wall second at most. The
    # spin alone would take a whole CPU second unthrottled; Python's own start-up (its CPU
    # time grows on a busy machine) is in the count too, hence the margin below 1.0.
    spin = (
        "import time\nend = time.monotonic() + 1.0\nwhile time.monotonic() < end: pass\n"
        "print('spun', flush=True); time.sleep(60)"
    )
    limited_executor.launch(make_spec("spin.1", args=("python3", "-c", spin), cpu_milli=100))
    stdout = limited_executor.sandbox("spin.1") / "stdout"
    wait_for(lambda: stdout.read_text() == "spun\n")
    usage = limited_executor.usage("spin.1")
    assert usage is not None and 0.02 < usage.cpu_seconds < 0.6
    limited_executor.force_kill("spin.1")
    run_to_end(limited_executor)


@pytest.mark.root
def test_an_oom_kill_of_a_child_ends_the_whole_task(limited_executor: Executor) -> None:
    hog = "b = bytearray(200 << 20); b[::4096] = b'x' * len(b[::4096])"
    cmd = f'python3 -c "{hog}"; echo "shell lives on"; sleep 60'
    limited_executor.launch(make_spec("child-oom.1", cmd=cmd, mem_mib=64, cpu_milli=1000))
    end = run_to_end(limited_executor, timeout=10.0)
    assert end.oom and end.signal == signal.SIGKILL


def test_sandbox_bytes_counts_allocated_blocks_like_du(tmp_path: Path) -> None:
    root = tmp_path / "sandbox"
    (root / "deep" / "er").mkdir(parents=True)
    data = root / "deep" / "er" / "data"
    data.write_bytes(os.urandom(1 << 20))  # 1 MiB of real blocks
    os.link(data, root / "hardlink")  # the same blocks again: counted once
    (root / "outside").symlink_to("/usr")  # not followed
    with open(root / "sparse", "wb") as f:  # 100 MiB long, nothing allocated
        f.truncate(100 << 20)
    used = sandbox_bytes(root)
    assert (1 << 20) <= used < (1 << 20) + (1 << 20) // 2
    assert sandbox_bytes(tmp_path / "gone") == 0


def test_disk_usage_is_measured_at_most_every_watch_interval(executor: Executor) -> None:
    executor.launch(make_spec("disk.1", cmd="head -c 2000000 /dev/urandom > blob; sleep 60"))
    blob = executor.sandbox("disk.1") / "blob"
    wait_for(lambda: blob.exists() and blob.stat().st_size == 2_000_000)
    first = executor.disk_usage("disk.1", now=1000.0)
    assert first >= 2_000_000
    (executor.sandbox("disk.1") / "more").write_bytes(os.urandom(1 << 20))
    assert executor.disk_usage("disk.1", now=1000.0 + DISK_WATCH_INTERVAL / 2) == first
    assert executor.disk_usage("disk.1", now=1000.0 + DISK_WATCH_INTERVAL) >= first + (1 << 20)
    executor.force_kill("disk.1")
    run_to_end(executor)


@pytest.mark.root
def test_close_waits_for_a_task_another_thread_is_tearing_down(
    tmp_path: Path, agent_id: str
) -> None:
    """The agent's step thread may have reaped a task and be removing its cgroups when
    the agent stops: close must wait for it, or the agent's own cgroup stays behind."""
    ex = Executor(tmp_path / "sandboxes", agent_id=agent_id)
    if ex.isolator.kind == "none":
        pytest.skip(f"no cgroups: {ex.isolator.warning}")
    bases = [p.parent for p in ex.isolator.paths("x").values()]
    destroy = ex.isolator.destroy
    tearing = threading.Event()

    def slow_destroy(task_id: str, timeout: float = 5.0) -> None:
        tearing.set()
        time.sleep(0.5)
        destroy(task_id, timeout)

    ex.isolator.destroy = slow_destroy  # type: ignore[method-assign]
    ex.launch(make_spec("torn.1", cmd="sleep 60"))
    ex.force_kill("torn.1")
    step = threading.Thread(target=ex.wait, args=(10.0,))
    step.start()
    assert tearing.wait(10.0)
    assert not ex.running()  # reaped: only the other thread's teardown is left
    ex.close()
    step.join()
    assert not [b for b in bases if b.exists()], "the agent's cgroups were left behind"


def test_a_launch_wakes_the_waiting_thread_only_when_it_must(
    executor: Executor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task with a pidfd among others is watched by the epoll ``wait`` sleeps on: its
    launch does not wake it (each wakeup was a pipe write and read and a pass over
    every task). The first task (the OOM look starts) and one without a pidfd (polled)
    do; and a task launched while another thread waits is still seen to end."""
    woken: list[int] = []
    real = executor.wakeup

    def wakeup() -> None:
        woken.append(1)
        real()

    monkeypatch.setattr(executor, "wakeup", wakeup)
    executor.launch(make_spec("first.1", cmd="sleep 30"))
    assert len(woken) == 1
    executor.launch(make_spec("second.1", cmd="sleep 30"))
    assert len(woken) == 1
    ends: list[TaskExit] = []
    waiter = threading.Thread(target=lambda: ends.extend(executor.wait(10.0)))
    waiter.start()
    time.sleep(0.1)  # blocked in wait before the launch
    executor.launch(make_spec("quick.1", cmd="exit 4"))
    waiter.join(5.0)
    assert [(e.task_id, e.exit_code) for e in ends] == [("quick.1", 4)]
    monkeypatch.setattr("pallet.agent.executor.pidfd_of", lambda pid: None)
    executor.launch(make_spec("polled.1", cmd="sleep 30"))
    assert len(woken) == 2
