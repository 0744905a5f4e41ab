"""One HAProxy in master-worker mode: check a configuration, load it by a seamless reload,
never restart; spawns and signals the process (I/O).

A new configuration is checked with ``haproxy -c`` first: one that does not validate is
never loaded, the running one stays, and the error is returned. Loading it is a
SIGUSR2 to the master, which starts new workers on the listening sockets the old ones
hand over (``expose-fd listeners``), while old workers finish their connections. The
master's CLI (``show proc``) tells whether the reload took: a new worker, or one more
failed reload (then the previous workers keep serving).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Haproxy", "LoadResult", "haproxy_available"]

_WORKER = re.compile(r"^(\d+)\s+worker\s+(\d+)\s", re.M)
_FAILED = re.compile(r"master\s+\d+\s+\[failed:\s*(\d+)\]")


def haproxy_available() -> bool:
    return shutil.which("haproxy") is not None or Path("/usr/sbin/haproxy").exists()


def _binary() -> str:
    return shutil.which("haproxy") or "/usr/sbin/haproxy"


@dataclass(frozen=True, slots=True)
class LoadResult:
    ok: bool
    error: str = ""
    seconds: float = 0.0


async def _ask(path: Path, command: str, timeout: float = 5.0) -> str:
    reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(path)), timeout)
    try:
        writer.write(command.encode() + b"\n")
        await writer.drain()
        writer.write_eof()  # the master's CLI answers once the command is complete
        return (await asyncio.wait_for(reader.read(), timeout)).decode(errors="replace")
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


class Haproxy:
    """An HAProxy whose configuration, sockets and log live in ``state_dir``."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.loaded = ""
        self.reloads = 0

    @property
    def config_path(self) -> Path:
        return self.state_dir / "haproxy.cfg"

    @property
    def master_socket(self) -> Path:
        return self.state_dir / "master.sock"

    @property
    def admin_socket(self) -> Path:
        return self.state_dir / "admin.sock"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def check(self, text: str) -> str:
        """``haproxy -c`` on ``text``: empty when it validates, else what HAProxy said."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        candidate = self.state_dir / "haproxy.cfg.new"
        candidate.write_text(text)
        proc = await asyncio.create_subprocess_exec(
            _binary(),
            "-c",
            "-f",
            str(candidate),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        if proc.returncode == 0:
            return ""
        lines = [ln for ln in out.decode(errors="replace").splitlines() if "ALERT" in ln]
        return " | ".join(lines) or out.decode(errors="replace").strip() or "invalid configuration"

    async def load(self, text: str, timeout: float = 15.0) -> LoadResult:
        """Check ``text`` and make it the running configuration (start or seamless reload)."""
        start = time.monotonic()
        if text == self.loaded and self.running:
            return LoadResult(True)
        error = await self.check(text)
        if error:
            return LoadResult(False, f"haproxy -c refused the configuration: {error}")
        previous = self.config_path.read_text() if self.config_path.exists() else None
        os.replace(self.state_dir / "haproxy.cfg.new", self.config_path)
        if not self.running:
            result = await self._start(timeout)
        else:
            result = await self._reload(timeout)
        if result.ok:
            self.loaded = text
        elif previous is not None:
            self.config_path.write_text(previous)  # the running config stays the one on disk
        return LoadResult(result.ok, result.error, time.monotonic() - start)

    async def _start(self, timeout: float) -> LoadResult:
        with contextlib.suppress(FileNotFoundError):
            self.master_socket.unlink()
        with open(self.state_dir / "haproxy.log", "ab") as log:
            self.process = subprocess.Popen(
                [
                    _binary(),
                    "-W",
                    "-db",
                    "-f",
                    str(self.config_path),
                    "-S",
                    f"{self.master_socket},mode,600",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return LoadResult(
                    False, f"haproxy exited with {self.process.returncode}: {self._log_tail()}"
                )
            with contextlib.suppress(OSError, TimeoutError):
                if _WORKER.search(await _ask(self.master_socket, "show proc", 1.0)):
                    return LoadResult(True)
            await asyncio.sleep(0.02)
        return LoadResult(False, "haproxy did not start in time")

    async def _state(self) -> tuple[set[int], int]:
        """The pids of the newest workers and the master's failed-reload count."""
        text = await _ask(self.master_socket, "show proc", 2.0)
        newest = {int(pid) for pid, reloads in _WORKER.findall(text) if reloads == "0"}
        failed = _FAILED.search(text)
        return newest, int(failed.group(1)) if failed else 0

    async def _reload(self, timeout: float) -> LoadResult:
        assert self.process is not None
        before, failed_before = await self._state()
        self.process.send_signal(signal.SIGUSR2)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            with contextlib.suppress(OSError, TimeoutError):
                newest, failed = await self._state()
                if failed > failed_before:
                    return LoadResult(False, f"haproxy could not load it: {self._log_tail()}")
                if newest and not newest & before:
                    self.reloads += 1
                    return LoadResult(True)
        return LoadResult(False, "haproxy did not reload in time")

    def _log_tail(self) -> str:
        try:
            lines = (self.state_dir / "haproxy.log").read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return " | ".join(ln for ln in lines[-5:] if "ALERT" in ln or "exit" in ln)[-500:]

    async def drain(self, servers: set[tuple[str, str]]) -> None:
        """Take servers out of rotation now, through the runtime API (``state maint``: no
        new connection, the open ones finish), before the reload that removes them."""
        if not servers or not self.running:
            return
        commands = ";".join(f"set server {b}/{s} state maint" for b, s in sorted(servers))
        with contextlib.suppress(OSError, TimeoutError):
            await _ask(self.admin_socket, commands, 2.0)

    async def change_servers(
        self, removed: set[tuple[str, str]], added: dict[tuple[str, str], str]
    ) -> str:
        """Remove and add servers through the runtime API, without a reload (a removed
        server goes to maintenance first, so its open connections finish). Empty when
        every command took, else what HAProxy said."""
        commands = []  # new servers first: a backend is never left without one
        for (b, s), args in sorted(added.items()):
            commands += [f"add server {b}/{s} {args}", f"enable server {b}/{s}"]
            if " check" in f" {args}":
                commands.append(f"enable health {b}/{s}")
        for b, s in sorted(removed):
            commands += [f"set server {b}/{s} state maint"]
        if not commands:
            return ""
        try:
            answer = await _ask(self.admin_socket, ";".join(commands), 5.0)
        except (OSError, TimeoutError) as e:
            return str(e) or type(e).__name__
        problems = [
            line
            for line in answer.splitlines()
            if line.strip() and "New server registered" not in line and "Server deleted" not in line
        ]
        for b, s in sorted(removed):  # gone once idle; one still busy stays in maintenance
            with contextlib.suppress(OSError, TimeoutError):
                await _ask(self.admin_socket, f"del server {b}/{s}", 2.0)
        return " | ".join(problems)

    async def stats(self) -> str:
        """``show stat`` of the running workers (CSV)."""
        return await _ask(self.admin_socket, "show stat")

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop the master and its workers (SIGUSR1: soft stop, connections finish)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGUSR1)
        try:
            await asyncio.to_thread(self.process.wait, timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            await asyncio.to_thread(self.process.wait)


def _die_with_parent() -> None:
    """In the child: a SIGTERM when the process that started it dies, so no daemon
    outlives its manager (prctl PR_SET_PDEATHSIG)."""
    import ctypes

    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)
