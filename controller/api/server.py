"""The controller's HTTP API (aiohttp): routes, size limits, middlewares."""

from __future__ import annotations

from aiohttp import web

from controller.api import (
    agent_routes,
    build_routes,
    event_routes,
    join_routes,
    network_routes,
    objects,
    rollout_routes,
    volume_routes,
)
from controller.api.apply_route import apply
from controller.api.middleware import TOKENS, authenticate, errors
from controller.api.state import BIND_PREFIXES, STORE, WATCHES
from controller.auth.tokens import TokenStore
from controller.events import EventRecorder
from controller.store.objects import ObjectStore
from skiff import __version__
from skiff.manifest import MAX_MANIFEST_BYTES

# A manifest at its size limit grows when re-encoded as JSON; leave generous headroom.
MAX_BODY_BYTES = 4 * MAX_MANIFEST_BYTES


async def version(_request: web.Request) -> web.Response:
    return web.json_response({"version": __version__, "api": "skiff/v1"})


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _end_watches(app: web.Application) -> None:
    for task in list(app[WATCHES]):
        task.cancel()


def build_app(store: ObjectStore, tokens: TokenStore,
              allowed_bind_prefixes: tuple[str, ...] = (),
              events: EventRecorder | None = None) -> web.Application:
    app = web.Application(middlewares=[errors, authenticate], client_max_size=MAX_BODY_BYTES)
    app[STORE] = store
    app[TOKENS] = tokens
    app[BIND_PREFIXES] = tuple(allowed_bind_prefixes)
    app[event_routes.RECORDER] = events or EventRecorder(store)
    app[WATCHES] = set()
    app.on_shutdown.append(_end_watches)
    r = app.router
    r.add_get("/healthz", healthz)
    r.add_get("/api/v1/version", version)
    r.add_post("/api/v1/apply", apply)
    agent_routes.add_routes(r)
    build_routes.add_routes(r)
    event_routes.add_routes(r)
    join_routes.add_routes(r)
    network_routes.add_routes(r)  # before the generic routes, which it narrows
    volume_routes.add_routes(r)  # likewise
    rollout_routes.add_routes(r)
    r.add_get("/api/v1/{kind}", objects.list_or_watch)
    for pattern in ("/api/v1/{kind}/{name}", "/api/v1/{kind}/{app}/{name}"):
        r.add_get(pattern, objects.get_object)
        r.add_put(pattern, objects.update_object)
        r.add_delete(pattern, objects.delete_object)
    return app
