"""Joining a cluster: join tokens (made by admins), a node trading one for credentials
of its own, and removing a node (which revokes them)."""

from __future__ import annotations

import re
import time

from aiohttp import web

from controller.api.authz import authorize
from controller.api.body import read_json
from controller.api.errors import ApiError, bad_request
from controller.api.middleware import TOKENS
from controller.api.state import STORE
from controller.auth.policy import Access
from controller.store.errors import NotFound
from controller.store.keys import AGENT_SECRETS_PREFIX
from controller.store.kv import Delete
from controller.store.objects import ObjectStore
from skiff.models.kinds import NODE

NODE_NAME = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$")
MAX_TTL_SECONDS = 365 * 24 * 3600


async def create_token(request: web.Request) -> web.Response:
    authorize(request, Access("token", "Token"))
    body = await read_json(request) if request.can_read_body else {}
    if not isinstance(body, dict):
        raise bad_request('expected {"role": "join", "ttlSeconds": N}')
    role = body.get("role", "join")
    ttl = body.get("ttlSeconds", 24 * 3600)
    if role != "join":
        raise bad_request(f"role {role!r}: only join tokens are made here")
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int | float)
                            or not 0 < ttl <= MAX_TTL_SECONDS):
        raise bad_request(f"ttlSeconds must be between 1 and {MAX_TTL_SECONDS}, or null")
    token = await request.app[TOKENS].create("join", "join", ttl)
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + ttl)) \
        if ttl else None
    return web.json_response({"token": token, "expiresAt": expires}, status=201)


async def join(request: web.Request) -> web.Response:
    body = await read_json(request)
    name = body.get("name") if isinstance(body, dict) else None
    authorize(request, Access("join", "Node", name if isinstance(name, str) else None))
    if not isinstance(name, str) or not NODE_NAME.match(name):
        raise bad_request(f"node name {name!r} must be lowercase letters, digits, '-' and "
                          "'.', at most 63 characters")
    token = await request.app[TOKENS].issue_node_credential(name)
    if token is None:
        raise ApiError(409, "NameTaken",
                       f"node name {name!r} is held by an agent that joined before; pick "
                       f"another --name, or free it with `skiff node rm {name}`")
    return web.json_response({"name": name, "token": token}, status=201)


async def remove_node(request: web.Request) -> web.Response:
    """Delete the Node and revoke its credentials; its tasks are rescheduled."""
    name = request.match_info["name"]
    authorize(request, Access("delete", "Node", name))
    store: ObjectStore = request.app[STORE]
    try:
        await store.delete(NODE, name)
        found = True
    except NotFound:
        found = False
    await request.app[TOKENS].release_node(name)
    await store.kv.txn([], [Delete(AGENT_SECRETS_PREFIX + name)])
    if not found:
        raise ApiError(404, "NotFound", f"nodes/{name} not found (its credentials, if any, "
                                        "are revoked)")
    return web.json_response({"name": name, "deleted": True})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/api/v1/tokens", create_token)
    router.add_post("/api/v1/join", join)
    router.add_delete("/api/v1/nodes/{name}", remove_node)
