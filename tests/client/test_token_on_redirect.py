"""A follower master redirects every call to the leader at another port; the token must
reach the leader (httpx drops ``Authorization`` on a redirect to another origin, which made
``pallet up --secure --masters 3`` impossible), but only where the cluster vouches for the
target: an https master checked against the cluster's CA, or loopback to loopback."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pallet.client import AsyncClient, Client
from pallet.client.transport import KeepToken

SEEN: list[tuple[str, str | None]] = []


def _serve(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


class _Leader(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        SEEN.append(("leader", self.headers.get("Authorization")))
        doc = json.dumps({"apps": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(doc)))
        self.end_headers()
        self.wfile.write(doc)


@pytest.fixture
def masters() -> Iterator[tuple[str, str]]:
    """A follower and the leader it redirects to, on two loopback ports."""
    SEEN.clear()
    leader, leader_url = _serve(_Leader)

    class _Follower(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            SEEN.append(("follower", self.headers.get("Authorization")))
            self.send_response(307)
            self.send_header("Location", leader_url + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()

    follower, follower_url = _serve(_Follower)
    try:
        yield follower_url, leader_url
    finally:
        follower.shutdown()
        leader.shutdown()


def test_the_cli_client_takes_its_token_to_the_leader(masters: tuple[str, str]) -> None:
    follower, _ = masters
    with Client(follower, token="t0k") as pallet:
        assert pallet.list_apps() == []
    assert SEEN == [("follower", "token=t0k"), ("leader", "token=t0k")]


def test_the_async_client_takes_its_token_to_the_leader(masters: tuple[str, str]) -> None:
    follower, _ = masters

    async def main() -> list[Any]:
        async with AsyncClient(follower, token="t0k") as pallet:
            return await pallet.list_apps()

    assert asyncio.run(main()) == []
    assert SEEN == [("follower", "token=t0k"), ("leader", "token=t0k")]


@pytest.mark.parametrize(
    ("master", "pinned", "target", "kept"),
    [
        ("http://127.0.0.1:8080", False, ("http", "127.0.0.1"), True),
        ("http://localhost:8080", False, ("http", "::1"), True),
        ("http://127.0.0.1:8080", False, ("http", "203.0.113.7"), False),
        ("https://10.0.0.1:8443", True, ("https", "10.0.0.2"), True),
        ("https://10.0.0.1:8443", True, ("http", "10.0.0.2"), False),
        ("https://10.0.0.1:8443", False, ("https", "evil.example"), False),
        ("http://10.0.0.1:8080", False, ("http", "10.0.0.2"), False),
    ],
)
def test_the_token_follows_only_to_a_master_the_cluster_vouches_for(
    master: str, pinned: bool, target: tuple[str, str], kept: bool
) -> None:
    keep = KeepToken(master, {"Authorization": "token=x"}, pinned=pinned)
    assert keep.trusts(*target) is kept


def test_no_token_no_header() -> None:
    import httpx

    keep = KeepToken("http://127.0.0.1:1", {}, pinned=False)
    request = httpx.Request("GET", "http://127.0.0.1:2/v2/apps")
    keep.on_request(request)
    assert "Authorization" not in request.headers
