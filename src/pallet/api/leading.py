"""A follower master sends clients to the leader: ``307 Temporary Redirect`` with the same
path and query (clients resend the method and body, as Marathon's followers proxy them);
``503`` while no leader is elected. Its own state is answered locally only where it
cannot mislead: ``/ping``, ``/v2/info``, ``/v2/leader``, ``/metrics``; does no I/O.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from pallet.api.context import context
from pallet.api.http import json_response

__all__ = ["LOCAL", "follow_the_leader"]

LOCAL = frozenset(
    {("GET", "/ping"), ("GET", "/v2/info"), ("GET", "/v2/leader"), ("GET", "/metrics")}
)
"""What a follower answers itself."""


async def follow_the_leader(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    ctx = context(request)
    if ctx.leading or (request.method, request.url.path) in LOCAL:
        return await call_next(request)
    leader = ctx.info.leader
    if not leader:
        return json_response(
            {"message": "no leader is elected yet; try again in a moment"},
            503,
            {"Retry-After": "1"},
        )
    query = f"?{request.url.query}" if request.url.query else ""
    location = f"{request.url.scheme}://{leader}{request.url.path}{query}"
    return json_response(
        {"message": f"this master follows; the leader is {leader}", "leader": leader},
        307,
        {"Location": location},
    )
