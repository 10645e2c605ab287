"""What agents call: register their node, report node and task status, hand over the
secret the controller uses to reach them; and the controller's proxies to agents for
task logs and exec."""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any

import aiohttp
from aiohttp import web

from controller.api.authz import authorize
from controller.api.body import read_json
from controller.api.errors import ApiError, bad_request, invalid
from controller.api.state import STORE
from controller.auth.policy import Access
from controller.store.errors import AlreadyExists, Conflict
from controller.store.keys import AGENT_SECRETS_PREFIX, validate_name
from controller.store.kv import Put
from controller.store.objects import ObjectStore
from skiff.models.codec import DecodeError, decode, encode
from skiff.models.kinds import NODE, TASK
from skiff.models.objects import Node, NodeStatus, ObjectMeta, Task, TaskStatus

_CAS_ATTEMPTS = 10


def _decode(cls: type, body: Any, what: str) -> Any:
    try:
        return decode(cls, body)
    except DecodeError as exc:
        raise invalid(f"not a valid {what}: {exc}",
                      [{"path": exc.path, "message": exc.message}]) from None


async def register_node(request: web.Request) -> web.Response:
    """Create the Node, or take it over again (an agent restarting): labels and status
    come from the agent, the spec (cordon, drain) stays the cluster's."""
    body = await read_json(request)
    sent: Node = _decode(Node, body, "Node")
    authorize(request, Access("create", "Node", sent.metadata.name))
    try:
        validate_name(sent.metadata.name, "node name")
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    store: ObjectStore = request.app[STORE]
    fresh = Node(metadata=ObjectMeta(name=sent.metadata.name, labels=sent.metadata.labels),
                 status=sent.status)
    for _ in range(_CAS_ATTEMPTS):
        try:
            return web.json_response(encode(await store.create(fresh)), status=201)
        except AlreadyExists:
            pass
        current = await store.get(NODE, sent.metadata.name)
        meta = dataclasses.replace(current.metadata, labels=sent.metadata.labels)
        try:
            stored = await store.update(dataclasses.replace(current, metadata=meta,
                                                            status=sent.status))
            return web.json_response(encode(stored))
        except Conflict:
            continue
    raise ApiError(409, "Conflict", "node is changing too fast; retry")


async def _replace_status(store: ObjectStore, kind: Any, name: str, app: str | None,
                          status: Any) -> Any:
    """Status belongs to the agent: write it over the current object, retrying on a
    lost compare so a concurrent spec change (desired state, binding) is never lost."""
    for _ in range(_CAS_ATTEMPTS):
        current = await store.get(kind, name, app)
        try:
            return await store.update(dataclasses.replace(current, status=status))
        except Conflict:
            continue
    raise ApiError(409, "Conflict", f"{kind.plural}/{name} is changing too fast; retry")


async def node_status(request: web.Request) -> web.Response:
    authorize(request, Access("status", "Node", request.match_info["name"]))
    status = _decode(NodeStatus, await read_json(request), "NodeStatus")
    stored = await _replace_status(request.app[STORE], NODE, request.match_info["name"],
                                   None, status)
    return web.json_response(encode(stored))


async def task_status(request: web.Request) -> web.Response:
    status = _decode(TaskStatus, await read_json(request), "TaskStatus")
    store: ObjectStore = request.app[STORE]
    name, app = request.match_info["name"], request.match_info["app"]
    current: Task = await store.get(TASK, name, app)
    authorize(request, Access("status", "Task", name, node=current.spec.node_name))
    stored = await _replace_status(store, TASK, name, app, status)
    return web.json_response(encode(stored))


async def agent_secret(request: web.Request) -> web.Response:
    """The agent hands over the secret it will accept from the controller; it is stored
    but never served by the API."""
    name = request.match_info["name"]
    authorize(request, Access("secret", "Node", name))
    await request.app[STORE].get(NODE, name)  # NotFound unless registered
    secret = secrets.token_urlsafe(32)
    await request.app[STORE].kv.txn([], [Put(AGENT_SECRETS_PREFIX + name, secret.encode())])
    return web.json_response({"secret": secret})


async def _agent_for(request: web.Request) -> tuple[str, str, Task]:
    store: ObjectStore = request.app[STORE]
    task: Task = await store.get(TASK, request.match_info["name"], request.match_info["app"])
    if not task.spec.node_name:
        raise ApiError(409, "NotScheduled", f"task {task.metadata.name} is not on a node yet")
    node: Node = await store.get(NODE, task.spec.node_name)
    url, secret = await agent_endpoint(store, node)
    return url, secret, task


async def agent_endpoint(store: ObjectStore, node: Node) -> tuple[str, str]:
    """The agent's base URL and the secret it accepts from the controller."""
    kv = await store.kv.get(AGENT_SECRETS_PREFIX + node.metadata.name)
    if not node.status.address or not node.status.agent_port or kv is None:
        raise ApiError(503, "Unavailable",
                       f"node {node.metadata.name} has no agent endpoint registered")
    return f"http://{node.status.address}:{node.status.agent_port}", kv.value.decode()


def _agent_path(task: Task, what: str) -> str:
    return f"/v1/containers/{task.metadata.app}/{task.metadata.name}/{what}"


async def task_logs(request: web.Request) -> web.StreamResponse:
    authorize(request, Access("logs", "Task", request.match_info["name"]))
    url, secret, task = await _agent_for(request)
    params = {k: v for k, v in request.query.items() if k in ("tail", "follow", "timestamps")}
    headers = {"Authorization": f"Bearer {secret}"}
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=5)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(
                url + _agent_path(task, "logs"), params=params, headers=headers) as upstream:
            return await relay(request, upstream, "text/plain; charset=utf-8")
    except aiohttp.ClientError as exc:
        raise ApiError(502, "AgentUnreachable",
                       f"agent of node {task.spec.node_name} did not answer: {exc}") from None


async def relay(request: web.Request, upstream: aiohttp.ClientResponse, content_type: str,
                first: bytes = b"") -> web.StreamResponse:
    """The agent's answer passed on as it streams: its error as is, else its body (after
    `first`, if given)."""
    if upstream.status != 200:
        return web.Response(status=upstream.status, body=await upstream.read(),
                            content_type="application/json")
    response = web.StreamResponse(headers={"Content-Type": content_type})
    await response.prepare(request)
    if first:
        await response.write(first)
    async for chunk in upstream.content.iter_any():
        await response.write(chunk)
    await response.write_eof()
    return response


async def task_exec(request: web.Request) -> web.Response:
    authorize(request, Access("exec", "Task", request.match_info["name"]))
    body = await read_json(request)
    cmd = body.get("cmd") if isinstance(body, dict) else None
    if not isinstance(cmd, list) or not cmd or not all(isinstance(c, str) for c in cmd):
        raise bad_request('expected {"cmd": ["program", "arg", ...], "timeout": seconds}')
    url, secret, task = await _agent_for(request)
    headers = {"Authorization": f"Bearer {secret}"}
    try:
        async with aiohttp.ClientSession() as session, session.post(
                url + _agent_path(task, "exec"), json=body, headers=headers,
                timeout=aiohttp.ClientTimeout(total=float(body.get("timeout", 60)) + 10),
        ) as upstream:
            return web.Response(status=upstream.status, body=await upstream.read(),
                                content_type="application/json")
    except aiohttp.ClientError as exc:
        raise ApiError(502, "AgentUnreachable",
                       f"agent of node {task.spec.node_name} did not answer: {exc}") from None


def add_routes(router: web.UrlDispatcher) -> None:
    """Registered before the generic object routes, which would match these paths too."""
    router.add_post("/api/v1/nodes", register_node)
    router.add_put("/api/v1/nodes/{name}/status", node_status)
    router.add_post("/api/v1/nodes/{name}/agent-secret", agent_secret)
    router.add_put("/api/v1/tasks/{app}/{name}/status", task_status)
    router.add_get("/api/v1/tasks/{app}/{name}/logs", task_logs)
    router.add_post("/api/v1/tasks/{app}/{name}/exec", task_exec)
