"""The edge LB's HAProxy, for real: routing by vhost and path, seamless reloads under
load, a configuration that does not validate never loaded, stats and health check."""

from __future__ import annotations

import asyncio
import http.client
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pallet.discovery import lb_services, services_from_apps
from pallet.discovery.haproxy import EdgeSettings, edge_config
from pallet.lb.haproxy import Haproxy, haproxy_available

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not haproxy_available(), reason="Debian's haproxy is not installed"),
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


class _Named(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"{self.server.name} {self.path}".encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def backends() -> Iterator[list[tuple[str, int]]]:
    servers = []
    for name in ("one", "two", "api"):
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Named)
        server.name = name  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    yield [(s.name, s.server_address[1]) for s in servers]  # type: ignore[attr-defined]
    for s in servers:
        s.shutdown()
        s.server_close()


def _apps(backends: list[tuple[str, int]], cert: str = "") -> list[dict[str, Any]]:
    (_, p1), (_, p2), (_, p3) = backends
    web_labels = {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "web.example.com"}
    if cert:
        web_labels["HAPROXY_0_SSL_CERT"] = cert

    def t(i: int, port: int) -> dict[str, Any]:
        return {"id": f"t{i}", "host": "127.0.0.1", "ports": [port], "state": "TASK_RUNNING"}

    return [
        {
            "id": "/web",
            "labels": web_labels,
            "portDefinitions": [{"port": 0}],
            "tasks": [t(1, p1), t(2, p2)],
        },
        {
            "id": "/api",
            "labels": {
                "HAPROXY_GROUP": "external",
                "HAPROXY_0_VHOST": "web.example.com",
                "HAPROXY_0_PATH": "/api",
            },
            "portDefinitions": [{"port": 0}],
            "tasks": [t(3, p3)],
        },
        {
            "id": "/internal",
            "labels": {"HAPROXY_GROUP": "internal", "HAPROXY_0_VHOST": "web.example.com"},
            "portDefinitions": [{"port": 0}],
            "tasks": [t(4, p3)],
        },
    ]


def _get(port: int, path: str = "/", host: str = "web.example.com") -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers={"Host": host})
        r = conn.getresponse()
        return r.status, r.read().decode()
    finally:
        conn.close()


async def test_edge_lb_routes_reloads_and_refuses_a_bad_config(
    tmp_path: Path, backends: list[tuple[str, int]]
) -> None:
    http_port, stats_port = _free_port(), _free_port()
    lb = Haproxy(tmp_path)

    def config(apps: list[dict[str, Any]], version: int) -> str:
        served = lb_services(services_from_apps(apps), ["external"])
        settings = EdgeSettings(
            bind="127.0.0.1",
            state_dir=str(tmp_path),
            http_port=http_port,
            stats_port=stats_port,
            version=version,
        )
        return edge_config(served, settings)

    try:
        result = await lb.load(config(_apps(backends), 1))
        assert result.ok, result.error
        seen = {(await asyncio.to_thread(_get, http_port))[1].split()[0] for _ in range(6)}
        assert seen == {"one", "two"}  # round robin over both tasks of /web
        await lb.drain({("web_0", "t1")})  # runtime API: out of rotation before any reload
        seen = {(await asyncio.to_thread(_get, http_port))[1].split()[0] for _ in range(6)}
        assert seen == {"two"}
        # Servers in and out at run time, no reload: t1 leaves, t5 (the api server) joins.
        args = f"127.0.0.1:{backends[2][1]} check inter 2s fall 2 rise 1"
        assert await lb.change_servers({("web_0", "t1")}, {("web_0", "t5"): args}) == ""
        seen = {(await asyncio.to_thread(_get, http_port))[1].split()[0] for _ in range(6)}
        assert seen == {"two", "api"} and lb.reloads == 0
        assert await lb.change_servers(set(), {("nope", "x"): args}) != ""  # refused: said
        assert await asyncio.to_thread(_get, http_port, "/api/x") == (200, "api /api/x")
        assert (await asyncio.to_thread(_get, http_port, "/", "other.example.com"))[0] == 503
        assert (await asyncio.to_thread(_get, stats_port, "/_haproxy_health_check"))[0] == 200
        status, stats = await asyncio.to_thread(_get, stats_port, "/haproxy?stats;csv")
        assert status == 200 and "web_0" in stats and "internal_0" not in stats  # group filter

        # Reloads under load: every request answered.
        failures: list[str] = []
        done = threading.Event()
        sent = [0]

        def load() -> None:
            while not done.is_set():
                try:
                    status, _ = _get(http_port)
                    if status != 200:
                        failures.append(str(status))
                except OSError as e:
                    failures.append(repr(e))
                sent[0] += 1

        worker = threading.Thread(target=load)
        worker.start()
        try:
            apps = _apps(backends)
            for version in range(2, 7):
                apps[0]["tasks"] = apps[0]["tasks"][::-1] if version % 2 else apps[0]["tasks"][:1]
                result = await lb.load(config(apps, version))
                assert result.ok, result.error
                await asyncio.sleep(0.2)
        finally:
            done.set()
            worker.join()
        assert sent[0] > 20 and failures == []
        assert lb.reloads == 5

        # A certificate that does not exist: haproxy -c refuses; the running config stays.
        before = (tmp_path / "haproxy.cfg").read_text()
        bad = await lb.load(config(_apps(backends, cert=str(tmp_path / "missing.pem")), 7))
        assert not bad.ok and "haproxy -c refused" in bad.error and "missing.pem" in bad.error
        assert (tmp_path / "haproxy.cfg").read_text() == before
        assert (await asyncio.to_thread(_get, http_port))[0] == 200
        assert lb.reloads == 5
    finally:
        await lb.stop()
    assert lb.process is not None and lb.process.poll() is not None


def test_only_servers_with_a_ready_sibling_leave_before_the_reload() -> None:
    from pallet.lb.service import _drainable

    loaded = {("web", "old1"), ("web", "old2"), ("api", "old3")}
    # web keeps old2 (still ready): old1 goes now; api's only server stays until the
    # reload brings its replacement.
    ready = {("web", "old2"), ("web", "new1"), ("api", "new2")}
    assert _drainable(loaded, ready) == {("web", "old1")}
