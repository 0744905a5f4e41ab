"""HTTP plumbing shared by the routes: bounded body reading, JSON responses, and turning every
error into a JSON answer (Marathon's shapes on /v2, ``{"message"}`` elsewhere); does I/O.
"""

from __future__ import annotations

import json
import logging
from typing import Any, TypeVar

import pydantic
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from pallet.api.marathon import (
    MAX_BODY_BYTES,
    MarathonApiError,
    app_locked,
    app_not_found,
    from_model_error,
    parse_json_body,
    task_not_found,
)
from pallet.api.marathon.errors import shape_error
from pallet.auth.service import Denied, IamConflict, IamNotFound
from pallet.control import (
    AppExists,
    AppLocked,
    AppNotFound,
    ControlError,
    DeploymentNotFound,
    GroupNotFound,
    NodeBusy,
    NodeNotFound,
    NotPromotable,
    TaskNotFound,
)
from pallet.model import ValidationError
from pallet.store import StoreError

__all__ = ["error_answer", "install_error_handlers", "json_response", "read_json", "read_model"]

log = logging.getLogger(__name__)


def json_response(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(doc, separators=(",", ":")).encode()
    return Response(body, status, headers, media_type="application/json")


async def read_json(request: Request, limit: int = MAX_BODY_BYTES) -> object:
    """The request's JSON body; 413 past ``limit`` bytes (without reading them all), 400 if
    it is empty or not JSON."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise MarathonApiError(413, {"message": f"Request body is larger than {limit} bytes"})
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise MarathonApiError(413, {"message": f"Request body is larger than {limit} bytes"})
        chunks.append(chunk)
    return parse_json_body(b"".join(chunks), limit)


M = TypeVar("M", bound=pydantic.BaseModel)


async def read_model(request: Request, model: type[M]) -> M:
    """The request's JSON body as ``model``; Marathon's 422 naming each bad field."""
    doc = await read_json(request)
    try:
        return model.model_validate(doc)
    except pydantic.ValidationError as exc:
        raise shape_error(exc) from None


def _marathon(error: ControlError) -> MarathonApiError:
    match error:
        case AppExists():
            return MarathonApiError(
                409, {"message": f"An app with id [{error.app_id}] already exists."}
            )
        case AppNotFound():
            return app_not_found(error.app_id)
        case AppLocked():
            return app_locked(error.deployment_ids)
        case TaskNotFound():
            return task_not_found(error.task_id)
        case DeploymentNotFound():
            return MarathonApiError(
                404, {"message": f"DeploymentPlan {error.deployment_id} does not exist"}
            )
        case NodeNotFound():
            return MarathonApiError(404, {"message": str(error)})
        case GroupNotFound():
            at = f" in version {error.version}" if error.version else ""
            return MarathonApiError(
                404, {"message": f"Group '{error.group_id}' does not exist{at}"}
            )
        case NotPromotable() | NodeBusy():
            return MarathonApiError(409, {"message": str(error)})
    return MarathonApiError(400, {"message": str(error)})


def error_answer(exc: Exception, method: str, path: str) -> Response:
    """The JSON answer to ``exc`` raised while serving ``method path``: a 4xx in the
    shape of its kind, 503 when the store failed, a logged 500 without a trace for a bug.
    Every route's errors pass here (FastAPI's handlers and ``routes_agent``'s)."""
    match exc:
        case MarathonApiError():
            return json_response(exc.body, exc.status)
        case ControlError():
            error = _marathon(exc)
            return json_response(error.body, error.status)
        case ValidationError():
            error = from_model_error(exc)
            return json_response(error.body, error.status)
        case RequestValidationError():
            details = [
                {"path": "/" + "/".join(str(p) for p in e["loc"][1:]), "errors": [e["msg"]]}
                for e in exc.errors()
            ]
            return json_response({"message": "Invalid request", "details": details}, 422)
        case StarletteHTTPException():
            # its headers too: a 405 names the allowed methods (Allow), as RFC 9110 wants
            headers = dict(exc.headers or {})
            return json_response({"message": str(exc.detail)}, exc.status_code, headers)
        case Denied():
            return json_response(
                {"message": str(exc)}, 401, {"WWW-Authenticate": 'token realm="pallet"'}
            )
        case IamNotFound():
            return json_response({"message": str(exc)}, 404)
        case IamConflict():
            return json_response({"message": str(exc)}, 409)
        case StoreError():
            log.error("store error on %s %s: %s", method, path, exc)
            return json_response({"message": f"the master's store failed: {exc}"}, 503)
    log.error("unexpected error on %s %s", method, path, exc_info=exc)
    return json_response({"message": "internal error; the master's log has the details"}, 500)


_HANDLED: tuple[type[Exception], ...] = (
    MarathonApiError,
    ControlError,
    ValidationError,
    RequestValidationError,
    StarletteHTTPException,
    Denied,
    IamNotFound,
    IamConflict,
    StoreError,
    Exception,
)


def install_error_handlers(app: FastAPI) -> None:
    """Every error is a JSON answer with a 4xx status; a bug is a JSON 500 without a trace."""

    async def handler(request: Request, exc: Exception) -> Response:
        return error_answer(exc, request.method, request.url.path)

    for kind in _HANDLED:
        app.add_exception_handler(kind, handler)
