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

__all__ = ["install_error_handlers", "json_response", "read_json", "read_model"]

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


def install_error_handlers(app: FastAPI) -> None:
    """Every error is a JSON answer with a 4xx status; a bug is a JSON 500 without a trace."""

    @app.exception_handler(MarathonApiError)
    async def _marathon_error(request: Request, exc: MarathonApiError) -> Response:
        return json_response(exc.body, exc.status)

    @app.exception_handler(ControlError)
    async def _control_error(request: Request, exc: ControlError) -> Response:
        error = _marathon(exc)
        return json_response(error.body, error.status)

    @app.exception_handler(ValidationError)
    async def _validation_error(request: Request, exc: ValidationError) -> Response:
        error = from_model_error(exc)
        return json_response(error.body, error.status)

    @app.exception_handler(RequestValidationError)
    async def _request_error(request: Request, exc: RequestValidationError) -> Response:
        details = [
            {"path": "/" + "/".join(str(p) for p in e["loc"][1:]), "errors": [e["msg"]]}
            for e in exc.errors()
        ]
        return json_response({"message": "Invalid request", "details": details}, 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # its headers too: a 405 names the allowed methods (Allow), as RFC 9110 wants
        return json_response({"message": str(exc.detail)}, exc.status_code, dict(exc.headers or {}))

    @app.exception_handler(Denied)
    async def _denied(request: Request, exc: Denied) -> Response:
        return json_response(
            {"message": str(exc)}, 401, {"WWW-Authenticate": 'token realm="pallet"'}
        )

    @app.exception_handler(IamNotFound)
    async def _iam_missing(request: Request, exc: IamNotFound) -> Response:
        return json_response({"message": str(exc)}, 404)

    @app.exception_handler(IamConflict)
    async def _iam_conflict(request: Request, exc: IamConflict) -> Response:
        return json_response({"message": str(exc)}, 409)

    @app.exception_handler(StoreError)
    async def _store_error(request: Request, exc: StoreError) -> Response:
        log.error("store error on %s %s: %s", request.method, request.url.path, exc)
        return json_response({"message": f"the master's store failed: {exc}"}, 503)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return json_response({"message": "internal error; the master's log has the details"}, 500)
