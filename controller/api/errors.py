"""Every API error has one JSON shape: ``{"code", "message", "details"}``."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from controller.store.errors import AlreadyExists, Compacted, Conflict, NotFound, Unavailable


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}

    def response(self) -> web.Response:
        return web.json_response(self.body(), status=self.status)


def bad_request(message: str, **details: Any) -> ApiError:
    return ApiError(400, "BadRequest", message, details)


def invalid(message: str, problems: list[dict[str, Any]]) -> ApiError:
    return ApiError(422, "Invalid", message, {"problems": problems})


def not_found(message: str) -> ApiError:
    return ApiError(404, "NotFound", message)


def from_exception(exc: BaseException) -> ApiError:
    """Map typed errors from the layers below to API errors."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, NotFound):
        return ApiError(404, "NotFound", str(exc), {"key": exc.key})
    if isinstance(exc, AlreadyExists):
        return ApiError(409, "AlreadyExists", str(exc), {"key": exc.key})
    if isinstance(exc, Conflict):
        return ApiError(409, "Conflict", str(exc),
                        {"key": exc.key, "expected": exc.expected, "actual": exc.actual})
    if isinstance(exc, Compacted):
        return ApiError(410, "Expired", str(exc),
                        {"requested": exc.requested, "compactRevision": exc.compact_revision})
    if isinstance(exc, Unavailable):
        return ApiError(503, "Unavailable", f"the store is unavailable: {exc}")
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return ApiError(413, "TooLarge", "request body is too large",
                        {"maxBytes": exc.max_size if hasattr(exc, "max_size") else None})
    if isinstance(exc, web.HTTPException):
        return ApiError(exc.status, exc.reason.replace(" ", ""), exc.reason)
    if isinstance(exc, json.JSONDecodeError):
        return bad_request(f"request body is not valid JSON: {exc}")
    return ApiError(500, "Internal", "internal error; see the controller log")
