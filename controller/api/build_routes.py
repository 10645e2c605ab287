"""`POST /api/v1/builds`: `skiff build` through the controller to one agent.

The controller does not look inside the upload: it picks the node (the `node` query
parameter, else controller/build_placement.py by the `image` parameter), forwards the
multipart body as it streams in, counting it against the upload limit, and streams the
agent's JSON lines back, after one of its own saying which node builds."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from controller.api.agent_routes import agent_endpoint, relay
from controller.api.authz import authorize
from controller.api.errors import ApiError
from controller.api.state import STORE
from controller.auth.policy import Access
from controller.build_placement import NoBuildNode, pick_build_node
from controller.store.objects import ObjectStore
from skiff.build.context import MAX_UPLOAD_BYTES
from skiff.models.kinds import NODE

# Room for the multipart framing and the options part (the Dockerfile) on top.
MAX_BODY_BYTES = MAX_UPLOAD_BYTES + (2 << 20)


async def _counted(body: aiohttp.StreamReader, limit: int) -> AsyncIterator[bytes]:
    sent = 0
    async for chunk in body.iter_chunked(1 << 20):
        sent += len(chunk)
        if sent > limit:
            raise ApiError(413, "ContextTooLarge", f"the build upload exceeds {limit} bytes")
        yield chunk


async def post_build(request: web.Request) -> web.StreamResponse:
    image = request.query.get("image") or None
    authorize(request, Access("create", "Build", image))
    store: ObjectStore = request.app[STORE]
    nodes, _revision = await store.list(NODE)
    try:
        node = pick_build_node(nodes, image, request.query.get("node") or None)
    except NoBuildNode as exc:
        raise ApiError(503, "NoBuildNode", str(exc)) from None
    url, secret = await agent_endpoint(store, node)
    headers = {"Authorization": f"Bearer {secret}",
               "Content-Type": request.headers.get("Content-Type", "")}
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=5)
    name = node.metadata.name
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session, session.post(
                url + "/v1/builds", data=_counted(request.content, MAX_BODY_BYTES),
                headers=headers) as upstream:
            first = json.dumps({"status": f"building on node {name}"}).encode() + b"\n"
            return await relay(request, upstream, "application/x-ndjson", first)
    except aiohttp.ClientError as exc:
        raise ApiError(502, "AgentUnreachable",
                       f"agent of node {name} did not answer: {exc}") from None


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/api/v1/builds", post_build)
