"""A throwaway Slurm cluster for the jobs benchmark: Debian's ``slurmctld`` and one
``slurmd`` in a network namespace of their own, tuned for throughput; spawns processes.

Slurm's daemons listen on fixed ports (6817, 6818) and look their addresses up with
``AI_ADDRCONFIG``, which finds nothing on a namespace that has only loopback: the
namespace gets a veth pair with a private address too. The configuration is the tuned
one of the issue: no scheduling delays (``batch_sched_delay=0,sched_min_interval=0``),
256 CPUs on paper (``config_overrides``) so 256 one-CPU jobs run at once, no
accounting, no cgroups (``proctrack/pgid``, ``task/none``), no authentication inside
the namespace (``auth/none``). Clients run in the namespace through ``nsenter --net``
(not ``ip netns exec``, which would remount /sys and hide the cgroup tree).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["POLL_SECONDS", "SlurmLab", "SlurmUnavailable", "slurm_missing"]

_FINAL = frozenset(
    {
        "COMPLETED",
        "FAILED",
        "CANCELLED",
        "TIMEOUT",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "BOOT_FAIL",
        "DEADLINE",
        "PREEMPTED",
    }
)
_CPUS = 256
POLL_SECONDS = 0.5
"""How often the benchmark asks whether all jobs finished (Slurm and Pallet alike)."""


class SlurmUnavailable(RuntimeError):
    """Slurm could not be started here; the message says why."""


def slurm_missing() -> str | None:
    """Why Slurm cannot run on this machine, or None."""
    for tool in ("slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "unshare", "nsenter", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian: apt-get install slurm-wlm iproute2)"
    if os.geteuid() != 0:
        return "a network namespace for Slurm needs root"
    return None


def _config(root: Path) -> str:
    return f"""ClusterName=pallet-bench
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/none
CredType=cred/none
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
SchedulerType=sched/builtin
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
MinJobAge=600
MaxJobCount=100000
NodeName=bench NodeHostname=localhost NodeAddr=127.0.0.1 CPUs={_CPUS} RealMemory=65536 State=UNKNOWN
PartitionName=batch Nodes=bench Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
"""


def _seconds(stamp: str) -> float:
    """Slurm's local ``2026-12-07T02:50:39`` as seconds (only differences are used)."""
    return time.mktime(time.strptime(stamp.strip(), "%Y-%m-%dT%H:%M:%S"))


class SlurmLab:
    """``with SlurmLab() as slurm: slurm.run_jobs(1000)``; everything it started is
    stopped on exit, whatever happened."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="pallet-bench-slurm-")
        self.root = Path(self._dir.name)
        self._procs: list[subprocess.Popen[bytes]] = []
        self._holder: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> SlurmLab:
        why = slurm_missing()
        if why is not None:
            self._dir.cleanup()
            raise SlurmUnavailable(why)
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for p in reversed(self._procs):
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
        for p in reversed(self._procs):
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if self._holder is not None:
            self._holder.kill()
            self._holder.wait()
        self._dir.cleanup()

    def _ns(self) -> list[str]:
        assert self._holder is not None
        return ["nsenter", f"--net=/proc/{self._holder.pid}/ns/net"]

    def _env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.root / "slurm.conf")}

    def _run(self, *argv: str, timeout: float = 60) -> str:
        done = subprocess.run(
            [*self._ns(), *argv],
            capture_output=True,
            text=True,
            env=self._env(),
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise SlurmUnavailable(
                f"{argv[0]} failed: {(done.stderr or done.stdout).strip()[:300]}"
            )
        return done.stdout

    def _start(self) -> None:
        for d in ("state", "spool"):
            (self.root / d).mkdir()
        (self.root / "slurm.conf").write_text(_config(self.root))
        self._holder = subprocess.Popen(["unshare", "--net", "sleep", "infinity"])
        time.sleep(0.1)
        try:
            self._run("ip", "link", "set", "lo", "up")
            self._run("ip", "link", "add", "slurm0", "type", "veth", "peer", "name", "slurm1")
            self._run("ip", "addr", "add", "10.254.0.1/24", "dev", "slurm0")
            self._run("ip", "link", "set", "slurm0", "up")
            self._run("ip", "link", "set", "slurm1", "up")
        except SlurmUnavailable as exc:
            raise SlurmUnavailable(f"no network namespace for Slurm: {exc}") from None
        conf = str(self.root / "slurm.conf")
        for argv in (["slurmctld", "-D", "-f", conf], ["slurmd", "-D", "-N", "bench", "-f", conf]):
            log = open(self.root / f"{argv[0]}.out", "wb")  # noqa: SIM115 - the child keeps it
            self._procs.append(
                subprocess.Popen([*self._ns(), *argv], stdout=log, stderr=subprocess.STDOUT)
            )
            log.close()
        deadline = time.monotonic() + 60
        while True:
            for p in self._procs:
                if p.poll() is not None:
                    raise SlurmUnavailable(f"a Slurm daemon exited: {self._log_tail()}")
            with contextlib.suppress(SlurmUnavailable, subprocess.TimeoutExpired):
                if "idle" in self._run("sinfo", "-h", "-o", "%T", timeout=10):
                    return
            if time.monotonic() > deadline:
                raise SlurmUnavailable(f"Slurm's node never became idle: {self._log_tail()}")
            time.sleep(0.2)

    def _log_tail(self) -> str:
        lines = []
        for name in ("slurmctld.out", "slurmd.out"):
            path = self.root / name
            if path.exists():
                lines += path.read_text(errors="replace").splitlines()[-2:]
        return " | ".join(lines)[-400:]

    # ------------------------------------------------------------------ work

    def queue_waits(self) -> list[float]:
        """Seconds each job waited from ``sbatch`` to its start (Slurm keeps whole seconds)."""
        waits = []
        for line in self._run("squeue", "-h", "-t", "all", "-o", "%V %S").splitlines():
            submitted, _, started = line.partition(" ")
            try:
                waits.append(_seconds(started) - _seconds(submitted))
            except ValueError:
                continue  # not started (N/A)
        return waits

    def final_jobs(self) -> int:
        states = self._run("squeue", "-h", "-t", "all", "-o", "%T").split()
        return sum(1 for s in states if s in _FINAL)

    def run_jobs(self, count: int, clients: int = 8, timeout: float = 1800.0) -> float:
        """Seconds from the first ``sbatch`` to all ``count`` jobs of ``true`` (one CPU,
        16 MiB each) finished; submitted by ``clients`` sbatch processes at a time."""
        submit = (
            f"seq {count} | xargs -P {clients} -I{{}} "
            "sbatch -Q --mem=16 -c 1 -o /dev/null -e /dev/null -J b{} --wrap=true"
        )
        start = time.perf_counter()
        self._run("sh", "-c", submit, timeout=timeout)
        while self.final_jobs() < count:
            if time.perf_counter() - start > timeout:
                raise SlurmUnavailable(f"Slurm did not finish {count} jobs in {timeout:.0f} s")
            time.sleep(POLL_SECONDS)
        return time.perf_counter() - start
