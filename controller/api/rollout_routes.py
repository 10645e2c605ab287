"""POST /api/v1/services/{app}/{name}/pause and /resume: `skiff rollout pause|resume`.
The flag lives in the Service's status (the service reconciler keeps it): while set, no
replica of an outdated spec is replaced."""

from __future__ import annotations

import dataclasses

from aiohttp import web

from controller.api.authz import authorize
from controller.api.errors import ApiError
from controller.api.state import STORE
from controller.auth.policy import Access
from controller.store.errors import Conflict
from controller.store.objects import ObjectStore
from skiff.models.codec import encode
from skiff.models.kinds import SERVICE
from skiff.models.objects import Service

_CAS_ATTEMPTS = 10


async def _set_paused(request: web.Request, paused: bool) -> web.Response:
    app, name = request.match_info["app"], request.match_info["name"]
    authorize(request, Access("update", "Service", name))
    store: ObjectStore = request.app[STORE]
    for _ in range(_CAS_ATTEMPTS):
        service: Service = await store.get(SERVICE, name, app)
        status = dataclasses.replace(service.status, paused=paused)
        try:
            stored = await store.update(dataclasses.replace(service, status=status))
            return web.json_response(encode(stored))
        except Conflict:
            continue
    raise ApiError(409, "Conflict", f"service {app}/{name} is changing too fast; retry")


async def pause(request: web.Request) -> web.Response:
    return await _set_paused(request, True)


async def resume(request: web.Request) -> web.Response:
    return await _set_paused(request, False)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/api/v1/services/{app}/{name}/pause", pause)
    router.add_post("/api/v1/services/{app}/{name}/resume", resume)
