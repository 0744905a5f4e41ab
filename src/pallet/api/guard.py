"""``AuthGuard``: the one ASGI middleware every request passes once authentication is on;
it authenticates the caller, checks the route's requirement (``authz``), audits every
write and ends streams when their token expires; does I/O.

    request ─▶ token (Authorization: token=<jwt> | Bearer <jwt>; the cookie on reads)
            ─▶ AuthService.authenticate ─▶ authz.requirement ─▶ 401 / 403 / the route
            ─▶ the audit entry of a write (who, what, status)

It wraps the whole application, not a router, so a route added later (Metronome's
jobs, the integrator's leader redirects) is covered without a line of its own: a route
``authz`` does not know needs ``pallet:superuser``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pallet.api.authz import BODY, PUBLIC, SIGNED_IN, Lookup, Needs, body_requirement, requirement
from pallet.api.marathon import MAX_BODY_BYTES
from pallet.auth.audit import AuditLog
from pallet.auth.perms import ALL, Permissions
from pallet.auth.service import AuthService, Principal
from pallet.auth.tokens import InvalidToken

__all__ = ["COOKIE", "PRINCIPAL", "AuthGuard", "StateLookup", "permissions_of"]

log = logging.getLogger(__name__)

PRINCIPAL = "pallet.principal"
"""The scope key holding the authenticated ``Principal``."""
COOKIE = "pallet-token"
_READS = frozenset({"GET", "HEAD", "OPTIONS"})


def permissions_of(scope: MutableMapping[str, Any]) -> Permissions:
    """What the caller of this request may do (everything while auth is off)."""
    principal: Principal | None = scope.get(PRINCIPAL)
    return ALL if principal is None else principal.permissions


class StateLookup:
    """``authz.Lookup`` over the master's in-memory state (``state_of()`` each time: a new
    term of leadership swaps the control the API serves from)."""

    def __init__(self, state_of: Callable[[], Any]) -> None:
        self.state_of = state_of

    @property
    def state(self) -> Any:
        return self.state_of()

    def is_app(self, app_id: str) -> bool:
        return app_id in self.state.apps

    def task_app(self, task_id: str) -> str | None:
        task = self.state.tasks.get(task_id) or self.state.recently_ended.get(task_id)
        return None if task is None else str(task.app_id)

    def deployment_apps(self, deployment_id: str) -> Sequence[str] | None:
        d = self.state.deployments.get(deployment_id)
        return None if d is None else d.app_ids()


def _json(
    status: int, doc: dict[str, Any], extra: list[tuple[bytes, bytes]] | None = None
) -> list[Message]:
    body = json.dumps(doc, separators=(",", ":")).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *(extra or []),
    ]
    return [
        {"type": "http.response.start", "status": status, "headers": headers},
        {"type": "http.response.body", "body": body},
    ]


def _token(scope: Scope, method: str) -> str | None:
    auth = cookie = None
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            auth = value.decode("latin-1").strip()
        elif name == b"cookie" and method in _READS:
            cookie = value.decode("latin-1")
    if auth is not None:
        scheme, _, rest = auth.partition(" ")
        if auth.startswith("token="):
            return auth[len("token=") :].strip()
        if scheme.lower() == "bearer" and rest:
            return rest.strip()
        return ""  # a header of another kind: refused, never ignored
    if cookie is not None:  # EventSource cannot send headers; reads only (no CSRF)
        for part in cookie.split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE:
                return value
    return None


class _StreamEnded(Exception):
    """The token of a streaming answer expired: the answer was ended."""


class AuthGuard:
    def __init__(
        self,
        app: ASGIApp,
        auth: AuthService,
        lookup: Lookup,
        audit: AuditLog | None = None,
    ) -> None:
        self.app = app
        self.auth = auth
        self.lookup = lookup
        self.audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        path: str = scope["path"]
        need = requirement(method, path, self.lookup)
        if need is PUBLIC:
            await self.app(scope, receive, send)
            return
        token = _token(scope, method)
        principal: Principal | None = None
        if token:
            try:
                principal = self.auth.authenticate(token)
            except InvalidToken as e:
                await self._refuse(scope, send, 401, e.reason, None)
                return
        if principal is None:
            why = "this cluster needs a token: pallet auth login, then send Authorization: token=<token>"
            await self._refuse(
                scope,
                send,
                401,
                why if token is None else "the Authorization header is not a token",
                None,
            )
            return
        scope[PRINCIPAL] = principal
        if need is BODY:
            body, receive = await _buffer(receive)
            if body is None:
                await self._send_all(
                    send,
                    _json(413, {"message": f"Request body is larger than {MAX_BODY_BYTES} bytes"}),
                )
                return
            try:
                doc = json.loads(body) if body else None
            except ValueError:
                doc = None
            need = body_requirement(method, path, doc, self.lookup)
        if isinstance(need, Needs):
            for rid, action in need.pairs:
                if not principal.permissions.allows(rid, action):
                    await self._refuse(
                        scope, send, 403, f"{principal.uid} may not {action.value} {rid}", principal
                    )
                    return
        elif need is not SIGNED_IN:  # pragma: no cover - every marker is handled above
            raise AssertionError(need)
        await self._run(scope, receive, send, principal)

    async def _run(self, scope: Scope, receive: Receive, send: Send, principal: Principal) -> None:
        status = 500
        expires = principal.expires
        clock = self.auth.clock
        ended = False

        async def watched_send(message: Message) -> None:
            nonlocal status, ended
            if message["type"] == "http.response.start":
                status = message["status"]
            elif (
                message["type"] == "http.response.body"
                and message.get("more_body")
                and clock() >= expires
            ):
                # A stream (events) outlives its token: end it (CVE-2022-3867's lesson).
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                ended = True
                raise _StreamEnded
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except _StreamEnded:
            pass
        except OSError:
            if not ended:
                raise
        finally:
            if scope["method"] not in _READS:
                self._audit(scope, principal, status)

    async def _refuse(
        self, scope: Scope, send: Send, status: int, message: str, principal: Principal | None
    ) -> None:
        extra = [(b"www-authenticate", b'token realm="pallet"')] if status == 401 else None
        await self._send_all(send, _json(status, {"message": message}, extra))
        if scope["method"] not in _READS or status == 403:
            self._audit(scope, principal, status)

    @staticmethod
    async def _send_all(send: Send, messages: list[Message]) -> None:
        for m in messages:
            await send(m)

    def _audit(self, scope: Scope, principal: Principal | None, status: int) -> None:
        if self.audit is None:
            return
        path: str = scope["path"]
        if (
            principal is not None
            and principal.kind == "agent"
            and status < 400
            and path != "/v1/agent/register"
        ):
            return  # statuses and heartbeats: the agents' routine, not operators' writes
        client = scope.get("client")
        self.audit.record(
            {
                "uid": principal.uid if principal else None,
                "kind": principal.kind if principal else None,
                "method": scope["method"],
                "path": path,
                "status": status,
                "outcome": "success"
                if status < 400
                else "denied"
                if status in (401, 403)
                else "failed",
                "client": client[0] if client else None,
            }
        )


async def _buffer(receive: Receive) -> tuple[bytes | None, Receive]:
    """The whole request body (None past ``MAX_BODY_BYTES``) and a ``receive`` that hands
    it to the route as if unread."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None, receive
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    body = b"".join(chunks)
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay
