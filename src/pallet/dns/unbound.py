"""Debian's ``unbound`` serving Pallet's records, fed at run time; spawns and talks to it (I/O).

unbound answers Pallet's zones (``mesos``, ``pallet``, ``thisdcos.directory``) from
local data declared ``static`` (a name without records is NXDOMAIN) and forwards every
other name to the machine's resolvers. Records change through its control socket
(``local_datas`` / ``local_datas_remove``, the protocol ``unbound-control`` speaks, on
a Unix socket without TLS), one round trip per change and no process spawned. A name
that only gains records is added to; one that loses any is removed and written again.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from pallet.discovery.records import ZONES, RecordTable

__all__ = ["Unbound", "UnboundError", "unbound_available"]

CONTROL_VERSION = 1


class UnboundError(RuntimeError):
    """unbound would not start, or refused a change."""


def unbound_available() -> bool:
    return shutil.which("unbound") is not None or Path("/usr/sbin/unbound").exists()


def _binary() -> str:
    return shutil.which("unbound") or "/usr/sbin/unbound"


def config_text(
    directory: Path, host: str, port: int, upstreams: Sequence[str], threads: int = 1
) -> str:
    lines = [
        "server:",
        f"  interface: {host}@{port}",
        f"  port: {port}",
        "  do-daemonize: no",
        "  use-syslog: no",
        '  logfile: ""',
        '  chroot: ""',
        '  username: ""',
        f'  directory: "{directory}"',
        f'  pidfile: "{directory / "unbound.pid"}"',
        f"  num-threads: {threads}",
        "  so-reuseport: yes",
        "  verbosity: 0",
        '  module-config: "iterator"',
        "  do-not-query-localhost: no",
        "  access-control: 127.0.0.0/8 allow",
        "  access-control: ::1 allow",
        "  val-permissive-mode: yes",
        *(f'  local-zone: "{zone}." static' for zone in ZONES),
        "remote-control:",
        "  control-enable: yes",
        f'  control-interface: "{directory / "control.sock"}"',
        "  control-use-cert: no",
    ]
    if upstreams:
        lines += ["forward-zone:", '  name: "."', *(f"  forward-addr: {u}" for u in upstreams)]
    return "\n".join(lines) + "\n"


class Unbound:
    """One unbound process serving on ``host:port`` with its state under ``directory``."""

    def __init__(
        self,
        directory: Path,
        host: str,
        port: int,
        upstreams: Sequence[str] = (),
        ttl: int = 1,
        threads: int = 1,
    ) -> None:
        self.directory = directory
        self.host = host
        self.port = port
        self.upstreams = list(upstreams)
        self.ttl = ttl
        self.threads = threads
        self.process: subprocess.Popen[bytes] | None = None
        self.table: dict[str, tuple[object, ...]] = {}
        self.updated_at = 0.0

    @property
    def socket_path(self) -> Path:
        return self.directory / "control.sock"

    async def start(self, timeout: float = 10.0) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        conf = self.directory / "unbound.conf"
        conf.write_text(
            config_text(self.directory, self.host, self.port, self.upstreams, self.threads)
        )
        checker = shutil.which("unbound-checkconf")
        check = (
            subprocess.run([checker, str(conf)], capture_output=True, text=True)
            if checker
            else None
        )
        if check is not None and check.returncode != 0:
            raise UnboundError(f"unbound-checkconf: {check.stdout.strip()} {check.stderr.strip()}")
        with open(self.directory / "unbound.log", "ab") as log:
            self.process = subprocess.Popen(
                [_binary(), "-d", "-c", str(conf)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                tail = (self.directory / "unbound.log").read_text(errors="replace")[-500:]
                raise UnboundError(f"unbound exited with {self.process.returncode}: {tail}")
            try:
                await self.control("status")
                return
            except (OSError, UnboundError):
                if time.monotonic() > deadline:
                    raise UnboundError("unbound did not start in time") from None
                await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            await asyncio.to_thread(self.process.wait, 5.0)
        except subprocess.TimeoutExpired:
            self.process.kill()
            await asyncio.to_thread(self.process.wait)

    async def control(self, command: str, lines: Iterable[str] | None = None) -> str:
        """One control command (with data lines for the ``*s`` commands); its output."""
        reader, writer = await asyncio.open_unix_connection(str(self.socket_path))
        try:
            body = f"UBCT{CONTROL_VERSION} {command}\n"
            if lines is not None:
                body += "".join(f"{line}\n" for line in lines) + "\x04\n"
            writer.write(body.encode())
            await writer.drain()
            out = (await reader.read()).decode(errors="replace")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        if out.startswith("error"):
            raise UnboundError(f"unbound-control {command}: {out.strip()}")
        return out

    async def apply(self, table: RecordTable) -> None:
        """Make unbound's local data equal ``table``."""
        old = self.table
        remove: list[str] = []
        add: list[str] = []
        for name, records in table.items():
            before = old.get(name)
            if before == records:
                continue
            if before is not None and not set(before) <= set(records):
                remove.append(name)
                add += [r.zone_line(self.ttl) for r in records]
            else:
                add += [r.zone_line(self.ttl) for r in records if not before or r not in before]
        remove += [name for name in old if name not in table]
        if remove:
            await self.control("local_datas_remove", [f"{n}." for n in remove])
        if add:
            await self.control("local_datas", add)
        self.table = dict(table)
        self.updated_at = time.time()

    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None


def _die_with_parent() -> None:
    """In the child: a SIGTERM when the process that started it dies, so no daemon
    outlives its manager (prctl PR_SET_PDEATHSIG)."""
    import ctypes

    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)
