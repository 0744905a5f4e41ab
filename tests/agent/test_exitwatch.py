"""The executor's exit watch on real processes: a pidfd reports its process's exit once
registered, a wakeup ends a wait with nothing ready, a removed pidfd is not reported."""

from __future__ import annotations

import os
import subprocess
import time

from pallet.agent.exitwatch import ExitWatch


def test_exits_wakeups_and_removal() -> None:
    watch = ExitWatch()
    quick = subprocess.Popen(["true"])
    slow = subprocess.Popen(["sleep", "30"])
    fds = [os.pidfd_open(quick.pid), os.pidfd_open(slow.pid)]
    try:
        watch.add("quick.1", fds[0])
        watch.add("slow.1", fds[1])
        watch.add("no-pidfd.1", None)  # polled by the executor instead
        assert len(watch) == 2 and watch.watches(fds[0]) and not watch.watches(None)
        deadline = time.monotonic() + 20
        ready: set[str] = set()
        while not ready and time.monotonic() < deadline:
            ready = watch.wait(1.0)
        assert ready == {"quick.1"}  # level-triggered until removed: the caller reaps it
        watch.remove(fds[0])
        watch.wakeup()
        started = time.monotonic()
        assert watch.wait(10.0) == set()
        assert time.monotonic() - started < 5  # the wakeup ended it, not the timeout
        slow.kill()
        slow.wait()
        watch.remove(fds[1])
        assert watch.wait(0.05) == set() and len(watch) == 0
    finally:
        quick.wait()
        slow.kill()
        slow.wait()
        for fd in fds:
            os.close(fd)
        watch.close()
