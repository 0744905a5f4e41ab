"""A follower master sends clients to the leader: ``307 Temporary Redirect`` with the same
path and query (clients resend the method and body, as Marathon's followers proxy them);
``503`` while no leader is elected. Its own state is answered locally only where it
cannot mislead: ``/ping``, ``/v2/info``, ``/v2/leader``, ``/metrics``; does no I/O.

A plain ASGI middleware, not Starlette's ``BaseHTTPMiddleware`` (``app.middleware``),
which wraps every request and response of the leader in extra tasks and streams: on a
leader it costs one attribute read and a set lookup per request.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from pallet.api.context import ApiContext
from pallet.api.http import json_response

__all__ = ["LOCAL", "FollowTheLeader"]

LOCAL = frozenset(
    {("GET", "/ping"), ("GET", "/v2/info"), ("GET", "/v2/leader"), ("GET", "/metrics")}
)
"""What a follower answers itself."""


class FollowTheLeader:
    """Lets a leader's requests through untouched; a follower answers 307 or 503."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ctx: ApiContext = scope["app"].state.pallet
        if ctx.leading or (scope["method"], scope["path"]) in LOCAL:
            await self.app(scope, receive, send)
            return
        leader = ctx.info.leader
        if not leader:
            response = json_response(
                {"message": "no leader is elected yet; try again in a moment"},
                503,
                {"Retry-After": "1"},
            )
        else:
            url = Request(scope).url
            query = f"?{url.query}" if url.query else ""
            location = f"{url.scheme}://{leader}{url.path}{query}"
            response = json_response(
                {"message": f"this master follows; the leader is {leader}", "leader": leader},
                307,
                {"Location": location},
            )
        await response(scope, receive, send)
