"""OpenAI-style errors: `{"error": {"message", "type", "param", "code"}}`, for every failure.

The exception handlers here make sure that a client's mistake (bad JSON, a wrong field, an
unknown model, a missing key) gets a 4xx naming the field, and that only our own bugs ever
answer 500. No handler echoes request headers, so API keys never appear in errors.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..validation import field_path, merge_messages

TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 403: "invalid_request_error",
         404: "invalid_request_error", 405: "invalid_request_error", 413: "invalid_request_error",
         415: "invalid_request_error", 422: "invalid_request_error", 429: "rate_limit_error"}


class APIError(Exception):
    """An error to answer with; `param` names the offending request field."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None,
                 type: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.type = type or TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
        self.headers = headers or {}


def error_body(message: str, *, type: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def error_response(err: APIError) -> JSONResponse:
    return JSONResponse(error_body(err.message, type=err.type, param=err.param, code=err.code),
                        status_code=err.status, headers=err.headers)


def validation_error(exc: RequestValidationError) -> APIError:
    errors = list(exc.errors())
    first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
    if first.get("type") == "json_invalid":
        return APIError(400, f"the request body is not valid JSON ({first.get('ctx', {}).get('error', 'parse error')})",
                        code="invalid_json")
    if not field_path(first.get("loc", ())) and first.get("type") in ("model_attributes_type", "dict_type",
                                                                      "model_type", "missing"):
        return APIError(400, "the request body must be a JSON object (Content-Type: application/json)",
                        code="invalid_body")
    by_field: dict[str, list[str]] = {}  # a union reports each of its branches: one line per field
    for err in errors:
        path = field_path(err.get("loc", ()))
        msg = "is required" if err.get("type") == "missing" else str(err.get("msg", "is invalid"))
        by_field.setdefault(path, []).append(msg)
    lines = [f"{path or 'request body'}: {merge_messages(msgs)}" for path, msgs in by_field.items()]
    more = f" (and {len(lines) - 3} more)" if len(lines) > 3 else ""
    return APIError(400, "; ".join(lines[:3]) + more, param=field_path(first.get("loc", ())) or None,
                    code="invalid_value")


async def _api_error(_: Request, exc: APIError) -> JSONResponse:
    return error_response(exc)


async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
    return error_response(validation_error(exc))


# Starlette's own HTTP errors (routing, and FastAPI's body parsing) carry no code: give each one.
HTTP_CODES = {400: "invalid_body", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 413: "request_too_large", 415: "unsupported_media_type"}


async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
    return error_response(APIError(exc.status_code, detail, code=code, headers=dict(exc.headers or {})))


def install_error_handlers(app: FastAPI) -> None:
    """Client errors. Unhandled exceptions are answered by `middleware.RequestContextMiddleware`
    (a 500 with a request id), not here: a handler for `Exception` runs in Starlette's
    outermost middleware, which re-raises after answering, and uvicorn then drops the
    keep-alive connection."""
    app.add_exception_handler(APIError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
