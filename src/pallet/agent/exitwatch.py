"""What the executor's ``wait`` sleeps on: one epoll with a wake pipe and the pidfd of
every live task, each registered once; does I/O.

A pidfd polls readable once its process has exited (child or not). Registering each at
launch and removing it at reaping keeps a wakeup cheap: ``wait`` used to build a
selector of every pidfd at each wakeup, and each launch wakes it, which made a batch of
launches quadratic. Thread-safe: the map is guarded by a lock, and the kernel lets one
thread change an epoll while another waits on it.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading

__all__ = ["ExitWatch"]


class ExitWatch:
    """Pidfds by task id, and a way to wake the waiter."""

    def __init__(self) -> None:
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._epoll = select.epoll()
        self._epoll.register(self._wake_r, select.EPOLLIN)
        self._tasks: dict[int, str] = {}
        """pidfd -> task id, for the pidfds in ``_epoll``."""
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """How many pidfds are watched."""
        return len(self._tasks)

    def watches(self, pidfd: int | None) -> bool:
        return pidfd is not None and pidfd in self._tasks

    def add(self, task_id: str, pidfd: int | None) -> None:
        """Watch ``pidfd`` (a task without one is polled by the caller instead)."""
        if pidfd is None:
            return
        with self._lock, contextlib.suppress(OSError):
            self._epoll.register(pidfd, select.EPOLLIN)
            self._tasks[pidfd] = task_id

    def remove(self, pidfd: int | None) -> None:
        """Stop watching ``pidfd``; before it is closed (its number may be reused)."""
        with self._lock:
            if pidfd is not None and self._tasks.pop(pidfd, None) is not None:
                with contextlib.suppress(OSError, ValueError):
                    self._epoll.unregister(pidfd)

    def wakeup(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"x")

    def wait(self, timeout: float | None) -> set[str]:
        """Sleep until a watched process exits, ``wakeup`` is called or ``timeout``
        seconds pass; the task ids whose pidfd is readable."""
        try:
            events = self._epoll.poll(-1 if timeout is None else timeout)
        except ValueError:  # closed meanwhile
            return set()
        with self._lock:
            ready = {t for fd, _ in events if (t := self._tasks.get(fd)) is not None}
        with contextlib.suppress(BlockingIOError, OSError):
            while os.read(self._wake_r, 4096):
                pass
        return ready

    def close(self) -> None:
        self._epoll.close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
