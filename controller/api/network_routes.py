"""POST /api/v1/networks (a standalone network) and DELETE /api/v1/networks/NAME.

Listing, getting and watching networks go through the generic routes (objects.py).
Networks of an app are made by the network reconciler from the app's manifest, never
here; a standalone one is joined by apps that declare it ``external: true``.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from aiohttp import web

from controller.api.authz import authorize
from controller.api.body import read_json
from controller.api.errors import ApiError, bad_request, invalid
from controller.api.network_checks import read_cluster, subnet_clash, users_of
from controller.api.state import STORE
from controller.auth.policy import Access
from skiff.manifest.networks import subnet_problem
from skiff.manifest.normalize import NETWORK_NAME
from skiff.models.appspec import Ipam, IpamConfig, NetworkSpec
from skiff.models.codec import DecodeError, decode, encode
from skiff.models.kinds import NETWORK
from skiff.models.objects import Network, ObjectMeta

# The short form of a create: what `skiff network create` sends.
SIMPLE_KEYS = ("name", "subnet", "internal", "attachable", "labels", "driver")
DRIVERS = (None, "bridge", "overlay")  # all mean the cluster-wide VXLAN overlay


def _problem(path: str, message: str) -> ApiError:
    return invalid(f"{path}: {message}" if path else message,
                   [{"path": path, "message": message}])


def _simple(body: dict[str, Any]) -> Network:
    unknown = sorted(set(body) - set(SIMPLE_KEYS))
    if unknown:
        raise bad_request(f"unknown keys {', '.join(unknown)} (expected a Network object, "
                          f"or {{{', '.join(SIMPLE_KEYS)}}})")
    name, subnet, labels = body.get("name"), body.get("subnet"), body.get("labels") or {}
    if not isinstance(name, str):
        raise _problem("name", "a network needs a name (a string)")
    if subnet is not None and not isinstance(subnet, str):
        raise _problem("subnet", "must be a string like 10.8.0.0/24")
    for key in ("internal", "attachable"):
        if not isinstance(body.get(key, False), bool):
            raise _problem(key, "must be true or false")
    if not isinstance(labels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise _problem("labels", "must map strings to strings")
    driver = body.get("driver")
    if driver is not None and not isinstance(driver, str):
        raise _problem("driver", "must be a string")
    ipam = Ipam(config=[IpamConfig(subnet=subnet)]) if subnet else None
    spec = NetworkSpec(name=name, driver=driver, ipam=ipam,
                       internal=body.get("internal", False),
                       attachable=body.get("attachable", False), labels=dict(labels))
    return Network(metadata=ObjectMeta(name=name, labels=dict(labels)), spec=spec)


def _full(body: dict[str, Any]) -> Network:
    if body.get("kind", "Network") != "Network":
        raise bad_request(f"kind {body['kind']!r}: only Network objects are made here")
    data = dict(body)
    data.pop("status", None)  # the controller's to fill
    meta = data.get("metadata")
    spec = data.get("spec")
    if isinstance(meta, dict) and isinstance(meta.get("name"), str) and \
            isinstance(spec, dict | None):
        # The spec's name is the network's name: it may be left out.
        data["spec"] = {"name": meta["name"], **(spec if isinstance(spec, dict) else {})}
    try:
        return decode(Network, data)
    except DecodeError as exc:
        raise _problem(exc.path, f"not a valid Network: {exc.message}") from None


def _checked(net: Network) -> Network:
    """The network as it will be stored: names and addresses checked and normalised."""
    name, spec = net.metadata.name, net.spec
    if not NETWORK_NAME.fullmatch(name):
        raise _problem("metadata.name", f"network name {name!r} must be letters, digits, "
                                        "'_', '.' or '-', starting with a letter or digit "
                                        "(at most 128)")
    if spec.name != name:
        raise _problem("spec.name", f"{spec.name!r} must equal metadata.name {name!r}")
    if net.metadata.app is not None:
        raise _problem("metadata.app", "networks of an app are made from its manifest; "
                                       "a network made here belongs to no app")
    if spec.external:
        raise _problem("spec.external", "a network made here is not external (apps that "
                                        "join it declare it external)")
    if spec.driver not in DRIVERS:
        raise _problem("spec.driver", f"driver {spec.driver!r}: skiff networks are "
                                      "overlays spanning the cluster (bridge, overlay or "
                                      "unset)")
    configs = []
    for i, cfg in enumerate(spec.ipam.config if spec.ipam else []):
        path = f"spec.ipam.config[{i}]"
        for key, value in (("gateway", cfg.gateway), ("ip_range", cfg.ip_range)):
            try:
                if value is not None:
                    ipaddress.ip_network(value, strict=False)
            except ValueError:
                raise _problem(f"{path}.{key}", f"{value!r} is not an address") from None
        subnet = cfg.subnet
        if subnet is not None:
            try:
                subnet = str(ipaddress.ip_network(subnet, strict=False))
            except ValueError:
                raise _problem(f"{path}.subnet", f"{subnet!r} is not a CIDR subnet like "
                                                 "10.8.0.0/24") from None
            problem = subnet_problem(subnet)
            if problem:
                raise _problem(f"{path}.subnet", problem)
        configs.append(IpamConfig(subnet=subnet, gateway=cfg.gateway, ip_range=cfg.ip_range))
    ipam = Ipam(driver=spec.ipam.driver, config=configs) if spec.ipam else None
    spec = NetworkSpec(name=name, driver=spec.driver, driver_opts=spec.driver_opts, ipam=ipam,
                       internal=spec.internal, attachable=spec.attachable, labels=spec.labels)
    meta = ObjectMeta(name=name, labels=net.metadata.labels)
    return Network(metadata=meta, spec=spec)


async def create_network(request: web.Request) -> web.Response:
    authorize(request, Access("create", "Network"))
    body = await read_json(request)
    if not isinstance(body, dict):
        raise bad_request("expected a Network object or {name, subnet, internal, ...}")
    net = _checked(_full(body) if "metadata" in body or "spec" in body else _simple(body))
    name = net.metadata.name
    store = request.app[STORE]
    cluster = await read_cluster(store)
    if cluster.network(name) is not None:
        raise ApiError(409, "AlreadyExists", f"network {name} already exists")
    declared = cluster.declared_by(name)
    if declared is not None:
        raise ApiError(409, "AlreadyExists", f"network {name} belongs to app "
                                             f"{declared.metadata.name} (declared in its "
                                             "manifest)")
    subnet = net.spec.ipam.config[0].subnet if net.spec.ipam and net.spec.ipam.config \
        else None
    if subnet:
        why = subnet_clash(name, ipaddress.ip_network(subnet), None, cluster)
        if why:
            raise ApiError(409, "InUse", why, {"network": name, "subnet": subnet})
    stored = await store.create(net)  # a racing create of the same name: AlreadyExists
    return web.json_response(encode(stored), status=201)


async def delete_network(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    authorize(request, Access("delete", "Network", name))
    store = request.app[STORE]
    net: Network = await store.get(NETWORK, name)
    if net.metadata.app:
        raise ApiError(409, "OwnedByApp",
                       f"network {name} belongs to app {net.metadata.app}: delete the app, or "
                       "remove the network from its manifest and apply",
                       {"app": net.metadata.app})
    users = users_of(name, await read_cluster(store))
    if users:
        raise ApiError(409, "InUse",
                       f"network {name} is in use by {len(users)} service(s): "
                       f"{', '.join(users)}; disconnect them first (skiff network disconnect "
                       f"{name} APP/SERVICE) or remove it from their manifests",
                       {"services": users})
    raw_rv = request.query.get("resourceVersion")
    rv = net.metadata.resource_version
    if raw_rv:
        if not raw_rv.isdigit():
            raise bad_request(f"query parameter resourceVersion={raw_rv!r} is not an integer")
        rv = int(raw_rv)
    await store.delete(NETWORK, name, resource_version=rv)
    return web.json_response(encode(net))


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/api/v1/networks", create_network)
    router.add_delete("/api/v1/networks/{name}", delete_network)
