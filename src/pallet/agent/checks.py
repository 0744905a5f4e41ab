"""Probes the health and readiness checks of the agent's running tasks and reports
changes; asyncio I/O.

Mesos style: the agent runs every check next to the task (HTTP, TCP and COMMAND alike),
so the master never opens a connection to a task. The timing and counting are the pure
``agent.health``; this module only waits for due probes, runs them and feeds verdicts
back. A change of a task's verdicts becomes a ``HealthChanged`` event of the runtime,
which answers with the status update to send (at-least-once, like any other).

- HTTP/HTTPS: ``GET path`` (redirects not followed, certificates not verified, as
  Marathon does); 2xx/3xx healthy, 1xx no verdict when ``ignoreHttp1xx``.
- TCP: a connection opens within the timeout.
- COMMAND: ``/bin/sh -c value`` exits 0 within the timeout, run in the task's sandbox
  as the task's user, with the task's environment and inside the task's cgroups (in a
  container: ``runc exec``, in its namespaces and cgroups, as its user) (as Mesos runs a command
  check in the task's container): what it uses counts against the task's limits, and
  it dies with the task. Like a task, it waits at a gate until it has joined them.

Readiness checks (Marathon's ``readinessChecks``, HTTP/HTTPS only) are probed every
``intervalSeconds`` from the moment the task runs until each has answered one of its
``httpStatusCodesForReady``; the first answer of each and every change of verdict
becomes a ``ReadinessChanged`` event, sent like a health report.

Marathon's protocols probe the agent's hostname (where Marathon would connect); the
``MESOS_*`` ones 127.0.0.1, as the Mesos checker does inside the task's network. A task
on a named container network is probed at its own address (on its container ports).
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

from pallet.agent.events import HealthChanged, ReadinessChanged, SendStatus
from pallet.agent.health import (
    CheckProtocol,
    HealthRecord,
    aggregate,
    begin,
    http_verdict,
    observe,
    readiness_verdict,
    reportable,
)
from pallet.agent.isolation import IsolationError
from pallet.agent.procfs import read_environ
from pallet.agent.runtime import TaskRuntime
from pallet.agent.spawning import gated
from pallet.agent.users import UnknownUser
from pallet.model import HealthCheckSpec, ReadinessCheckSpec, ReadinessResult, TaskSpec

__all__ = ["HealthMonitor", "probe", "probe_readiness"]

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
        self._readiness: dict[str, list[ReadinessResult | None]] = {}
        self._ready_due: dict[str, list[float]] = {}
        self._ready_inflight: dict[tuple[str, int], asyncio.Task[None]] = {}
        self._http: httpx.AsyncClient | None = None

    async def run(self, report: Callable[[list[SendStatus]], None]) -> None:
        self._http = httpx.AsyncClient(verify=False, follow_redirects=False)
        try:
            while True:
                self._start_due(report)
                await asyncio.sleep(self._sleep())
        finally:
            for task in (*self._inflight.values(), *self._ready_inflight.values()):
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
        due += [
            at
            for tid, times in self._ready_due.items()
            for i, at in enumerate(times)
            if (tid, i) not in self._ready_inflight and not self._is_ready(tid, i)
        ]
        return max(0.01, min([_IDLE, *(d - now for d in due)]))

    def _start_due(self, report: Callable[[list[SendStatus]], None]) -> None:
        now = self.clock()
        running = self.runtime.health_checked()
        for tid in list(self._specs):
            if tid not in running:
                self._records.pop(tid, None)
                self._readiness.pop(tid, None)
                self._ready_due.pop(tid, None)
                del self._specs[tid]
        for tid, spec in running.items():
            if tid not in self._specs:
                self._specs[tid] = spec
                self._records[tid] = [begin(c, now) for c in spec.health_checks]
                self._readiness[tid] = [None] * len(spec.readiness_checks)
                self._ready_due[tid] = [now] * len(spec.readiness_checks)
            self._start_readiness(tid, spec, now, report)
            for i, (check, record) in enumerate(
                zip(spec.health_checks, self._records[tid], strict=True)
            ):
                key = (tid, i)
                if key in self._inflight or record.next_due > now:
                    continue
                self._inflight[key] = asyncio.create_task(self._check(tid, i, check, report))

    def _is_ready(self, tid: str, index: int) -> bool:
        results = self._readiness.get(tid)
        result = results[index] if results is not None else None
        return result is not None and result.ready

    def _start_readiness(
        self, tid: str, spec: TaskSpec, now: float, report: Callable[[list[SendStatus]], None]
    ) -> None:
        for i, check in enumerate(spec.readiness_checks):
            key = (tid, i)
            if key in self._ready_inflight or self._is_ready(tid, i):
                continue
            if self._ready_due[tid][i] > now:
                continue
            self._ready_inflight[key] = asyncio.create_task(self._ready(tid, i, check, report))

    async def _ready(
        self,
        tid: str,
        index: int,
        check: ReadinessCheckSpec,
        report: Callable[[list[SendStatus]], None],
    ) -> None:
        try:
            result = await probe_readiness(check, self._address(tid) or self.host, self._http)
            results = self._readiness.get(tid)
            if results is None:  # the task ended while it was probed
                return
            self._ready_due[tid][index] = self.clock() + check.interval
            if results[index] == result:
                return
            results[index] = result
            spec = self._specs[tid]
            shown = tuple(
                r if r is not None else ReadinessResult(c.name, False)
                for c, r in zip(spec.readiness_checks, results, strict=True)
            )
            report(await asyncio.to_thread(self.runtime.handle, ReadinessChanged(tid, shown)))
        except Exception:
            log.exception("readiness check %d of task %s failed to run", index, tid)
        finally:
            self._ready_inflight.pop((tid, index), None)

    async def _check(
        self,
        tid: str,
        index: int,
        check: HealthCheckSpec,
        report: Callable[[list[SendStatus]], None],
    ) -> None:
        try:
            spec = self._specs[tid]
            target = self._target(check, tid)
            ok, cause = await probe(check, target, spec, self.runtime, self._http)
            records = self._records.get(tid)
            if records is None:  # the task ended while it was probed
                return
            before = records[index]
            after = observe(check, before, self.clock(), ok, cause)
            records[index] = after
            if reportable(before, after):
                results = tuple(r.result() for r in records)
                event = HealthChanged(tid, aggregate(records), results)
                report(await asyncio.to_thread(self.runtime.handle, event))
        except Exception:
            log.exception("health check %d of task %s failed to run", index, tid)
        finally:
            self._inflight.pop((tid, index), None)

    def _target(self, check: HealthCheckSpec, tid: str) -> str:
        """Where a probe of ``check`` goes: a task on a container network at its own
        address; a Mesos check (which Mesos runs on the task's host, or inside a bridged
        task's namespace) at 127.0.0.1, but for a bridged task at the agent's address,
        where its host ports lead to its container ports (the agent's forwarding matches
        that address only, when it has one, so 127.0.0.1 would reach nothing); Marathon's
        own checks at the agent's address."""
        address = self._address(tid)
        if address is not None:
            return address
        spec = self._specs.get(tid)
        bridged = (
            spec is not None and spec.container is not None and spec.container.network == "bridge"
        )
        return "127.0.0.1" if check.protocol.is_mesos and not bridged else self.host

    def _address(self, tid: str) -> str | None:
        """The task's own address when it is on a container network: its checks probe
        its container ports there (Marathon probes an IP-per-task app at its address,
        Mesos inside its network namespace)."""
        spec = self._specs.get(tid)
        container = spec.container if spec is not None else None
        if container is None or container.network != "container":
            return None
        found = self.runtime.executor.containers.addresses(tid)
        return found[0] if found else None


async def probe_readiness(
    check: ReadinessCheckSpec, host: str, client: httpx.AsyncClient | None
) -> ReadinessResult:
    """One readiness probe: ``GET path`` on the check's port of the agent's host."""
    if check.port is None:
        return readiness_verdict(check, None)
    scheme = "https" if check.protocol is CheckProtocol.HTTPS else "http"
    url = f"{scheme}://{host}:{check.port}{check.path or '/'}"
    if client is None:
        async with httpx.AsyncClient(verify=False) as own:
            return await probe_readiness(check, host, own)
    try:
        r = await asyncio.wait_for(
            client.get(url, timeout=check.timeout or None), check.timeout or None
        )
    except (TimeoutError, OSError, httpx.HTTPError):
        return readiness_verdict(check, None)
    body = r.text if check.preserve_last_response else ""
    return readiness_verdict(check, r.status_code, r.headers.get("content-type", ""), body)


async def probe(
    check: HealthCheckSpec,
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
    check: HealthCheckSpec, host: str, client: httpx.AsyncClient | None
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


async def _tcp(check: HealthCheckSpec, host: str) -> tuple[bool | None, str]:
    _, writer = await asyncio.wait_for(
        asyncio.open_connection(host, check.port), check.timeout or None
    )
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True, ""


async def _command(
    check: HealthCheckSpec, spec: TaskSpec, runtime: TaskRuntime
) -> tuple[bool | None, str]:
    assert check.command is not None
    executor = runtime.executor
    key = spec.task_id if spec.container is not None and spec.container.image is not None else None
    if spec.containers and check in spec.health_checks:  # a pod's: its container's image?
        same = [i for i, c in enumerate(spec.health_checks) if c is check]
        key = executor.pods.exec_key(spec, same[0] if same else spec.health_checks.index(check))
    if key is not None:
        argv = executor.containers.exec_argv(key, ["/bin/sh", "-c", check.command])
        return await _finish(
            await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            ),
            check,
        )
    try:
        user = executor.user_of(spec)
    except UnknownUser as e:
        return None, f"not run: {e}"[:_CAUSE_LIMIT]
    env = executor.environment(spec)
    if spec.secrets and (pid := executor.pid(spec.task_id)) is not None:
        # The secret variables are only in the task's process (never in its spec): the
        # check gets the environment the task was started with, adopted tasks included.
        env = read_environ(pid) or env
    words, switch = gated(["/bin/sh", "-c", check.command], user)
    proc = await asyncio.create_subprocess_exec(
        *words,
        cwd=executor.sandbox(spec.task_id),
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
        **switch,
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
    return await _finish(proc, check)


async def _finish(
    proc: asyncio.subprocess.Process, check: HealthCheckSpec
) -> tuple[bool | None, str]:
    """Wait for a command check within its timeout; its verdict and cause."""
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
