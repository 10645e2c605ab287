"""Request middlewares: one error shape for everything, and bearer-token authentication."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from controller.api.errors import ApiError, from_exception
from controller.auth.tokens import Principal, TokenStore

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
TOKENS = web.AppKey("tokens", TokenStore)
PRINCIPAL = web.RequestKey("principal", Principal)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        err = from_exception(exc)
        if err.status >= 500 and not isinstance(exc, ApiError):
            log.exception("%s %s failed", request.method, request.path)
        return err.response()


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise ApiError(401, "Unauthorized", "missing bearer token (Authorization: Bearer …)")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "Unauthorized", "malformed Authorization header; expected Bearer")
    principal = await request.app[TOKENS].authenticate(token.strip())
    if principal is None:
        raise ApiError(401, "Unauthorized", "invalid or expired token")
    request[PRINCIPAL] = principal
    return await handler(request)
