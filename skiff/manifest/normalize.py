"""A schema-valid compose document → AppSpec: the app's name, its services (see
services.py), and the top-level networks and volumes with their default names.

Problems are collected, not raised, so one run reports them all; the caller raises if
there was any.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from skiff.manifest import dependencies
from skiff.manifest import networks as network_checks
from skiff.manifest.convert import Collector, scalar_text, string_map, to_bool
from skiff.manifest.errors import KeyPath, quote
from skiff.manifest.mounts import NAME
from skiff.manifest.services import Context, service_spec
from skiff.models.appspec import AppSpec, Ipam, IpamConfig, NetworkSpec, ServiceSpec, VolumeSpec

MAX_SERVICES = 200
APP_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
SERVICE_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}")
NETWORK_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}")  # a cluster network's name


def project_name_from(folder: Path) -> str:
    """Compose's rule: the folder's name, lowercased, invalid characters dropped ("" when
    nothing is left)."""
    name = re.sub(r"[^a-z0-9_-]", "", folder.name.lower()).lstrip("_-")
    return name[:63]


def _app_name(doc: dict[str, Any], c: Collector, base_dir: Path | None,
              project_name: str | None) -> str:
    if project_name is not None:
        if not APP_NAME.fullmatch(project_name):
            c.add((), f"project name {quote(project_name)} must be lowercase letters, "
                      "digits, '-' or '_', starting with a letter or digit (at most 63)")
        return project_name
    if "name" in doc:
        name = doc["name"]
        if not APP_NAME.fullmatch(name):
            c.add(("name",), f"{quote(name)} must be lowercase letters, digits, '-' or '_', "
                             "starting with a letter or digit (at most 63)")
        return str(name)
    name = project_name_from(base_dir) if base_dir is not None else ""
    if not name:
        where = f"from the folder name {quote(base_dir.name)}" if base_dir else "here"
        c.add((), f"the app needs a name: add a top-level name key (none can be made {where})")
    return name


def _str_map(raw: Mapping[str, Any], key: str, path: KeyPath, c: Collector) -> dict[str, str]:
    return c.read(raw, key, path, lambda v: {k: scalar_text(x) for k, x in v.items()}, {})


def _network_address(text: str, kind: str) -> str:
    try:
        if kind == "gateway":
            return str(ipaddress.ip_address(text))
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        what = "an IP address" if kind == "gateway" else "a CIDR subnet like 10.8.0.0/24"
        raise ValueError(f"{quote(text)} is not {what}") from None


def _ipam(raw: dict[str, Any], path: KeyPath, c: Collector) -> Ipam | None:
    configs = []
    for i, cfg in enumerate(raw.get("config") or []):
        where = (*path, "config", i)
        configs.append(IpamConfig(**{k: c.read(cfg, k, where, lambda v, k=k: _network_address(
            v, k), None) for k in ("subnet", "gateway", "ip_range")}))
    ipam = Ipam(driver=raw.get("driver"), config=configs)
    return ipam if ipam != Ipam() else None  # an empty ipam is none (stable round trip)


def _network(app: str, key: str, raw: dict[str, Any] | None, c: Collector) -> NetworkSpec:
    path: KeyPath = ("networks", key)
    raw = raw or {}
    if not NAME.fullmatch(key):
        c.add(path, f"network name {quote(key)} must be letters, digits, '_', '.' or '-', "
                    "starting with a letter or digit", at_key=True)
    external = c.read(raw, "external", path, to_bool, False)
    given = raw.get("name")
    if given is not None and not NETWORK_NAME.fullmatch(given):
        # The cluster name is a URL segment and an etcd key: no '/', no spaces.
        c.add((*path, "name"), f"network name {quote(given)} must be letters, digits, '_', "
                               "'.' or '-', starting with a letter or digit (at most 128)")
    return NetworkSpec(
        # External networks exist already, under their own name; ours are per app.
        name=raw.get("name") or (key if external else f"{app}_{key}"),
        driver=raw.get("driver"),
        driver_opts=_str_map(raw, "driver_opts", path, c),
        ipam=_ipam(raw["ipam"], (*path, "ipam"), c) if raw.get("ipam") else None,
        internal=c.read(raw, "internal", path, to_bool, False),
        attachable=c.read(raw, "attachable", path, to_bool, False),
        external=external,
        labels=c.read(raw, "labels", path, string_map, {}),
    )


def _volume(app: str, key: str, raw: dict[str, Any] | None, c: Collector) -> VolumeSpec:
    path: KeyPath = ("volumes", key)
    raw = raw or {}
    if not NAME.fullmatch(key):
        c.add(path, f"volume name {quote(key)} must be letters, digits, '_', '.' or '-', "
                    "starting with a letter or digit", at_key=True)
    external = c.read(raw, "external", path, to_bool, False)
    return VolumeSpec(
        name=raw.get("name") or (key if external else f"{app}_{key}"),
        driver=raw.get("driver"),
        driver_opts=_str_map(raw, "driver_opts", path, c),
        external=external,
        labels=c.read(raw, "labels", path, string_map, {}),
    )


def _enabled(raw_services: Mapping[str, Any], services: dict[str, ServiceSpec],
             environ: Mapping[str, str] | None) -> dict[str, ServiceSpec]:
    """compose profiles: a service with `profiles` runs only when one of them is active
    (COMPOSE_PROFILES, comma-separated; `--profile` sets it)."""
    active = {p.strip() for p in (environ or {}).get("COMPOSE_PROFILES", "").split(",")
              if p.strip()}
    return {name: spec for name, spec in services.items()
            if not (raw_services[name] or {}).get("profiles")
            or active & set(raw_services[name]["profiles"])}


def normalize(doc: dict[str, Any], c: Collector, *, base_dir: Path | None,
              environ: Mapping[str, str] | None, project_name: str | None) -> AppSpec:
    """``doc`` has passed the JSON Schema; everything else is checked here."""
    name = _app_name(doc, c, base_dir, project_name)
    if "version" in doc:
        c.warn(("version",), "the top-level version key is obsolete and ignored")
    raw_services = doc["services"]
    if len(raw_services) > MAX_SERVICES:
        c.add(("services",), f"more than {MAX_SERVICES} services in one app")
    ctx = Context(volumes=doc.get("volumes") or {}, networks=doc.get("networks") or {},
                  base_dir=base_dir, environ=environ, app=name)
    services: dict[str, ServiceSpec] = {}
    for svc_name, raw in raw_services.items():
        path = ("services", svc_name)
        if not SERVICE_NAME.fullmatch(svc_name):
            c.add(path, f"service name {quote(svc_name)} must be letters, digits, '.', '-' "
                        "or '_', starting with a letter or digit (at most 63)", at_key=True)
            continue
        services[svc_name] = service_spec(svc_name, raw, path, c, ctx)
    services = _enabled(raw_services, services, environ)
    dependencies.check(raw_services, services, c)
    networks = {k: _network(name, k, v, c) for k, v in ctx.networks.items()}
    if any("default" in s.networks for s in services.values()) and "default" not in networks:
        networks["default"] = NetworkSpec(name=f"{name}_default")
    volumes = {k: _volume(name, k, v, c) for k, v in ctx.volumes.items()}
    app = AppSpec(name=name, services=services, networks=networks, volumes=volumes)
    network_checks.check(app, raw_services, c)
    return app
