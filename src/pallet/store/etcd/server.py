"""Running etcd members as child processes (tests, benchmarks, a local HA cluster): free
loopback ports, a data directory of their own, a token no other cluster has, and a check
that every member answering on those ports is one of ours; spawns processes.

``--max-txn-ops`` and ``--max-request-bytes`` are set from ``MAX_TXN_OPS`` and
``ETCD_MAX_REQUEST_BYTES`` so etcd accepts every transaction the store protocol allows
(etcd's defaults, 128 operations and 1.5 MiB, are too small for one master decision).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from pallet.store.errors import StoreError
from pallet.store.txn import ETCD_MAX_REQUEST_BYTES, MAX_TXN_OPS

__all__ = [
    "ETCDCTL_BINARY",
    "ETCD_BINARY",
    "EtcdCluster",
    "EtcdMember",
    "EtcdStartError",
    "Timing",
    "etcd_available",
    "free_ports",
    "running_etcd",
    "spawn_cluster",
    "start_cluster",
    "with_limits",
]

ETCD_BINARY = os.environ.get("PALLET_ETCD", "etcd")
"""The etcd server to run (Debian's ``etcd-server`` installs ``/usr/bin/etcd``)."""
ETCDCTL_BINARY = os.environ.get("PALLET_ETCDCTL", "etcdctl")
"""etcd's command-line client (Debian's ``etcd-client``), for snapshots."""

_PR_SET_PDEATHSIG = 1


class EtcdStartError(StoreError):
    """The etcd members did not come up, or something else answers on their ports."""


@dataclass(frozen=True, slots=True)
class Timing:
    """Raft timing in milliseconds. One member elects itself at once with short timeouts;
    several members on a busy machine keep etcd's defaults so no heartbeat is missed."""

    heartbeat_ms: int = 100
    election_ms: int = 1000

    @classmethod
    def for_size(cls, size: int) -> Timing:
        return cls(10, 100) if size == 1 else cls()


@dataclass
class EtcdMember:
    """One etcd process: its name, URLs, data directory and how to start it again."""

    name: str
    client_url: str
    peer_url: str
    data_dir: Path
    args: list[str]
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """``host:port`` as a store URL lists it."""
        return self.client_url.removeprefix("http://")

    @property
    def log_path(self) -> Path:
        return self.data_dir.with_suffix(".log")

    def start(self) -> None:
        """Start (or start again, on its existing data) this member's process."""
        if self.process is not None and self.process.poll() is None:
            return
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` (SIGKILL: a crash) and wait for the process to end."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop(self) -> None:
        """Stop cleanly (SIGTERM), killing it when it takes more than a few seconds."""
        self.kill(signal.SIGTERM)

    def log_tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


@dataclass
class EtcdCluster:
    """Members started together under one token; ``cluster_id`` once checked."""

    token: str
    members: list[EtcdMember]
    cluster_id: int = 0
    stopped: bool = field(default=False)

    @property
    def url(self) -> str:
        """The store URL: every member, and the cluster id so no other cluster is used."""
        endpoints = ",".join(m.endpoint for m in self.members)
        pinned = f"?cluster_id={self.cluster_id}" if self.cluster_id else ""
        return f"etcd://{endpoints}{pinned}"

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Return once every running member answers a linearizable read as a member of
        this cluster; raise ``EtcdStartError`` if one died or a stranger answers."""
        deadline = time.monotonic() + timeout
        names = {m.name: m.peer_url for m in self.members}
        pending = [m for m in self.members if m.process is not None]
        with httpx.Client(timeout=2.0, trust_env=False) as http:
            while pending:
                member = pending[0]
                assert member.process is not None
                if member.process.poll() is not None:
                    raise EtcdStartError(
                        f"etcd member {member.name} exited with {member.process.returncode}:\n"
                        f"{member.log_tail()}"
                    )
                try:
                    cluster = self._check(http, member, names)
                except httpx.HTTPError:
                    cluster = 0
                if cluster:
                    if self.cluster_id and cluster != self.cluster_id:
                        raise EtcdStartError(
                            f"etcd member {member.name} reports cluster {cluster}, "
                            f"the others {self.cluster_id}"
                        )
                    self.cluster_id = cluster
                    pending.pop(0)
                    continue
                if time.monotonic() > deadline:
                    raise EtcdStartError(
                        f"etcd member {member.name} at {member.client_url} was not ready "
                        f"within {timeout:.0f} s:\n{member.log_tail()}"
                    )
                time.sleep(0.02)

    @staticmethod
    def _check(http: httpx.Client, member: EtcdMember, names: dict[str, str]) -> int:
        """The cluster id ``member`` serves, once it has a leader; 0 while not ready."""
        listing = http.post(f"{member.client_url}/v3/cluster/member/list", json={})
        if listing.status_code != 200:
            return 0
        found = {
            m.get("name", ""): tuple(m.get("peerURLs", ()))
            for m in listing.json().get("members", ())
        }
        if any(name and name not in names for name in found) or any(
            urls and urls != (names[name],) for name, urls in found.items() if name in names
        ):
            raise EtcdStartError(
                f"{member.client_url} is answered by an etcd cluster that is not ours "
                f"(members {sorted(found)}): another etcd holds the port"
            )
        read = http.post(f"{member.client_url}/v3/kv/range", json={"key": "AA=="})
        if read.status_code != 200:
            return 0
        return int(read.json()["header"]["cluster_id"])

    def leader(self) -> int:
        """The index of the member that leads now (asked of the first one that answers)."""
        with httpx.Client(timeout=2.0, trust_env=False) as http:
            ids: dict[int, int] = {}
            leader = 0
            for i, member in enumerate(self.members):
                try:
                    status = http.post(f"{member.client_url}/v3/maintenance/status", json={})
                except httpx.HTTPError:
                    continue
                doc = status.json()
                ids[int(doc["header"]["member_id"])] = i
                leader = leader or int(doc.get("leader", 0))
            if leader not in ids:
                raise EtcdStartError("no etcd member names a leader it can be matched to")
            return ids[leader]

    def stop(self) -> None:
        """Stop every member (idempotent)."""
        for member in self.members:
            member.stop()
        self.stopped = True


def with_limits(args: list[str]) -> list[str]:
    """``args`` of a member started before with the transaction limits of now (a member
    kept by ``pallet up`` keeps its command line across Pallet versions)."""
    kept = [a for a in args if not a.startswith(("--max-txn-ops=", "--max-request-bytes="))]
    limits = [f"--max-txn-ops={MAX_TXN_OPS}", f"--max-request-bytes={ETCD_MAX_REQUEST_BYTES}"]
    return [*kept[:1], *limits, *kept[1:]]


def etcd_available() -> str | None:
    """Why no etcd server can be run here, or None when one can."""
    if shutil.which(ETCD_BINARY) is None:
        return f"no etcd server ({ETCD_BINARY!r}) on PATH: install Debian's etcd-server"
    return None


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports free on ``host`` right now (all held until all are chosen)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind((host, 0))
            sockets.append(s)
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def spawn_cluster(
    data_dir: Path,
    size: int = 1,
    *,
    host: str = "127.0.0.1",
    timing: Timing | None = None,
    client_ports: list[int] | None = None,
    snapshot: Path | None = None,
) -> EtcdCluster:
    """Start ``size`` members under ``data_dir`` without waiting for them (see
    ``EtcdCluster.wait_ready``); on free ports unless ``client_ports`` names them. With
    ``snapshot`` (``etcdctl snapshot save``'s file), each member starts from it: the keys,
    their revisions and the leases it holds, in a new cluster."""
    if size < 1:
        raise EtcdStartError(f"an etcd cluster has at least 1 member, not {size}")
    timing = timing or Timing.for_size(size)
    token = f"pallet-{secrets.token_hex(8)}"
    ports = free_ports(2 * size, host)
    if client_ports is not None:
        if len(client_ports) != size:
            raise EtcdStartError(f"{len(client_ports)} client ports for {size} members")
        ports[::2] = client_ports
    data_dir.mkdir(parents=True, exist_ok=True)
    for i in range(size):
        if (data_dir / f"member-{i}").exists():  # etcd would start that old member instead
            raise EtcdStartError(f"{data_dir / f'member-{i}'} exists: give the cluster a new dir")
    members = []
    for i in range(size):
        name = f"{token}-{i}"
        members.append(
            EtcdMember(
                name,
                f"http://{host}:{ports[2 * i]}",
                f"http://{host}:{ports[2 * i + 1]}",
                data_dir / f"member-{i}",
                [],
            )
        )
    initial = ",".join(f"{m.name}={m.peer_url}" for m in members)
    for m in members:
        m.args = [
            ETCD_BINARY,
            f"--name={m.name}",
            f"--data-dir={m.data_dir}",
            f"--listen-client-urls={m.client_url}",
            f"--advertise-client-urls={m.client_url}",
            f"--listen-peer-urls={m.peer_url}",
            f"--initial-advertise-peer-urls={m.peer_url}",
            f"--initial-cluster={initial}",
            f"--initial-cluster-token={token}",
            "--initial-cluster-state=new",
            f"--max-txn-ops={MAX_TXN_OPS}",
            f"--max-request-bytes={ETCD_MAX_REQUEST_BYTES}",
            f"--heartbeat-interval={timing.heartbeat_ms}",
            f"--election-timeout={timing.election_ms}",
            "--logger=zap",
            "--log-level=warn",
        ]
        if snapshot is not None:
            _restore(snapshot, m, initial, token)
        m.start()
    return EtcdCluster(token, members)


def _restore(snapshot: Path, member: EtcdMember, initial: str, token: str) -> None:
    """``etcdctl snapshot restore`` into ``member``'s (new) data directory."""
    done = subprocess.run(
        [
            ETCDCTL_BINARY,
            "snapshot",
            "restore",
            str(snapshot),
            f"--name={member.name}",
            f"--data-dir={member.data_dir}",
            f"--initial-cluster={initial}",
            f"--initial-cluster-token={token}",
            f"--initial-advertise-peer-urls={member.peer_url}",
        ],
        env={**os.environ, "ETCDCTL_API": "3"},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise EtcdStartError(f"etcdctl snapshot restore {snapshot} failed: {done.stderr.strip()}")


def start_cluster(
    data_dir: Path,
    size: int = 1,
    *,
    host: str = "127.0.0.1",
    timing: Timing | None = None,
    timeout: float = 30.0,
) -> EtcdCluster:
    """Start ``size`` members and wait until they serve as one checked cluster. A port
    taken meanwhile by someone else makes a member fail: start again on other ports."""
    for attempt in range(3):
        cluster = spawn_cluster(data_dir / f"try-{attempt}", size, host=host, timing=timing)
        try:
            cluster.wait_ready(timeout)
            return cluster
        except EtcdStartError as e:
            cluster.stop()
            if attempt == 2 or "exited" not in str(e):
                raise
    raise AssertionError("unreachable")


@contextlib.contextmanager
def running_etcd(data_dir: Path, size: int = 1, **kwargs: object) -> Iterator[EtcdCluster]:
    """``start_cluster`` for the length of a ``with`` block; stopped however it ends."""
    cluster = start_cluster(data_dir, size, **kwargs)  # type: ignore[arg-type]
    try:
        yield cluster
    finally:
        cluster.stop()


def _die_with_parent() -> None:  # in the child: etcd ends when whoever started it does
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
