"""Hosts with real network separation on one machine: Linux network namespaces joined by veth
pairs to a bridge in a namespace of their own, so every address lives inside the lab and
nothing touches the machine's own network; links cut and healed to make partitions; runs
``ip`` and ``nsenter`` (root only).

```
  ns <lab>-hub:  br0 ── vh0 ═══ veth ═══ eth0 (10.250.0.1)  ns <lab>-h0   (e.g. the master)
                     ├─ vh1 ═══ veth ═══ eth0 (10.250.0.2)  ns <lab>-h1   (an agent)
                     └─ vh2 ═══ veth ═══ eth0 (10.250.0.3)  ns <lab>-h2   ...
```

Processes start in a host with ``nsenter --net=/run/netns/NAME``, which changes only the
network namespace (``ip netns exec`` also remounts /sys, hiding the cgroups an agent needs).
This process reaches a host by entering its namespace on one thread just long enough to open
a socket (``Lab.http``).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

__all__ = ["Host", "Lab", "lab_unavailable"]

_CLONE_NEWNET = 0x40000000
_PR_SET_PDEATHSIG = 1
_SUBNET = "10.250.0"


def lab_unavailable() -> str | None:
    """Why no lab can be built here, or None when one can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "nsenter"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (iproute2, util-linux)"
    return None


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


@dataclass
class Host:
    """One namespace on the lab's bridge."""

    index: int
    netns: str
    address: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def hub_link(self) -> str:
        """The hub side of this host's veth pair: down means cut off."""
        return f"vh{self.index}"


class Lab:
    """``size`` hosts on one bridge; ``with Lab(n) as lab:`` builds it and always removes
    it (processes killed, namespaces deleted), however the block ends."""

    def __init__(self, size: int) -> None:
        self.name = f"pallet-{secrets.token_hex(3)}"
        self.hub = f"{self.name}-hub"
        self.hosts = [Host(i, f"{self.name}-h{i}", f"{_SUBNET}.{i + 1}") for i in range(size)]
        self._made: list[str] = []

    def __enter__(self) -> Lab:
        try:
            self._build()
        except BaseException:
            self.destroy()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    def _build(self) -> None:
        _ip("netns", "add", self.hub)
        self._made.append(self.hub)
        _ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.hub, "link", "set", "br0", "up")
        for host in self.hosts:
            _ip("netns", "add", host.netns)
            self._made.append(host.netns)
            _ip("-n", host.netns, "link", "set", "lo", "up")
            _ip(
                "-n", self.hub, "link", "add", host.hub_link, "type", "veth",
                "peer", "name", "eth0", "netns", host.netns,
            )  # fmt: skip
            _ip("-n", self.hub, "link", "set", host.hub_link, "master", "br0", "up")
            _ip("-n", host.netns, "addr", "add", f"{host.address}/24", "dev", "eth0")
            _ip("-n", host.netns, "link", "set", "eth0", "up")

    def cut(self, host: Host) -> None:
        """Partition ``host`` from every other one (its link to the bridge goes down)."""
        _ip("-n", self.hub, "link", "set", host.hub_link, "down")

    def heal(self, host: Host) -> None:
        _ip("-n", self.hub, "link", "set", host.hub_link, "up")

    def spawn(
        self, host: Host, args: list[str], log: Path, *, death: int = signal.SIGKILL
    ) -> subprocess.Popen[bytes]:
        """Run ``args`` in ``host``'s network namespace; it gets ``death`` if we die."""

        def die_with_parent() -> None:
            with contextlib.suppress(Exception):
                ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, death)

        with open(log, "ab") as out:
            process = subprocess.Popen(
                ["nsenter", f"--net=/run/netns/{host.netns}", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        host.processes.append(process)
        return process

    @contextlib.contextmanager
    def entered(self, host: Host) -> Iterator[None]:
        """This thread in ``host``'s network namespace for the length of the block (other
        threads stay where they are); sockets opened inside keep working outside."""
        libc = ctypes.CDLL(None, use_errno=True)
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{host.netns}", os.O_RDONLY)
        try:
            if libc.setns(target, _CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns into {host.netns} failed")
            try:
                yield
            finally:
                if libc.setns(home, _CLONE_NEWNET) != 0:  # never leave a thread inside
                    raise OSError(ctypes.get_errno(), "setns back home failed")
        finally:
            os.close(target)
            os.close(home)

    def http(
        self, host: Host, method: str, url: str, *, timeout: float = 5.0, **kwargs: object
    ) -> httpx.Response:
        """One HTTP request from inside ``host`` (a new connection each time)."""
        with self.entered(host), httpx.Client(timeout=timeout, trust_env=False) as client:
            return client.request(method, url, **kwargs)  # type: ignore[arg-type]

    def destroy(self) -> None:
        """Kill every process started in the lab and delete its namespaces (idempotent)."""
        for host in self.hosts:
            for process in host.processes:
                if process.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    process.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(10)
        for netns in reversed(self._made):
            with contextlib.suppress(RuntimeError):
                _ip("netns", "del", netns)
        self._made.clear()
