"""POST /api/v1/events: an agent reports something that happened to one of its tasks (or
its own node); listing and watching go through the generic routes."""

from __future__ import annotations

from aiohttp import web

from controller.api.authz import authorize
from controller.api.body import read_json
from controller.api.errors import bad_request, invalid
from controller.api.middleware import PRINCIPAL
from controller.auth.policy import Access
from controller.events import EventRecorder, event_of
from skiff.models.codec import DecodeError, decode, encode
from skiff.models.kinds import TASK
from skiff.models.objects import InvolvedObject, Task

RECORDER = web.AppKey("event_recorder", EventRecorder)


async def post_event(request: web.Request) -> web.Response:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise bad_request("expected {involved: {kind, name, app}, reason, message, type}")
    try:
        involved = decode(InvolvedObject, body.get("involved"))
    except DecodeError as exc:
        raise invalid(f"involved: {exc}", [{"path": exc.path, "message": exc.message}]) \
            from None
    reason, message = body.get("reason"), body.get("message", "")
    type_ = body.get("type", "Normal")
    at = body.get("at")
    if at is not None and (not isinstance(at, str) or len(at) > 40):
        raise bad_request("at: a time like 2026-11-28T12:00:00.000Z")
    if not isinstance(reason, str) or not reason or not isinstance(message, str) or \
            type_ not in ("Normal", "Warning"):
        raise bad_request("reason (a word), message (text) and type (Normal or Warning) "
                          "are needed")
    node = None
    if involved.kind == "Task":
        task: Task = await request.app[RECORDER].store.get(TASK, involved.name, involved.app)
        node = task.spec.node_name
    elif involved.kind == "Node":
        node = involved.name
    authorize(request, Access("event", involved.kind, involved.name, node=node))
    principal = request[PRINCIPAL]
    source = f"node {principal.name}" if principal.role == "node" else principal.name
    stored = await request.app[RECORDER].write(event_of(involved, reason, message, type_,
                                                        source, at))
    return web.json_response(encode(stored), status=201)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/api/v1/events", post_event)
