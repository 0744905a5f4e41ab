"""The agent protocol under ``/v1/agent``: register, long-poll the desired task set, post
status updates (acknowledged by task id and seq) and heartbeat with usage; does I/O.

    POST /v1/agent/register                      Registration -> {"node_id", "revision",
                                                     "heartbeat_interval", "poll_wait"}
    GET  /v1/agent/nodes/{id}/desired?after=&wait=         -> DesiredSet
    POST /v1/agent/nodes/{id}/status             StatusBatch  -> Acks
    POST /v1/agent/nodes/{id}/heartbeat          Heartbeat    -> {"state",
                                                     "heartbeat_interval", "poll_wait"}
    POST /v1/agent/nodes/{id}/drain                           -> {"state"}

The message types and their one JSON encoding are ``pallet.model.messages``, shared
with the agent.

These five routes are the master's hottest (every agent, all the time: at 12,500 nodes
thousands of requests a second), so ``AgentRoutes`` serves them as a plain ASGI
middleware just outside FastAPI's router instead of as FastAPI routes: FastAPI's route
matching, dependency solving and exception middleware cost more than the handlers
themselves (py-spy: about two thirds of the master's time per agent request). It sits
inside every other middleware (the rate limits, ``AuthGuard``, ``FollowTheLeader``), so
authentication, permissions, auditing, limits and leader redirects apply unchanged;
bodies are read with the same bound (413) and errors have the same shapes as elsewhere
(``http.error_answer``). Any other path, under ``/v1/agent`` or not, goes on to FastAPI.

An unknown node answers 404: the agent registers again. The answers to a registration
and a heartbeat tell the agent the interval to beat at and how long its long-polls may
wait (``NodeService.grant``, ``NodeService.poll_wait``); a long-poll waits at most the
longer of ``_MAX_WAIT`` and that.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from pallet.api.context import ApiContext
from pallet.api.http import error_answer, read_json
from pallet.api.marathon import MarathonApiError
from pallet.model import (
    Acks,
    DesiredSet,
    Heartbeat,
    Registration,
    StatusBatch,
    TaskSpec,
    ValidationError,
)
from pallet.model.net import agent_address

__all__ = ["ROUTES", "AgentRoutes", "desired_body"]

_MAX_WAIT = 60.0
M = TypeVar("M")
Answer = tuple[int, bytes]
Handler = Callable[[ApiContext, str, Request], Awaitable[Answer]]


def _parse(reader: Callable[[object], M], body: object) -> M:
    """A message from its JSON; a field that does not read is a 422 naming it."""
    try:
        return reader(body)
    except ValidationError as e:
        details = [{"path": e.field, "errors": [e.message]}]
        raise MarathonApiError(
            422, {"message": "Invalid agent message", "details": details}
        ) from None


def _dumps(doc: object) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


async def register(ctx: ApiContext, _node_id: str, request: Request) -> Answer:
    body = _parse(Registration.from_json, await read_json(request))
    peer = request.client.host if request.client is not None else None
    address = _parse(lambda a: agent_address(str(a), peer), body.address)
    record = await ctx.control.nodes.register(body.node, address, body.boot_id)
    revision = ctx.control.state.desired_revision.get(record.id, 0)
    nodes = ctx.control.nodes
    interval = nodes.grant(record.id)
    return 200, _dumps(
        {
            "node_id": record.id,
            "revision": revision,
            "heartbeat_interval": interval,
            "poll_wait": nodes.poll_wait(),
        }
    )


async def desired(ctx: ApiContext, node_id: str, request: Request) -> Answer:
    # (Starlette's QueryParams costs a tenth of a long-poll's time at 5,000 nodes)
    q = _query(request.scope["query_string"].decode("latin-1"))
    try:
        after = int(q.get("after", "0"))
        wait = max(0.0, float(q.get("wait", "0")))
    except ValueError:
        raise MarathonApiError(422, {"message": "after and wait must be numbers"}) from None
    nodes = ctx.control.nodes
    wait = min(wait, max(_MAX_WAIT, nodes.poll_wait()))  # (nan: max(0, nan) is 0)
    revision, tasks = await nodes.desired(node_id, after, wait)
    volumes = ctx.control.state.node_volumes(node_id)
    return 200, desired_body(DesiredSet(revision, tuple(tasks), volumes))


def _query(text: str) -> dict[str, str]:
    """``dict(parse_qsl(text))``; a query with nothing to decode (an agent's ``after=&wait=``)
    is split directly (parse_qsl was a tenth of a long-poll's handling)."""
    if "%" in text or "+" in text:
        return dict(parse_qsl(text))
    out = {}
    for pair in text.split("&"):
        name, _, value = pair.partition("=")
        if value:  # (parse_qsl, too, drops a pair with no value)
            out[name] = value
    return out


_SPEC_BYTES: dict[str, tuple[TaskSpec, bytes]] = {}
"""Each task's launch spec as sent last, by task id; used while it is the same object. A
node's answer holds every task it should run, so without it each change re-encoded them
all (about 32 µs a spec)."""


def desired_body(desired: DesiredSet) -> bytes:
    """``json_response(desired.to_json())``'s body, byte for byte, encoding only the specs
    not sent before (a spec is frozen: a changed one is a new object)."""
    if len(_SPEC_BYTES) > 500_000:
        _SPEC_BYTES.clear()
    parts = []
    for spec in desired.tasks:
        cached = _SPEC_BYTES.get(spec.task_id)
        if cached is None or cached[0] is not spec:
            cached = (spec, _dumps(spec.to_json()))
            _SPEC_BYTES[spec.task_id] = cached
        parts.append(cached[1])
    body = b'{"revision":' + str(desired.revision).encode() + b',"tasks":[' + b",".join(parts)
    if desired.volumes is not None:
        body += b'],"volumes":' + _dumps(list(desired.volumes))
    else:
        body += b"]"
    return body + b"}"


async def status(ctx: ApiContext, node_id: str, request: Request) -> Answer:
    body = _parse(StatusBatch.from_json, await read_json(request))
    acks = await ctx.control.nodes.statuses(node_id, body.statuses)
    return 200, _dumps(Acks(tuple(acks)).to_json())


async def heartbeat(ctx: ApiContext, node_id: str, request: Request) -> Answer:
    body = _parse(Heartbeat.from_json, await read_json(request))
    state = await ctx.control.nodes.heartbeat(node_id, body.usage)
    nodes = ctx.control.nodes
    interval = nodes.grant(node_id)
    answer = {"state": state.value, "heartbeat_interval": interval, "poll_wait": nodes.poll_wait()}
    return 200, _dumps(answer)


async def drain(ctx: ApiContext, node_id: str, _request: Request) -> Answer:
    """The agent is leaving and kills its tasks (``kill -USR1``): the node takes no new
    tasks, so their replacements go elsewhere at once rather than after the grace."""
    state = await ctx.control.nodes.drain(node_id)
    return 200, _dumps({"state": state.value})


_NODE_ROUTES: dict[str, tuple[str, Handler]] = {
    "desired": ("GET", desired),
    "status": ("POST", status),
    "heartbeat": ("POST", heartbeat),
    "drain": ("POST", drain),
}
ROUTES: tuple[tuple[str, str], ...] = (
    ("POST", "/v1/agent/register"),
    *(
        (method, f"/v1/agent/nodes/{{node_id}}/{verb}")
        for verb, (method, _) in _NODE_ROUTES.items()
    ),
)
"""(method, path) of every route served here, for the permission table's tests."""
_JSON_HEADERS = [(b"content-type", b"application/json")]


def _route(path: str) -> tuple[str, Handler, str] | None:
    """(method, handler, node id) of an agent-protocol path; None: not one of ours."""
    if path == "/v1/agent/register":
        return "POST", register, ""
    parts = path.split("/")  # ["", "v1", "agent", "nodes", id, verb]
    if len(parts) != 6 or parts[3] != "nodes" or not parts[4]:
        return None
    found = _NODE_ROUTES.get(parts[5])
    return None if found is None else (found[0], found[1], parts[4])


class AgentRoutes:
    """Serves the agent protocol's routes; passes every other request on to ``app``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        route = _route(path) if scope["type"] == "http" and path.startswith("/v1/agent/") else None
        if route is None:
            await self.app(scope, receive, send)
            return
        method, handler, node_id = route
        allowed = (method, "HEAD") if method == "GET" else (method,)
        if scope["method"] not in allowed:
            headers = [*_JSON_HEADERS, (b"allow", ", ".join(allowed).encode())]
            await _send(send, 405, _dumps({"message": "Method Not Allowed"}), headers)
            return
        ctx: ApiContext = scope["app"].state.pallet
        try:
            code, body = await handler(ctx, node_id, Request(scope, receive))
        except Exception as exc:  # answered as every route's errors are
            answer = error_answer(exc, scope["method"], path)
            code, body = answer.status_code, bytes(answer.body)
            headers = [(k, v) for k, v in answer.raw_headers if k != b"content-length"]
            await _send(send, code, body, headers)
            return
        await _send(send, code, body, _JSON_HEADERS)


async def _send(send: Send, code: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": code,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
