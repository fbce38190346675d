"""OpenAI-style errors: `{"error": {"message", "type", "param", "code"}}`, for every failure.

The exception handlers here make sure that a client's mistake (bad JSON, a wrong field, an
unknown model, a missing key) gets a 4xx naming the field, and that only our own bugs ever
answer 500. No handler echoes request headers, so API keys never appear in errors.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

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


# pydantic puts the branch of a union in the location ('content', 'str'); clients know fields only.
_UNION_TAG = re.compile(r"^(str|int|float|bool|none|null|[A-Za-z_-]*\[.*\]|[A-Z][A-Za-z]*)$")


def field_path(loc: Sequence[Any]) -> str:
    """('body', 'messages', 0, 'content', 'str') -> 'messages[0].content' (the name a client knows)."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    parts = [p for p in parts if isinstance(p, int) or not _UNION_TAG.match(str(p))]
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += f".{p}" if out else str(p)
    return out


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
    by_field: dict[str, str] = {}  # one message per field (a union reports each of its branches)
    for err in errors:
        path = field_path(err.get("loc", ()))
        msg = "is required" if err.get("type") == "missing" else str(err.get("msg", "is invalid"))
        by_field.setdefault(path, f"{path}: {msg}" if path else f"request body: {msg}")
    more = f" (and {len(by_field) - 3} more)" if len(by_field) > 3 else ""
    return APIError(400, "; ".join(list(by_field.values())[:3]) + more, param=field_path(first.get("loc", ())) or None,
                    code="invalid_value")


async def _api_error(_: Request, exc: APIError) -> JSONResponse:
    return error_response(exc)


async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
    return error_response(validation_error(exc))


async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
    detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
    return error_response(APIError(exc.status_code, detail, code=code, headers=dict(exc.headers or {})))


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    # Our bug, not the client's: answer without details (Starlette re-raises it afterwards, so
    # the server logs the traceback once).
    return error_response(APIError(500, "internal server error", code="internal_error"))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(APIError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
