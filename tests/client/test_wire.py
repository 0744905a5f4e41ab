"""The standard-library sender the CLI's client uses: one kept-alive connection, query
and JSON body as httpx would send them, failures in a user's words; against a real
HTTP server on loopback."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pallet.client import Client, MasterUnreachable
from pallet.client.wire import StdlibSender, TransportFailure

SEEN: list[dict[str, Any]] = []


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        SEEN.append(
            {
                "method": self.command,
                "path": self.path,
                "body": body,
                "type": self.headers.get("Content-Type"),
                "port": self.client_address[1],
            }
        )
        if "/slow" in self.path:
            time.sleep(2)
        doc = json.dumps({"apps": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Marathon-Deployment-Id", "d1")
        self.send_header("Content-Length", str(len(doc)))
        self.end_headers()
        self.wfile.write(doc)

    do_GET = do_POST = do_PUT = _answer


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # The client of the slow request gave up before the answer (that test's point):
        # the answer meets a closed socket. Anything else is still printed.
        if not isinstance(sys.exc_info()[1], BrokenPipeError | ConnectionResetError):
            super().handle_error(request, client_address)


@pytest.fixture
def server() -> Iterator[str]:
    SEEN.clear()
    httpd = _Server(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/prefix"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_requests_share_one_connection_and_carry_query_and_json(server: str) -> None:
    sender = StdlibSender(server, timeout=5)
    try:
        answer = sender.send("GET", "/v2/apps", {"embed": ["a.b", "c d"], "id": "/x"})
        assert answer.status == 200 and json.loads(answer.content) == {"apps": []}
        assert answer.headers.get("marathon-deployment-id") == "d1"  # any case
        sender.send("PUT", "/v2/apps/web", None, {"cpus": 0.5})
    finally:
        sender.close()
    first, second = SEEN
    assert first["path"] == "/prefix/v2/apps?embed=a.b&embed=c+d&id=%2Fx"
    assert (second["method"], second["body"], second["type"]) == (
        "PUT",
        b'{"cpus": 0.5}',
        "application/json",
    )
    assert first["port"] == second["port"]  # kept alive


def test_no_answer_in_time_is_said_so(server: str) -> None:
    sender = StdlibSender(server, timeout=0.5)
    with pytest.raises(TransportFailure, match=r"no answer within 0\.5 s"):
        sender.send("GET", "/slow")


def test_the_client_speaks_through_it(server: str) -> None:
    with Client(server, timeout=5) as client:
        assert client.list_apps() == []
    assert SEEN[0]["path"].startswith("/prefix/v2/apps?embed=apps.counts")


def test_a_refused_connection_is_unreachable() -> None:
    with pytest.raises(MasterUnreachable, match=r"\(GET /ping: connection refused\)"):
        Client("http://127.0.0.1:9", timeout=2).ping()
