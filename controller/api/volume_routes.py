"""Volumes: POST /api/v1/volumes (`skiff volume create`), DELETE /api/v1/volumes/NAME
(`skiff volume rm`), PUT /api/v1/volumes/NAME/status (the agent of its node).

Listing, getting and watching go through the generic routes. A volume lives on one node;
removing one that has data is two steps, so that data is only ever removed on request:
the API marks it `deleting`, then that node's agent removes the folder and deletes the
object (docs/volumes.md). A volume still named by a service, or by a task that has not
ended, is never removed: the error names them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from aiohttp import web

from controller.api.authz import authorize
from controller.api.body import read_json
from controller.api.errors import ApiError, bad_request, invalid
from controller.api.middleware import PRINCIPAL
from controller.api.state import STORE
from controller.auth.policy import Access
from controller.store.errors import Conflict, NotFound
from controller.store.objects import ObjectStore
from skiff.manifest.mounts import MountError, check_volume_name
from skiff.models.codec import DecodeError, decode, encode
from skiff.models.kinds import NODE, SERVICE, TASK, VOLUME
from skiff.models.objects import (
    TERMINAL_STATES,
    ObjectMeta,
    Service,
    Task,
    Volume,
    VolumeSpec,
    VolumeStatus,
)

CREATE_KEYS = ("name", "driver", "driverOpts", "labels", "node")
DRIVERS = ("local",)
MAX_NAME = 255
_CAS_ATTEMPTS = 10


def _problem(path: str, message: str) -> ApiError:
    return invalid(f"{path}: {message}", [{"path": path, "message": message}])


def _string_map(body: dict[str, Any], key: str) -> dict[str, str]:
    value = body.get(key) or {}
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise _problem(key, "must map strings to strings")
    return dict(value)


def checked_name(name: Any) -> str:
    if not isinstance(name, str):
        raise _problem("name", "a volume needs a name (a string)")
    try:
        check_volume_name(name)
    except MountError as exc:
        raise _problem("name", str(exc)) from None
    if len(name) > MAX_NAME:
        raise _problem("name", f"at most {MAX_NAME} characters")
    return name


def volume_users(name: str, services: list[Service], tasks: list[Task]) -> list[str]:
    """Who still needs volume `name`: services naming it, tasks not yet ended."""
    users = [f"service {s.metadata.app}/{s.metadata.name}" for s in services
             if any(m.type == "volume" and m.source == name for m in s.spec.volumes)]
    users += [f"task {t.metadata.app}/{t.metadata.name}" for t in tasks
              if t.status.state not in TERMINAL_STATES
              and any(m.type == "volume" and m.source == name
                      for m in t.spec.container.volumes)]
    return users


async def create_volume(request: web.Request) -> web.Response:
    authorize(request, Access("create", "Volume"))
    body = await read_json(request)
    if not isinstance(body, dict):
        raise bad_request("expected {name, driver, driverOpts, labels, node}")
    unknown = sorted(set(body) - set(CREATE_KEYS))
    if unknown:
        raise bad_request(f"unknown keys {', '.join(unknown)} (expected "
                          f"{', '.join(CREATE_KEYS)})")
    name = checked_name(body.get("name"))
    driver = body.get("driver") or "local"
    if driver not in DRIVERS:
        raise _problem("driver", f"driver {driver!r}: skiff has the local driver only "
                                 "(a folder on the volume's node)")
    store: ObjectStore = request.app[STORE]
    node = body.get("node") or ""
    if not isinstance(node, str):
        raise _problem("node", "must be a node's name")
    if node:
        try:
            await store.get(NODE, node)
        except NotFound:
            raise _problem("node", f"no node {node}") from None
    labels = _string_map(body, "labels")
    vol = Volume(metadata=ObjectMeta(name=name, labels=labels),
                 spec=VolumeSpec(driver=driver, driver_opts=_string_map(body, "driverOpts"),
                                 node=node))
    stored = await store.create(vol)  # AlreadyExists (409) names it
    return web.json_response(encode(stored), status=201)


async def delete_volume(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    store: ObjectStore = request.app[STORE]
    vol: Volume = await store.get(VOLUME, name)
    authorize(request, Access("delete", "Volume", name, node=vol.spec.node or None))
    if request[PRINCIPAL].role == "node":
        # An agent deletes a volume once it has removed its data, and only then.
        if not vol.spec.deleting:
            raise ApiError(409, "Conflict", f"volume {name} is not being removed")
        await store.delete(VOLUME, name, resource_version=vol.metadata.resource_version)
        return web.json_response(encode(vol))
    services, _ = await store.list(SERVICE)
    tasks, _ = await store.list(TASK)
    users = volume_users(name, services, tasks)
    if users:
        raise ApiError(409, "InUse", f"volume {name} is in use by {', '.join(users)}",
                       {"users": users})
    force = request.query.get("force") in ("1", "true")
    if force or not vol.status.ready:
        # Never made on a node (or the user gives its data up): the object is all there is.
        await store.delete(VOLUME, name, resource_version=vol.metadata.resource_version)
        return web.json_response({"volume": encode(vol), "removed": True})
    marked = await _update(store, name, lambda v: dataclasses.replace(
        v, spec=dataclasses.replace(v.spec, deleting=True)))
    return web.json_response({"volume": encode(marked), "removed": False}, status=202)


async def _update(store: ObjectStore, name: str, change: Any) -> Volume:
    for _ in range(_CAS_ATTEMPTS):
        current: Volume = await store.get(VOLUME, name)
        try:
            return await store.update(change(current))
        except Conflict:
            continue
    raise ApiError(409, "Conflict", f"volume {name} is changing too fast; retry")


async def volume_status(request: web.Request) -> web.Response:
    """The agent that made the folder reports it. The first to make it claims the volume
    for its node (`spec.node`), which the scheduler then keeps every user of it on."""
    name = request.match_info["name"]
    store: ObjectStore = request.app[STORE]
    try:
        status = decode(VolumeStatus, await read_json(request))
    except DecodeError as exc:
        raise invalid(f"not a valid VolumeStatus: {exc}",
                      [{"path": exc.path, "message": exc.message}]) from None
    vol: Volume = await store.get(VOLUME, name)
    authorize(request, Access("status", "Volume", name, node=vol.spec.node or status.node))
    if not status.node or (vol.spec.node and status.node != vol.spec.node):
        raise ApiError(409, "Conflict", f"volume {name} lives on node "
                                        f"{vol.spec.node or '(none yet)'}, not "
                                        f"{status.node or '(no node given)'}")

    def change(v: Volume) -> Volume:
        if v.spec.node and v.spec.node != status.node:
            raise ApiError(409, "Conflict", f"volume {name} lives on node {v.spec.node}")
        return dataclasses.replace(v, spec=dataclasses.replace(v.spec, node=status.node),
                                   status=status)

    stored = await _update(store, name, change)
    return web.json_response(encode(stored))


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/api/v1/volumes", create_volume)
    router.add_delete("/api/v1/volumes/{name}", delete_volume)
    router.add_put("/api/v1/volumes/{name}/status", volume_status)
