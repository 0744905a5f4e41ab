"""The agent's probes (``agent.checks.probe``) against real sockets and processes: HTTP
status codes, TCP connects, COMMAND exit status in the task's sandbox and environment."""

from __future__ import annotations

import asyncio
import http.server
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from pallet.agent import Executor, NullIsolator, SendStatus, TaskRuntime
from pallet.agent.checks import HealthMonitor, probe, probe_readiness
from pallet.agent.status import TaskState
from pallet.model import (
    CheckProtocol,
    ContainerSpec,
    HealthCheckSpec,
    ReadinessCheckSpec,
    ReadinessResult,
)

from .conftest import make_spec

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        code = {"/ok": 200, "/moved": 302, "/missing": 404, "/broken": 503}.get(self.path, 500)
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[int]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def runtime(tmp_path: Path) -> TaskRuntime:
    return TaskRuntime(Executor(tmp_path, agent_id="checks", isolator=NullIsolator("test")))


@pytest.mark.parametrize(
    ("path", "verdict"), [("/ok", True), ("/moved", True), ("/missing", False), ("/broken", False)]
)
async def test_http(server: int, runtime: TaskRuntime, path: str, verdict: bool) -> None:
    check = HealthCheckSpec(protocol=CheckProtocol.HTTP, port=server, path=path, timeout=5)
    ok, cause = await probe(check, "127.0.0.1", make_spec(), runtime, None)
    assert ok is verdict
    assert (cause == "") is verdict
    if not verdict:
        assert path in cause and "HTTP " in cause


async def test_tcp(server: int, runtime: TaskRuntime) -> None:
    spec = make_spec()
    up = HealthCheckSpec(protocol=CheckProtocol.TCP, port=server, timeout=5)
    assert await probe(up, "127.0.0.1", spec, runtime, None) == (True, "")
    down = HealthCheckSpec(protocol=CheckProtocol.MESOS_TCP, port=_closed_port(), timeout=5)
    ok, cause = await probe(down, "127.0.0.1", spec, runtime, None)
    assert ok is False and cause
    nothing = HealthCheckSpec(protocol=CheckProtocol.HTTP, port=_closed_port(), timeout=5)
    assert (await probe(nothing, "127.0.0.1", spec, runtime, None))[0] is False


async def test_command_runs_in_the_sandbox_with_the_task_environment(
    runtime: TaskRuntime, tmp_path: Path
) -> None:
    spec = make_spec("t-cmd", env={"WANT": "yes"}, ports=(31005,))
    runtime.executor.sandbox(spec.task_id).mkdir()
    check = HealthCheckSpec(
        protocol=CheckProtocol.COMMAND,
        command='test "$WANT" = yes && test "$PORT0" = 31005 && test "$PWD" = "$MESOS_SANDBOX"',
        timeout=5,
    )
    assert await probe(check, "", spec, runtime, None) == (True, "")
    failing = HealthCheckSpec(protocol=CheckProtocol.COMMAND, command="echo nope >&2; exit 3")
    assert await probe(failing, "", spec, runtime, None) == (
        False,
        "command exited with status 3: nope",
    )


async def test_command_over_its_timeout_fails_and_is_killed(runtime: TaskRuntime) -> None:
    spec = make_spec("t-slow")
    runtime.executor.sandbox(spec.task_id).mkdir()
    check = HealthCheckSpec(protocol=CheckProtocol.COMMAND, command="sleep 30", timeout=0.2)
    ok, cause = await asyncio.wait_for(probe(check, "", spec, runtime, None), 5)
    assert ok is False and "timed out" in cause


async def test_a_check_without_a_port_fails_with_its_reason(runtime: TaskRuntime) -> None:
    ok, cause = await probe(
        HealthCheckSpec(protocol="HTTP"), "127.0.0.1", make_spec(), runtime, None
    )
    assert ok is False and "no host port" in cause


@pytest.mark.root
async def test_command_runs_inside_the_tasks_cgroups(limited_executor: Executor) -> None:
    runtime = TaskRuntime(limited_executor)
    try:
        spec = make_spec("t-in-cg", cmd="sleep 60")
        runtime.set_desired([spec])
        cgroups = limited_executor.isolator.paths(spec.task_id)
        memory = cgroups.get("memory", next(iter(cgroups.values())))
        # The check finds its own shell among the task cgroup's processes.
        check = HealthCheckSpec(
            protocol=CheckProtocol.COMMAND,
            command=f"grep -qx $$ {memory / 'cgroup.procs'}",
            timeout=5,
        )
        assert await probe(check, "", spec, runtime, None) == (True, "")
        limited_executor.isolator.destroy(spec.task_id)  # as when the task has just ended
        ok, cause = await probe(check, "", spec, runtime, None)
        assert ok is None and cause.startswith("not run")
    finally:
        runtime.close(timeout=5.0)


@pytest.mark.parametrize(
    ("path", "codes", "ready"),
    [("/ok", (200,), True), ("/missing", (200,), False), ("/missing", (200, 404), True)],
)
async def test_readiness(server: int, path: str, codes: tuple[int, ...], ready: bool) -> None:
    check = ReadinessCheckSpec(
        name="warm", port=server, path=path, status_codes=codes, preserve_last_response=True
    )
    result = await probe_readiness(check, "127.0.0.1", None)
    assert result.name == "warm" and result.ready is ready
    assert result.last_response is not None
    assert result.last_response.status == (200 if path == "/ok" else 404)
    # nothing listening: not ready, and no response to keep
    down = ReadinessCheckSpec(port=_closed_port(), timeout=2)
    assert await probe_readiness(down, "127.0.0.1", None) == ReadinessResult(
        "readinessCheck", False
    )


async def test_the_monitor_reports_readiness_until_ready(server: int, tmp_path: Path) -> None:
    runtime = TaskRuntime(Executor(tmp_path, agent_id="ready", isolator=NullIsolator("test")))
    try:
        check = ReadinessCheckSpec(name="warm", port=server, path="/ok", interval=0.05)
        spec = make_spec("t-ready", cmd="sleep 60", readiness_checks=(check,))
        runtime.set_desired([spec])
        for _ in range(100):
            runtime.step(0.05)
            if "t-ready" in runtime.health_checked():
                break
        sent: list[SendStatus] = []
        monitor = HealthMonitor(runtime, "127.0.0.1")
        loop = asyncio.create_task(monitor.run(sent.extend))
        for _ in range(100):
            await asyncio.sleep(0.05)
            if sent:
                break
        await asyncio.sleep(0.3)  # more intervals pass: a ready check is not probed again
        loop.cancel()
        (update,) = sent
        assert update.state is TaskState.RUNNING and update.health is None
        assert update.readiness == (ReadinessResult("warm", True),)
    finally:
        runtime.close(timeout=5.0)


def test_where_each_kind_of_check_probes(runtime: TaskRuntime) -> None:
    """Mesos' checks probe 127.0.0.1, but a bridged task's go to the agent's address:
    its host ports are forwarded there only (with `pallet up`'s agents on 127.0.0.2 and
    up, 127.0.0.1 reached nothing and such a task never became healthy). Marathon's
    checks always probe the agent's address."""
    monitor = HealthMonitor(runtime, "127.0.0.2")
    bridged = ContainerSpec("DOCKER", "127.0.0.1:5000/web:1", network="bridge")
    monitor._specs = {
        "host.1": make_spec("host.1"),
        "bridged.1": replace(make_spec("bridged.1"), container=bridged),
    }
    mesos = HealthCheckSpec(protocol=CheckProtocol.MESOS_HTTP, port=31000)
    marathon = HealthCheckSpec(protocol=CheckProtocol.HTTP, port=31000)
    assert monitor._target(mesos, "host.1") == "127.0.0.1"
    assert monitor._target(mesos, "bridged.1") == "127.0.0.2"
    assert monitor._target(marathon, "host.1") == "127.0.0.2"
    assert monitor._target(marathon, "bridged.1") == "127.0.0.2"
