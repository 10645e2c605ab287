"""REST per kind: list, get, watch (NDJSON), update (compare-and-swap) and delete."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from typing import Any

from aiohttp import web

from controller.api.authz import authorize
from controller.api.body import read_json
from controller.api.errors import ApiError, bad_request, from_exception, invalid
from controller.api.network_checks import check_app
from controller.api.state import STORE, WATCHES
from controller.auth.policy import Access
from controller.store.objects import ObjectStore
from skiff.manifest import ManifestError, load_document, to_compose
from skiff.models.codec import DecodeError, decode, encode
from skiff.models.kinds import APP, NODE, Kind, UnknownKind, kind_for
from skiff.models.objects import API_VERSION, App, Node

BOOKMARK_SECONDS = 10.0


def _kind(request: web.Request) -> Kind:
    try:
        return kind_for(request.match_info["kind"])
    except UnknownKind as exc:
        raise ApiError(404, "NotFound", str(exc)) from None


def _name(request: web.Request, kind: Kind) -> tuple[str, str | None]:
    app = request.match_info.get("app")
    name = request.match_info["name"]
    if kind.namespaced and app is None:
        raise bad_request(f"{kind.plural} are named APP/NAME")
    if not kind.namespaced and app is not None:
        raise ApiError(404, "NotFound", f"{kind.plural} are not named APP/NAME")
    return name, app


def _int_param(request: web.Request, key: str) -> int | None:
    raw = request.query.get(key)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"query parameter {key}={raw!r} is not an integer") from None
    if value < 0:
        raise bad_request(f"query parameter {key}={raw!r} must not be negative")
    return value


def _matches(request: web.Request, obj: dict[str, Any]) -> bool:
    """Filters by ?app=, ?service=, ?node= on an object's JSON."""
    q = request.query
    if "app" in q and obj.get("metadata", {}).get("app") != q["app"]:
        return False
    spec = obj.get("spec") or {}
    if "service" in q and spec.get("service") != q["service"]:
        return False
    return not ("node" in q and spec.get("nodeName") != q["node"])


async def list_or_watch(request: web.Request) -> web.StreamResponse:
    watching = request.query.get("watch", "").lower() in ("1", "true", "yes")
    kind = _kind(request)
    authorize(request, Access("watch" if watching else "list", kind.name,
                              node=request.query.get("node")))
    store = request.app[STORE]
    if watching:
        return await _watch(request, store, kind)
    app = request.query.get("app")
    head = {"kind": f"{kind.name}List", "apiVersion": API_VERSION,
            "metadata": {"resourceVersion": 0}}
    if "service" in request.query or "node" in request.query:
        items, revision = await store.list_raw(kind, app)
        head["metadata"]["resourceVersion"] = revision
        head["items"] = [o for o in items if _matches(request, o)]
        return web.json_response(head)
    # The common case is a plain list: stored JSON goes out as it is, unparsed.
    raw, revision = await store.list_json(kind, app)
    head["metadata"]["resourceVersion"] = revision
    prefix = json.dumps(head).encode()[:-1]  # without the closing brace
    body = b"".join((prefix, b',"items":[', b",".join(raw), b"]}"))
    return web.Response(body=body, content_type="application/json")


_NOTHING = object()


async def _watch(request: web.Request, store: ObjectStore, kind: Kind) -> web.StreamResponse:
    """Stream changes as lines of JSON. Without resourceVersion the current objects come
    first as ADDED; with one, changes after it (410 Expired if it was compacted)."""
    since = _int_param(request, "resourceVersion")
    app = request.query.get("app")
    initial: list[dict[str, Any]] = []
    listed = since is None
    if since is None:
        initial, since = await store.list_raw(kind, app)
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=1024)

    async def pump() -> None:
        try:
            async for event in store.watch(kind, app, resource_version=since):
                await queue.put(event)
        except Exception as exc:
            await queue.put(exc)
        else:
            await queue.put(None)

    # Refuse a too-old resourceVersion as HTTP 410 before the stream starts; history
    # compacted after this point arrives as an ERROR line instead.
    await store.check_history(since + 1)
    pumper = asyncio.create_task(pump())
    me = asyncio.current_task()
    assert me is not None
    request.app[WATCHES].add(me)
    item: Any = _NOTHING
    try:
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        last = since

        async def send(event_type: str, obj: dict[str, Any]) -> None:
            line = json.dumps({"type": event_type, "object": obj}).encode() + b"\n"
            await response.write(line)

        if listed:
            for obj in initial:
                if _matches(request, obj):
                    await send("ADDED", obj)
            # Marks the end of the initial list: resume from here, not from an object's.
            await send("BOOKMARK", {"metadata": {"resourceVersion": since}})
        while True:
            if item is _NOTHING:
                try:
                    item = await asyncio.wait_for(queue.get(), BOOKMARK_SECONDS)
                except TimeoutError:
                    await send("BOOKMARK", {"metadata": {"resourceVersion": last}})
                    continue
            if item is None:
                break
            if isinstance(item, Exception):
                await send("ERROR", from_exception(item).body())
                break
            last = item.revision
            obj = encode(item.object)
            if _matches(request, obj):
                # A deleted object's own version is older than its deletion; resume after it.
                obj["metadata"]["resourceVersion"] = item.revision
                await send(item.type, obj)
            item = _NOTHING
        return response
    except ConnectionResetError:
        return response  # the client went away
    finally:
        request.app[WATCHES].discard(me)
        pumper.cancel()
        with contextlib.suppress(BaseException):
            await pumper


async def get_object(request: web.Request) -> web.Response:
    kind = _kind(request)
    name, app = _name(request, kind)
    obj = await request.app[STORE].get_raw(kind, name, app)
    node = (obj.get("spec") or {}).get("nodeName") if kind.name == "Task" else None
    authorize(request, Access("get", kind.name, name, node=node))
    return web.json_response(obj)


async def delete_object(request: web.Request) -> web.Response:
    kind = _kind(request)
    authorize(request, Access("delete", kind.name, request.match_info["name"]))
    if kind.name == "Service":
        raise ApiError(405, "MethodNotAllowed",
                       "services belong to their app: remove the service from the manifest "
                       "and apply, or delete the app")
    name, app = _name(request, kind)
    store = request.app[STORE]
    obj = await store.get(kind, name, app)
    await store.delete(kind, name, app, resource_version=_int_param(request, "resourceVersion"))
    return web.json_response(encode(obj))


async def update_object(request: web.Request) -> web.Response:
    """Replace labels and spec of an app or node, if its resourceVersion still matches."""
    kind = _kind(request)
    authorize(request, Access("update", kind.name, request.match_info["name"]))
    if kind not in (APP, NODE):
        raise ApiError(405, "MethodNotAllowed",
                       f"{kind.plural} are written by the controller; change the app instead")
    name, app = _name(request, kind)
    body = await read_json(request)
    try:
        sent = decode(kind.cls, body)
    except DecodeError as exc:
        raise invalid(f"not a valid {kind.name}: {exc}",
                      [{"path": exc.path, "message": exc.message}]) from None
    if sent.metadata.name != name:
        raise bad_request(f"metadata.name {sent.metadata.name!r} does not match the URL {name!r}")
    if not sent.metadata.resource_version:
        raise bad_request("an update needs metadata.resourceVersion (read, change, write back)")
    store = request.app[STORE]
    current = await store.get(kind, name, app)
    meta = dataclasses.replace(current.metadata, labels=sent.metadata.labels,
                               resource_version=sent.metadata.resource_version)
    if isinstance(sent, App):
        spec = _validated_app_spec(sent)
        # `skiff network connect` edits an app this way: the same checks as an apply.
        await check_app(store, spec, f"apps/{name}")
        meta = dataclasses.replace(meta, generation=meta.generation + (spec != current.spec))
        new: Any = dataclasses.replace(current, metadata=meta, spec=spec)
    else:
        assert isinstance(sent, Node)
        new = dataclasses.replace(current, metadata=meta, spec=sent.spec)
    stored = await store.update(new)
    return web.json_response(encode(stored))


def _validated_app_spec(app: App) -> Any:
    try:
        result = load_document(to_compose(app.spec), source=f"apps/{app.metadata.name}")
    except ManifestError as exc:
        raise invalid(str(exc), [dataclasses.asdict(p) for p in exc.problems]) from None
    if result.app.name != app.metadata.name:
        raise bad_request("spec.name must equal metadata.name")
    return result.app
