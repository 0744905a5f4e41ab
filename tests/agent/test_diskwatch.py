"""Disk quotas: the measuring schedule, and a real task killed for exceeding its disk."""

from __future__ import annotations

import time

import pytest

from pallet.agent import Executor, Reason, TaskRuntime, TaskState
from pallet.agent.diskwatch import DiskUse, DiskWatch, held_to_quotas, over_quota_message
from pallet.model import PersistentVolume
from pallet.model.clock import FakeClock

from .conftest import make_spec, wait_for
from .test_runtime import run_until


def test_a_task_with_a_quota_is_measured_soon_then_less_often_and_killed_once_over() -> None:
    clock = FakeClock(100.0)
    used = {"q": 0, "free": 10 << 30}
    measured: list[tuple[float, str]] = []
    exceeded: list[tuple[str, str]] = []

    def measure(tid: str) -> int:
        measured.append((clock.now, tid))
        return used[tid]

    watch = DiskWatch(measure, lambda t, m: exceeded.append((t, m)), interval=15.0, clock=clock)
    watch.close()  # driven by hand below: no thread
    watch.watch("q", quota_mib=2)
    watch.watch("free", quota_mib=0)  # no quota: measured for the heartbeat only
    # after 1 s, then 2, 4, 8, 15, 15 ...: times 101, 103, 107, 115, 130, 145
    for _ in range(200):
        clock.now += 0.5
        watch.check_due()
    q_times = [t for t, tid in measured if tid == "q"]
    assert q_times[:6] == [101.0, 103.0, 107.0, 115.0, 130.0, 145.0]
    assert [t for t, tid in measured if tid == "free"][:2] == [115.0, 130.0]
    assert exceeded == []
    used["q"] = (2 << 20) + 1
    for _ in range(40):
        clock.now += 0.5
        watch.check_due()
    assert exceeded == [("q", over_quota_message((2 << 20) + 1, 2))]
    assert "Disk usage 2.0 MiB exceeds the quota of 2 MiB" in exceeded[0][1]


def test_a_task_over_its_disk_is_killed_with_the_reason(executor: Executor) -> None:
    runtime = TaskRuntime(executor)
    try:
        spec = make_spec(
            "filler.1", disk_mib=1, cmd="head -c 3000000 /dev/zero > blob; sync; sleep 60"
        )
        runtime.set_desired([spec])
        seen = run_until(runtime, "filler.1", TaskState.FAILED, timeout=20)
        (end,) = [s for s in seen if s.state is TaskState.FAILED]
        assert end.reason is Reason.CONTAINER_LIMITATION_DISK
        assert end.message.startswith("Disk usage 2.9 MiB exceeds the quota of 1 MiB")
        assert end.signal == 9
    finally:
        runtime.close(timeout=5)


def test_the_watch_thread_stops_on_close() -> None:
    watch = DiskWatch(lambda t: 0, lambda t, m: None, interval=0.05)
    watch.watch("x", 1)
    watch.close()
    assert not watch._thread.is_alive()


def test_a_launch_wakes_the_watch_only_when_its_task_is_due_sooner() -> None:
    measured: list[str] = []
    watch = DiskWatch(lambda t: measured.append(t) or 0, lambda t, m: None, interval=15.0)
    looks = 0
    check_due = watch.check_due

    def counted() -> float:
        nonlocal looks
        looks += 1
        return check_due()

    watch.check_due = counted  # type: ignore[method-assign]
    try:
        watch._wake.set()  # the thread looks once more, now through ``counted``
        wait_for(lambda: looks >= 1, what="the watch's first look")
        for i in range(30):  # no quota: measured in 15 s, later than the thread looks
            watch.watch(f"t{i}", 0)
            time.sleep(0.01)  # launches a little apart, as an agent's are
        time.sleep(0.1)
        assert looks <= 3  # not once per launch (each went over every task)
        watch.watch("quota", 1)  # due in 1 s: sooner, so it wakes the thread
        wait_for(lambda: "quota" in measured, timeout=10.0, what="the task with a quota")
        assert measured == ["quota"]
    finally:
        watch.close()


DATA = PersistentVolume("data", 4, "db#data#s1")
LOGS = PersistentVolume("logs", 2, "db#logs#s1")
MIB = 1 << 20


@pytest.mark.parametrize(
    ("disk", "sandbox", "data", "logs", "over"),
    [
        (0, 50 * MIB, 1 * MIB, 1 * MIB, None),  # no sandbox quota: a big sandbox is fine
        (10, 9 * MIB, 4 * MIB, 2 * MIB, None),  # each part at or under its own quota
        (10, 11 * MIB, 0, 0, "Disk usage 11.0 MiB exceeds the quota of 10 MiB (the app's disk)"),
        (
            10,
            0,
            5 * MIB,
            0,
            "Disk usage 5.0 MiB of persistent volume data exceeds the quota of 4 MiB",
        ),
        (0, 0, 0, 3 * MIB, "persistent volume logs exceeds the quota of 2 MiB"),
        # the sum is within disk + sizes, but one volume is full: still over
        (100, 0, 0, 3 * MIB, "persistent volume logs"),
    ],
)
def test_the_sandbox_and_each_volume_are_held_to_their_own_quota(
    disk: int, sandbox: int, data: int, logs: int, over: str | None
) -> None:
    found = held_to_quotas(disk, sandbox, [(DATA, data), (LOGS, logs)])
    assert found.bytes == sandbox + data + logs
    if over is None:
        assert found.over is None
    else:
        assert found.over is not None and over in found.over


def test_a_measure_that_finds_a_task_over_reports_its_own_reason() -> None:
    clock = FakeClock(0.0)
    exceeded: list[tuple[str, str]] = []
    watch = DiskWatch(
        lambda t: DiskUse(1, "volume full"), lambda t, m: exceeded.append((t, m)), clock=clock
    )
    watch.close()
    watch.watch("v", quota_mib=100)
    clock.now += 2
    watch.check_due()
    assert exceeded == [("v", "volume full")]


def test_a_mount_volume_has_its_disk_whole() -> None:
    # Mesos' MOUNT disk: the filesystem holds the volume, not a quota of its asked size
    mount = PersistentVolume("logs", 4, "db#logs#s1", "mount", "/mnt/ssd2")
    path = PersistentVolume("data", 4, "db#data#s1", "path", "/mnt/ssd1")
    assert held_to_quotas(0, 0, [(mount, 100 << 20)]).over is None
    assert "persistent volume data exceeds the quota of 4 MiB" in str(
        held_to_quotas(0, 0, [(path, 5 << 20)]).over
    )
