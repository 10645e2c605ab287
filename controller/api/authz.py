"""Applying the authorisation policy inside request handlers."""

from __future__ import annotations

from aiohttp import web

from controller.api.errors import ApiError
from controller.api.middleware import PRINCIPAL
from controller.auth.policy import Access, allowed, denial


def authorize(request: web.Request, access: Access) -> None:
    principal = request[PRINCIPAL]
    if not allowed(principal, access):
        raise ApiError(403, "Forbidden", denial(principal, access))
