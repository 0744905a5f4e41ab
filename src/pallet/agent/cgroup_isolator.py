"""Per-task cgroups with CPU and memory limits, v2 or v1, and picking one; does I/O.

Task cgroups are nested under the agent's own cgroup, as systemd delegation expects:
``<agent cgroup>/pallet/<agent id>/<task id>`` in every hierarchy used. v2 writes
``cpu.max``/``memory.max``/``pids.max`` and reads ``memory.events`` for OOM kills; v1
writes ``cpu.cfs_quota_us``/``memory.limit_in_bytes``/``pids.max`` in the cpu, memory and
pids hierarchies, reads ``memory.oom_control`` for OOM kills, ``cpuacct`` for CPU time,
and uses the pids hierarchy to find every process of a task (and to cap how many it
has, so a fork bomb stays inside its box). Without writable cgroups the ``NullIsolator``
runs tasks without limits and says why in ``warning``.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import resource
import signal
import threading
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Literal

from pallet.agent.cgroups import Hierarchy, own_hierarchies
from pallet.agent.isolation import (
    DEFAULT_TASK_PIDS_MAX,
    IsolationError,
    Isolator,
    NullIsolator,
    Sample,
    Usage,
)

__all__ = [
    "CFS_PERIOD_US",
    "CgroupV1Isolator",
    "CgroupV2Isolator",
    "detect_isolator",
    "write_device_rules",
]

CFS_PERIOD_US = 100_000
"""CPU bandwidth period: a task with ``cpu_milli`` millicpus may run ``cpu_milli * 100`` µs of it."""
_MIN_QUOTA_US = 1_000  # the kernel refuses a smaller quota
_V1_CONTROLLERS = ("cpu", "cpuacct", "memory", "pids", "devices")
_V2_CONTROLLERS = ("cpu", "memory", "pids")


_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC


def _write(path: Path | str, value: str) -> None:
    """One write to a cgroup file. ``os.open`` rather than ``open``: a Python file
    object costs four more system calls (fstat, ioctl, lseek) per write, and a launch
    makes about a dozen of these writes."""
    try:
        fd = os.open(path, _WRITE_FLAGS, 0o644)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
    except OSError as e:
        raise IsolationError(f"cannot write {value!r} to {path}: {e.strerror}") from e


_READ_FLAGS = os.O_RDONLY | os.O_CLOEXEC


def _read_raw(path: Path | str) -> bytes:
    """A cgroup file's bytes, through ``os.open`` and ``os.read``: a third of what
    ``Path.read_text`` costs here (15 against 45 µs a file), and the heartbeat reads
    files of every running task."""
    fd = os.open(path, _READ_FLAGS)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)


def _read(path: Path | str) -> str:
    return _read_raw(path).decode()


def _read_int(path: Path | str) -> int | None:
    try:
        return int(_read(path).split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _read_keyed(path: Path | str) -> dict[str, int]:
    """A flat-keyed cgroup file (``memory.stat``, ``memory.events``, ``cpu.stat``)."""
    try:
        lines = _read(path).splitlines()
    except OSError:
        return {}
    out = {}
    for line in lines:
        key, _, value = line.partition(" ")
        with contextlib.suppress(ValueError):
            out[key] = int(value)
    return out


def _keyed(data: bytes, key: bytes) -> int | None:
    """The value of the line ``key <n>`` of a flat-keyed cgroup file's bytes (None
    without one), found without splitting the rest: v1's ``memory.stat`` has 40-odd
    lines, and parsing them all was two thirds of what a heartbeat paid per task."""
    at = data.find(key + b" ")
    while at > 0 and data[at - 1] != 0x0A:  # a line's start only
        at = data.find(key + b" ", at + 1)
    if at < 0:
        return None
    end = data.find(b"\n", at)
    try:
        return int(data[at + len(key) + 1 : end if end >= 0 else None])
    except ValueError:
        return None


def _oom_kill_count(data: bytes) -> int:
    """The ``oom_kill`` line of v1's ``memory.oom_control`` or v2's ``memory.events``
    (0 without one; not ``oom_kill_disable``, not ``oom_group_kill``)."""
    return _keyed(data, b"oom_kill") or 0


def _read_bytes(path: str) -> bytes:
    """A cgroup file's bytes (b"" if it cannot be read: the task may be ending)."""
    try:
        return _read_raw(path)
    except OSError:
        return b""


def _subdirs(path: Path) -> list[Path]:
    try:
        return [d for d in path.iterdir() if d.is_dir()]
    except OSError:
        return []


def _read_pids(path: Path | str) -> set[int]:
    try:
        return {int(p) for p in _read(path).split()}
    except (OSError, ValueError):
        return set()


class _CgroupIsolator:
    """What v1 and v2 share: one base directory per hierarchy, a task dir below each.

    ``swept`` names hierarchies whose base exists only to be cleaned: a task is not put
    in them (``paths`` leaves them out), but ``destroy``, ``leftovers`` and ``close``
    still look there, for what an earlier agent run made."""

    kind = "cgroup"

    def __init__(
        self,
        bases: dict[str, Path],
        warning: str | None,
        pids_max: int = DEFAULT_TASK_PIDS_MAX,
        swept: Collection[str] = (),
    ) -> None:
        self._bases = bases
        self._task_bases = {name: base for name, base in bases.items() if name not in swept}
        self.warning = warning
        self.pids_max = pids_max
        """The ``pids.max`` of a task whose app sets none (``--task-pids-max``)."""
        self._base_names = {name: os.fspath(base) for name, base in bases.items()}
        self._task_dirs = functools.lru_cache(maxsize=4096)(self._compute_dirs)
        """A task's paths, built once, as strings: a launch asks for them about ten
        times, and ``pathlib`` joins, hashes and comparisons were much of an agent's
        Python time per launch."""
        self._probed: dict[str, bool] = {}
        """What every new task cgroup is alike in, read from the first one (``_once``)."""
        self._oom_fds: dict[str, int] = {}
        """task id -> its open OOM counter file, read again with ``pread``: every live
        task's counter is read twice a second, and opening and closing the file was
        four fifths of it (16 against 3 µs)."""
        self._oom_lock = threading.Lock()
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        self._oom_fd_cap = 256 if soft == resource.RLIM_INFINITY else max(0, soft // 4)
        """Counter files kept open at most: the rest of the descriptors are the tasks'
        pidfds, pipes and logs (past it a counter is opened for each read, as before)."""

    def _compute_dirs(
        self, task_id: str
    ) -> tuple[dict[str, str], tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        """The task's directory per hierarchy, the distinct ones it is put in, every one
        to clean, and the ``cgroup.procs`` files that join it."""
        bases = self._base_names
        paths = {name: f"{bases[name]}/{task_id}" for name in self._task_bases}
        dirs = tuple(sorted(set(paths.values())))
        every = tuple(sorted({f"{base}/{task_id}" for base in bases.values()}))
        return paths, dirs, every, tuple(f"{d}/cgroup.procs" for d in dirs)

    def paths(self, task_id: str) -> dict[str, Path]:
        return {name: Path(d) for name, d in self._task_dirs(task_id)[0].items()}

    def path_names(self, task_id: str) -> dict[str, str]:
        return dict(self._task_dirs(task_id)[0])

    def _dirs(self, task_id: str) -> tuple[str, ...]:
        return self._task_dirs(task_id)[1]

    def _once(self, key: str, probe: Callable[[], bool]) -> bool:
        """``probe()`` the first time, then what it said: for facts that hold for every
        task cgroup of the agent (a file the kernel offers, a default it sets)."""
        found = self._probed.get(key)
        if found is None:
            found = self._probed[key] = probe()
        return found

    def _procs_dir(self, task_id: str) -> str:
        paths = self._task_dirs(task_id)[0]
        return paths.get("pids") or paths.get("memory") or next(iter(paths.values()))

    def join(self, task_id: str, pid: int) -> None:
        value = str(pid)
        for procs in self._task_dirs(task_id)[3]:
            _write(procs, value)

    def pids(self, task_id: str) -> set[int]:
        return _read_pids(f"{self._procs_dir(task_id)}/cgroup.procs")

    def kill_all(self, task_id: str, sig: int) -> None:
        for pid in self.pids(task_id):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def _make(self, task_id: str) -> None:
        for again in (False, True):
            for d in self._dirs(task_id):
                try:
                    try:
                        os.mkdir(d)
                    except FileNotFoundError:  # the agent's base is gone: made again
                        os.makedirs(d)
                except FileExistsError as e:
                    # Left over from an earlier agent run with the same task id: removed
                    # (with whatever runs in it), then made anew, once.
                    self.destroy(task_id)
                    if again:
                        raise IsolationError(f"cannot create cgroup {d}: {e.strerror}") from e
                    break
                except OSError as e:
                    self.destroy(task_id)
                    raise IsolationError(f"cannot create cgroup {d}: {e.strerror}") from e
            else:
                return

    def _oom_file(self, task_id: str) -> str | None:
        """The file whose ``oom_kill`` line counts the task's OOM kills."""
        raise NotImplementedError

    def oom_kills(self, task_id: str) -> int:
        # Read for every live task every half second (``Executor.wait``).
        with self._oom_lock:
            fd = self._oom_fds.get(task_id)
            held = fd is not None
            if fd is None:
                path = self._oom_file(task_id)
                if path is None:
                    return 0
                try:
                    fd = os.open(path, _READ_FLAGS)
                except OSError:
                    return 0
                held = len(self._oom_fds) < self._oom_fd_cap
                if held:
                    self._oom_fds[task_id] = fd
            try:
                data = os.pread(fd, 4096, 0)
            except OSError:  # the cgroup is gone
                data = b""
                if held:
                    del self._oom_fds[task_id]
                held = False
            finally:
                if not held:
                    os.close(fd)
        return _oom_kill_count(data)

    def _forget_oom_file(self, task_id: str) -> None:
        with self._oom_lock:
            fd = self._oom_fds.pop(task_id, None)
            if fd is not None:
                os.close(fd)

    def destroy(self, task_id: str, timeout: float = 5.0) -> None:
        """SIGKILL whatever is left in the task's cgroups and remove them."""
        self._forget_oom_file(task_id)
        deadline = time.monotonic() + timeout
        while True:
            self.kill_all(task_id, signal.SIGKILL)
            remaining = []
            for d in self._task_dirs(task_id)[2]:
                try:
                    os.rmdir(d)
                except FileNotFoundError:
                    pass
                except OSError as e:
                    if e.errno not in (errno.EBUSY, errno.ENOTEMPTY):
                        raise IsolationError(f"cannot remove cgroup {d}: {e.strerror}") from e
                    remaining.append(d)
            if not remaining:
                return
            if time.monotonic() > deadline:
                raise IsolationError(f"cgroups still busy after {timeout:g}s: {remaining}")
            time.sleep(0.01)  # killed processes need a moment to leave the cgroup

    def leftovers(self) -> set[str]:
        """The task ids of the task cgroups on disk (an earlier run's, after a restart),
        in the swept hierarchies too."""
        return {d.name for base in self._bases.values() for d in _subdirs(base)}

    def sweep(self, keep: Collection[str] = ()) -> list[str]:
        """Destroy the task cgroups an earlier run of this agent left behind (it crashed,
        or was killed), but those of ``keep`` (tasks recovered from their checkpoints);
        return their task ids. Mesos, too, destroys the containers it cannot recover."""
        orphans = sorted(self.leftovers() - set(keep))
        for task_id in orphans:
            self.destroy(task_id)
        return orphans

    def close(self) -> None:
        """Remove the agent's base cgroups (and ``pallet/`` when no other agent uses it)."""
        with self._oom_lock:
            for fd in self._oom_fds.values():
                os.close(fd)
            self._oom_fds.clear()
        for base in sorted(set(self._bases.values())):
            for d in (base, base.parent):
                with contextlib.suppress(OSError):
                    d.rmdir()


def _base_dirs(
    hierarchies: dict[str, Hierarchy], agent_id: str
) -> tuple[dict[str, Path], list[Path], list[str]]:
    """Create ``<own cgroup>/pallet/<agent id>`` in each hierarchy that lets us."""
    bases: dict[str, Path] = {}
    created: list[Path] = []
    problems: list[str] = []
    for name, h in hierarchies.items():
        base = h.directory / "pallet" / agent_id
        try:
            for d in (base.parent, base):
                if not d.is_dir():
                    d.mkdir()
                    created.append(d)
        except OSError as e:
            problems.append(f"{name}: cannot create {base} ({e.strerror})")
            continue
        bases[name] = base
    return bases, created, problems


class CgroupV1Isolator(_CgroupIsolator):
    """cgroup v1: one directory per hierarchy (cpu, cpuacct, memory, pids; devices only
    on an agent with GPUs to hide from the tasks not given them)."""

    kind = "cgroup-v1"

    @classmethod
    def create(
        cls,
        agent_id: str,
        hierarchies: dict[str, Hierarchy],
        pids_max: int = DEFAULT_TASK_PIDS_MAX,
        devices: bool = False,
    ) -> CgroupV1Isolator:
        """``devices``: put each task in a devices cgroup too (its GPU rules go there).
        Without it the devices hierarchy is only swept: a task cgroup there would copy
        the agent's rules and restrict nothing, at the price of a mkdir, a join and an
        rmdir per task."""
        bases, _, problems = _base_dirs(hierarchies, agent_id)
        if not bases:
            raise IsolationError("cgroup v1: " + "; ".join(problems or ["no hierarchy mounted"]))
        for need, what in (("cpu", "CPU"), ("memory", "memory"), ("pids", "process count")):
            if need not in bases:
                problems.append(f"no writable {need} hierarchy: {what} limits are not enforced")
        warning = "cgroup v1: " + "; ".join(problems) if problems else None
        return cls(bases, warning, pids_max, swept=() if devices else ("devices",))

    def prepare(
        self, task_id: str, cpu_milli: int, mem_mib: int, pids_max: int | None = None
    ) -> None:
        self._make(task_id)
        paths = self._task_dirs(task_id)[0]
        try:
            if "pids" in paths:
                _write(f"{paths['pids']}/pids.max", str(pids_max or self.pids_max))
            if "memory" in paths:
                memory = paths["memory"]
                limit = str(mem_mib * 1024 * 1024)
                _write(f"{memory}/memory.limit_in_bytes", limit)
                # Without it, swap would let the task exceed its limit (the file exists
                # when the kernel accounts swap: the same for every task cgroup).
                swap = f"{memory}/memory.memsw.limit_in_bytes"
                if self._once("memsw", lambda: os.path.exists(swap)):
                    _write(swap, limit)
            if "cpu" in paths:
                cpu = paths["cpu"]
                # A new cgroup starts with the kernel's default period, not its parent's:
                # written only if that default is not ours (read from the first task's).
                if not self._once(
                    "period", lambda: _read_int(f"{cpu}/cpu.cfs_period_us") == CFS_PERIOD_US
                ):
                    _write(f"{cpu}/cpu.cfs_period_us", str(CFS_PERIOD_US))
                quota = max(_MIN_QUOTA_US, cpu_milli * CFS_PERIOD_US // 1000)
                _write(f"{cpu}/cpu.cfs_quota_us", str(quota))
                _write(f"{cpu}/cpu.shares", str(max(2, cpu_milli * 1024 // 1000)))
        except IsolationError:
            self.destroy(task_id)
            raise

    def usage(self, task_id: str) -> Usage | None:
        paths = self.paths(task_id)
        cpu_ns = _read_int(paths["cpuacct"] / "cpuacct.usage") if "cpuacct" in paths else None
        if "memory" not in paths:
            return None
        memory = paths["memory"]
        stat = _read_keyed(memory / "memory.stat")
        limit = _read_int(memory / "memory.limit_in_bytes")
        return Usage(
            cpu_seconds=(cpu_ns or 0) / 1e9,
            mem_bytes=_read_int(memory / "memory.usage_in_bytes") or 0,
            mem_rss_bytes=stat.get("total_rss", stat.get("rss", 0)),
            mem_peak_bytes=_read_int(memory / "memory.max_usage_in_bytes"),
            mem_limit_bytes=limit if limit is not None and limit < 1 << 62 else None,
            processes=len(self.pids(task_id)),
        )

    def sample(self, task_id: str) -> Sample | None:
        paths = self._task_dirs(task_id)[0]
        memory = paths.get("memory")
        if memory is None:
            return None
        cpuacct = paths.get("cpuacct")
        cpu_ns = (_read_int(f"{cpuacct}/cpuacct.usage") or 0) if cpuacct is not None else 0
        stat = _read_bytes(f"{memory}/memory.stat")
        rss = _keyed(stat, b"total_rss")
        return Sample(cpu_ns / 1e9, (_keyed(stat, b"rss") or 0) if rss is None else rss)

    def _oom_file(self, task_id: str) -> str | None:
        memory = self._task_dirs(task_id)[0].get("memory")
        return None if memory is None else f"{memory}/memory.oom_control"


class CgroupV2Isolator(_CgroupIsolator):
    """cgroup v2: one directory in the unified tree, controllers enabled down to it."""

    kind = "cgroup-v2"

    @classmethod
    def create(
        cls, agent_id: str, hierarchy: Hierarchy, pids_max: int = DEFAULT_TASK_PIDS_MAX
    ) -> CgroupV2Isolator:
        own = hierarchy.directory
        try:
            available = set((own / "cgroup.controllers").read_text().split())
        except OSError as e:
            raise IsolationError(f"cgroup v2: cannot read {own}/cgroup.controllers") from e
        wanted = [c for c in _V2_CONTROLLERS if c in available]
        if not {"cpu", "memory"} <= set(wanted):
            raise IsolationError(
                f"cgroup v2: {own} lacks the cpu and memory controllers "
                f"(it has: {' '.join(sorted(available)) or 'none'})"
            )
        bases, created, problems = _base_dirs({"unified": hierarchy}, agent_id)
        if not bases:
            raise IsolationError("cgroup v2: " + "; ".join(problems))
        enable = " ".join(f"+{c}" for c in wanted)
        base = bases["unified"]
        try:
            for d in (own, base.parent, base):
                _write(d / "cgroup.subtree_control", enable)
        except IsolationError as e:
            for d in reversed(created):
                with contextlib.suppress(OSError):
                    d.rmdir()
            raise IsolationError(
                f"cgroup v2: {e} (a cgroup that holds processes cannot delegate controllers; "
                "run the agent in a leaf cgroup of its own, e.g. systemd Delegate=yes)"
            ) from e
        warning = None
        if "pids" not in wanted:
            warning = f"cgroup v2: {own} lacks the pids controller: process counts are not limited"
        isolator = cls(bases, warning, pids_max)
        isolator.limits_pids = "pids" in wanted
        return isolator

    limits_pids = False
    """The pids controller is enabled down to the task cgroups."""

    def prepare(
        self, task_id: str, cpu_milli: int, mem_mib: int, pids_max: int | None = None
    ) -> None:
        self._make(task_id)
        d = self._task_dirs(task_id)[0]["unified"]
        try:
            if self.limits_pids:
                _write(f"{d}/pids.max", str(pids_max or self.pids_max))
            quota = max(_MIN_QUOTA_US, cpu_milli * CFS_PERIOD_US // 1000)
            _write(f"{d}/cpu.max", f"{quota} {CFS_PERIOD_US}")
            _write(f"{d}/cpu.weight", str(min(10_000, max(1, cpu_milli // 10))))
            _write(f"{d}/memory.max", str(mem_mib * 1024 * 1024))
            swap = f"{d}/memory.swap.max"
            if self._once("swap", lambda: os.path.exists(swap)):
                _write(swap, "0")
        except IsolationError:
            self.destroy(task_id)
            raise

    def usage(self, task_id: str) -> Usage | None:
        d = self.paths(task_id)["unified"]
        stat = _read_keyed(d / "memory.stat")
        limit = _read_int(d / "memory.max")  # "max" reads as None
        return Usage(
            cpu_seconds=_read_keyed(d / "cpu.stat").get("usage_usec", 0) / 1e6,
            mem_bytes=_read_int(d / "memory.current") or 0,
            mem_rss_bytes=stat.get("anon", 0),
            mem_peak_bytes=_read_int(d / "memory.peak"),
            mem_limit_bytes=limit,
            processes=len(self.pids(task_id)),
        )

    def sample(self, task_id: str) -> Sample | None:
        d = self._task_dirs(task_id)[0]["unified"]
        cpu_usec = _keyed(_read_bytes(f"{d}/cpu.stat"), b"usage_usec") or 0
        return Sample(cpu_usec / 1e6, _keyed(_read_bytes(f"{d}/memory.stat"), b"anon") or 0)

    def _oom_file(self, task_id: str) -> str | None:
        return f"{self._task_dirs(task_id)[0]['unified']}/memory.events"

    def kill_all(self, task_id: str, sig: int) -> None:
        kill_file = self.paths(task_id)["unified"] / "cgroup.kill"
        if sig == signal.SIGKILL and kill_file.exists():
            with contextlib.suppress(IsolationError):
                _write(kill_file, "1")  # atomic: no fork can escape it
                return
        super().kill_all(task_id, sig)


def detect_isolator(
    agent_id: str,
    *,
    prefer: Literal["auto", "v2", "v1", "none"] = "auto",
    proc_self: str | Path = "/proc/self",
    pids_max: int = DEFAULT_TASK_PIDS_MAX,
    devices: bool = False,
) -> Isolator:
    """The best isolator this process can use: cgroup v2 where its cpu and memory
    controllers can be delegated, else v1 hierarchies, else none (with the reasons).
    ``pids_max`` caps the processes of a task whose app sets no ``PALLET_PIDS_MAX``;
    ``devices`` (an agent with GPUs) puts each task in a v1 devices cgroup too."""
    if prefer == "none":
        return NullIsolator("disabled by configuration")
    hierarchies = own_hierarchies(proc_self)
    problems: list[str] = []
    unified = next((h for h in hierarchies if h.version == 2), None)
    if prefer in ("auto", "v2") and unified is not None:
        try:
            return CgroupV2Isolator.create(agent_id, unified, pids_max)
        except IsolationError as e:
            problems.append(str(e))
    if prefer in ("auto", "v1"):
        v1 = {c: h for h in hierarchies if h.version == 1 for c in h.controllers}
        usable = {c: v1[c] for c in _V1_CONTROLLERS if c in v1}
        if usable:
            try:
                return CgroupV1Isolator.create(agent_id, usable, pids_max, devices)
            except IsolationError as e:
                problems.append(str(e))
        else:
            problems.append("cgroup v1: none of cpu, cpuacct, memory, pids is mounted")
    if not hierarchies:
        problems.append(f"no cgroup hierarchy found in {proc_self}/cgroup")
    return NullIsolator("; ".join(problems))


def write_device_rules(directory: Path, deny: Sequence[str]) -> None:
    """Add ``deny`` exceptions (``c 195:3 rwm``) to one task's cgroup v1 ``devices``
    controller, one line per write as the kernel wants."""
    for line in deny:
        _write(directory / "devices.deny", line)
