"""Probes the health checks of the agent's running tasks and reports changes; asyncio I/O.

Mesos style: the agent runs every check next to the task (HTTP, TCP and COMMAND alike),
so the master never opens a connection to a task. The timing and counting are the pure
``agent.health``; this module only waits for due probes, runs them and feeds verdicts
back. A change of a task's verdicts becomes a ``HealthChanged`` event of the runtime,
which answers with the status update to send (at-least-once, like any other).

- HTTP/HTTPS: ``GET path`` (redirects not followed, certificates not verified, as
  Marathon does); 2xx/3xx healthy, 1xx no verdict when ``ignoreHttp1xx``.
- TCP: a connection opens within the timeout.
- COMMAND: ``/bin/sh -c value`` exits 0 within the timeout, run in the task's sandbox
  with the task's environment and inside the task's cgroups (as Mesos runs a command
  check in the task's container): what it uses counts against the task's limits, and
  it dies with the task. Like a task, it waits at a gate until it has joined them.

Marathon's protocols probe the agent's hostname (where Marathon would connect); the
``MESOS_*`` ones 127.0.0.1, as the Mesos checker does inside the task's network.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable

import httpx

from pallet.agent.events import HealthChanged, SendStatus
from pallet.agent.executor import gated
from pallet.agent.health import (
    CheckProtocol,
    HealthCheck,
    HealthRecord,
    aggregate,
    begin,
    http_verdict,
    observe,
    reportable,
)
from pallet.agent.isolation import IsolationError
from pallet.agent.runtime import TaskRuntime
from pallet.agent.spec import TaskSpec

__all__ = ["HealthMonitor", "probe"]

log = logging.getLogger(__name__)

_IDLE = 0.25  # how often running tasks are looked at when nothing is due sooner
_CAUSE_LIMIT = 200


class HealthMonitor:
    """One per agent: ``await monitor.run(report)`` until cancelled; ``report`` gets the
    status updates to send."""

    def __init__(
        self,
        runtime: TaskRuntime,
        host: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.runtime = runtime
        self.host = host
        self.clock = clock
        self._records: dict[str, list[HealthRecord]] = {}
        self._specs: dict[str, TaskSpec] = {}
        self._inflight: dict[tuple[str, int], asyncio.Task[None]] = {}
        self._http: httpx.AsyncClient | None = None

    async def run(self, report: Callable[[list[SendStatus]], None]) -> None:
        self._http = httpx.AsyncClient(verify=False, follow_redirects=False)
        try:
            while True:
                self._start_due(report)
                await asyncio.sleep(self._sleep())
        finally:
            for task in self._inflight.values():
                task.cancel()
            await self._http.aclose()

    def _sleep(self) -> float:
        now = self.clock()
        due = [
            r.next_due
            for tid, records in self._records.items()
            for i, r in enumerate(records)
            if (tid, i) not in self._inflight
        ]
        return max(0.01, min([_IDLE, *(d - now for d in due)]))

    def _start_due(self, report: Callable[[list[SendStatus]], None]) -> None:
        now = self.clock()
        running = self.runtime.health_checked()
        for tid in list(self._records):
            if tid not in running:
                del self._records[tid]
                self._specs.pop(tid, None)
        for tid, spec in running.items():
            if tid not in self._records:
                self._records[tid] = [begin(c, now) for c in spec.health_checks]
                self._specs[tid] = spec
            for i, (check, record) in enumerate(
                zip(spec.health_checks, self._records[tid], strict=True)
            ):
                key = (tid, i)
                if key in self._inflight or record.next_due > now:
                    continue
                self._inflight[key] = asyncio.create_task(self._check(tid, i, check, report))

    async def _check(
        self, tid: str, index: int, check: HealthCheck, report: Callable[[list[SendStatus]], None]
    ) -> None:
        try:
            spec = self._specs[tid]
            ok, cause = await probe(check, self._target(check), spec, self.runtime, self._http)
            records = self._records.get(tid)
            if records is None:  # the task ended while it was probed
                return
            before = records[index]
            after = observe(check, before, self.clock(), ok, cause)
            records[index] = after
            if reportable(before, after):
                event = HealthChanged(tid, aggregate(records), tuple(records))
                report(await asyncio.to_thread(self.runtime.handle, event))
        except Exception:
            log.exception("health check %d of task %s failed to run", index, tid)
        finally:
            self._inflight.pop((tid, index), None)

    def _target(self, check: HealthCheck) -> str:
        return "127.0.0.1" if check.protocol.is_mesos else self.host


async def probe(
    check: HealthCheck,
    host: str,
    spec: TaskSpec,
    runtime: TaskRuntime,
    http: httpx.AsyncClient | None,
) -> tuple[bool | None, str]:
    """Run one probe: (verdict, cause of a failure)."""
    if check.problem is not None:
        return False, check.problem
    try:
        if check.protocol is CheckProtocol.COMMAND:
            return await _command(check, spec, runtime)
        if check.protocol.is_tcp:
            return await _tcp(check, host)
        return await _http(check, host, http)
    except TimeoutError:
        return False, f"timed out after {check.timeout:g} s"
    except (OSError, httpx.HTTPError) as e:
        return False, (str(e) or type(e).__name__)[:_CAUSE_LIMIT]


async def _http(
    check: HealthCheck, host: str, client: httpx.AsyncClient | None
) -> tuple[bool | None, str]:
    https = check.protocol in (CheckProtocol.HTTPS, CheckProtocol.MESOS_HTTPS)
    url = f"{'https' if https else 'http'}://{host}:{check.port}{check.path or '/'}"
    if client is None:
        async with httpx.AsyncClient(verify=False) as own:
            return await _http(check, host, own)
    r = await asyncio.wait_for(
        client.get(url, timeout=check.timeout or None), check.timeout or None
    )
    verdict = http_verdict(r.status_code, check.ignore_http1xx)
    return verdict, "" if verdict is not False else f"HTTP {r.status_code} from {url}"


async def _tcp(check: HealthCheck, host: str) -> tuple[bool | None, str]:
    _, writer = await asyncio.wait_for(
        asyncio.open_connection(host, check.port), check.timeout or None
    )
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True, ""


async def _command(
    check: HealthCheck, spec: TaskSpec, runtime: TaskRuntime
) -> tuple[bool | None, str]:
    assert check.command is not None
    executor = runtime.executor
    proc = await asyncio.create_subprocess_exec(
        *gated(["/bin/sh", "-c", check.command]),
        cwd=executor.sandbox(spec.task_id),
        env=executor.environment(spec),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    assert proc.stdin is not None
    try:
        executor.isolator.join(spec.task_id, proc.pid)
    except IsolationError as e:  # the task ended (its cgroups went) meanwhile
        proc.stdin.close()  # the gate sees no "go" and exits
        await proc.wait()
        return None, f"not run: {e}"[:_CAUSE_LIMIT]
    proc.stdin.write(b"go\n")
    proc.stdin.close()
    try:
        _, err = await asyncio.wait_for(proc.communicate(), check.timeout or None)
    except (TimeoutError, asyncio.CancelledError):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            await proc.wait()
        raise
    if proc.returncode == 0:
        return True, ""
    tail = err.decode(errors="replace").strip().splitlines()[-1:] if err else []
    cause = f"command exited with status {proc.returncode}"
    return False, (f"{cause}: {tail[0]}" if tail else cause)[:_CAUSE_LIMIT]
