"""A structurally valid compose document → AppSpec, checking what a schema cannot:
port and volume strings, references between keys, names and limits.

Problems are collected per key so one run reports them all; a key that fails is left
out of the result, and the caller raises if there was any problem.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from skiff.manifest import mounts, ports
from skiff.manifest.services_extra import capability, restart_policy, stop_signal
from skiff.manifest.units import format_duration, parse_bytes, parse_duration
from skiff.models.appspec import (
    AppSpec,
    Deploy,
    Ipam,
    IpamConfig,
    Mount,
    NetworkSpec,
    PortMapping,
    ResourceLimits,
    ResourceReservations,
    Resources,
    ServiceNetwork,
    ServiceSpec,
    VolumeSpec,
)

MAX_REPLICAS = 1000
MAX_SERVICES = 200
APP_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
SERVICE_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")
HOSTNAME = re.compile(r"^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
                      r"(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$")

KeyPath = tuple[str | int, ...]
T = TypeVar("T")


class Collector:
    """Records problems as (path, at_key, message); ``attempt`` turns a ValueError raised
    while reading one key into a problem at that key."""

    def __init__(self) -> None:
        self.problems: list[tuple[KeyPath, bool, str]] = []
        self.warnings: list[str] = []

    def add(self, path: KeyPath, message: str, at_key: bool = False) -> None:
        self.problems.append((path, at_key, message))

    def attempt(self, path: KeyPath, fn: Callable[[], T]) -> T | None:
        try:
            return fn()
        except ValueError as exc:
            self.add(path, str(exc))
            return None


def project_name_from(folder: Path) -> str:
    """Compose's rule: the folder's name, lowercased, invalid characters dropped."""
    name = re.sub(r"[^a-z0-9_-]", "", folder.resolve().name.lower()).lstrip("_-")
    return name[:63] or "default"


def to_int(value: Any, what: str, low: int, high: int | None = None) -> int:
    if isinstance(value, str) and re.fullmatch(r"[-+]?\d+", value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{what} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        limit = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ValueError(f"{what} must be {limit}, got {value}")
    return value


def to_bool(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no"):
        return value.lower() in ("true", "yes")
    raise ValueError(f"{what} must be true or false, got {value!r}")


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def string_map(value: Any, what: str, environ: Mapping[str, str] | None = None
               ) -> dict[str, str]:
    """A map, or a list of ``K=V`` (``K`` alone: taken from the environment if set)."""
    out: dict[str, str] = {}
    items = value.items() if isinstance(value, dict) else []
    if isinstance(value, list):
        pairs = []
        for entry in value:
            key, sep, val = entry.partition("=")
            pairs.append((key, val if sep else None))
        items = pairs
    for key, val in items:
        if not key:
            raise ValueError(f"{what} has an entry without a name")
        if val is None:
            if environ is not None and key in environ:
                out[key] = environ[key]
            continue  # unset: left out, as compose does
        out[key] = _scalar(val)
    return out


def _command(value: Any, what: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"{what} is not a valid command line: {exc}") from None
    return [str(v) for v in value]


def _cpus(value: Any, what: str) -> float:
    try:
        cpus = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number of CPUs, got {value!r}") from None
    if not 0 < cpus <= 4096:
        raise ValueError(f"{what} must be above 0, got {value!r}")
    return cpus


def _resources(raw: dict[str, Any], path: KeyPath, c: Collector) -> Resources | None:
    limits = reservations = None
    if "limits" in raw:
        lim = raw["limits"]
        lp = (*path, "limits")
        limits = ResourceLimits(
            cpus=c.attempt((*lp, "cpus"), lambda: _cpus(lim["cpus"], "cpus"))
            if "cpus" in lim else None,
            memory=c.attempt((*lp, "memory"), lambda: parse_bytes(lim["memory"]))
            if "memory" in lim else None,
            pids=c.attempt((*lp, "pids"), lambda: to_int(lim["pids"], "pids", 1))
            if "pids" in lim else None)
    if "reservations" in raw:
        res = raw["reservations"]
        rp = (*path, "reservations")
        reservations = ResourceReservations(
            cpus=c.attempt((*rp, "cpus"), lambda: _cpus(res["cpus"], "cpus"))
            if "cpus" in res else None,
            memory=c.attempt((*rp, "memory"), lambda: parse_bytes(res["memory"]))
            if "memory" in res else None)
    if limits is None and reservations is None:
        return None
    return Resources(limits=limits, reservations=reservations)


def _deploy(raw: dict[str, Any], path: KeyPath, c: Collector) -> Deploy:
    replicas = 1
    if "replicas" in raw:
        replicas = c.attempt((*path, "replicas"), lambda: to_int(
            raw["replicas"], "replicas", 0, MAX_REPLICAS)) or 0
    resources = _resources(raw["resources"], (*path, "resources"), c) \
        if "resources" in raw else None
    labels = c.attempt((*path, "labels"), lambda: string_map(raw["labels"], "labels")) \
        if "labels" in raw else None
    return Deploy(replicas=replicas, resources=resources, labels=labels or {})


def _ports(raw: list[Any], path: KeyPath, c: Collector) -> list[PortMapping]:
    out: list[PortMapping] = []
    seen: dict[tuple[Any, ...], int] = {}
    for i, entry in enumerate(raw):
        parsed = c.attempt((*path, i), lambda e=entry: (
            ports.parse_long(_port_entry(e)) if isinstance(e, dict) else ports.parse_short(e)))
        for mapping in parsed or []:
            if mapping.published is not None:
                key = (mapping.published, mapping.protocol, mapping.host_ip)
                if key in seen:
                    c.add((*path, i), f"port {mapping.published}/{mapping.protocol} is "
                                      f"published twice (also by ports[{seen[key]}])")
                    continue
                seen[key] = i
            out.append(mapping)
    if len(out) > ports.MAX_PORTS_PER_SERVICE:
        c.add(path, f"more than {ports.MAX_PORTS_PER_SERVICE} port mappings")
    return out


def _port_entry(entry: dict[str, Any]) -> dict[str, Any]:
    fixed = dict(entry)
    fixed["target"] = to_int(entry["target"], "target", 1, 65535)
    return fixed


def _volumes(raw: list[Any], path: KeyPath, c: Collector, declared: Mapping[str, Any],
             base_dir: Path | None, service: str) -> list[Mount]:
    out: list[Mount] = []
    targets: dict[str, int] = {}
    for i, entry in enumerate(raw):
        mount = c.attempt((*path, i), lambda e=entry: (
            mounts.parse_long(e, base_dir) if isinstance(e, dict)
            else mounts.parse_short(e, base_dir)))
        if mount is None:
            continue
        if mount.type == "volume" and mount.source and mount.source not in declared:
            c.add((*path, i), f'service "{service}" refers to undefined volume '
                              f'"{mount.source}": declare it under the top-level volumes')
            continue
        if mount.target in targets:
            c.add((*path, i), f"target {mount.target} is already mounted by "
                              f"volumes[{targets[mount.target]}]")
            continue
        targets[mount.target] = i
        out.append(mount)
    return out


def _networks(raw: Any, path: KeyPath, c: Collector, declared: Mapping[str, Any],
              service: str) -> dict[str, ServiceNetwork]:
    if raw is None:
        return {"default": ServiceNetwork()}
    entries = {name: None for name in raw} if isinstance(raw, list) else raw
    out: dict[str, ServiceNetwork] = {}
    for name, opts in entries.items():
        if name not in declared and name != "default":
            c.add((*path, name), f'service "{service}" refers to undefined network '
                                 f'"{name}": declare it under the top-level networks',
                  at_key=isinstance(raw, dict))
            continue
        opts = opts or {}
        for alias in opts.get("aliases", []):
            if not HOSTNAME.match(alias):
                c.add((*path, name, "aliases"), f"alias {alias!r} is not a valid DNS name")
        out[name] = ServiceNetwork(aliases=list(opts.get("aliases", [])),
                                   ipv4_address=opts.get("ipv4_address"))
    return out


def service_spec(name: str, raw: dict[str, Any], path: KeyPath, c: Collector,
                 app: dict[str, Any], base_dir: Path | None,
                 environ: Mapping[str, str] | None) -> ServiceSpec:
    def get(key: str, fn: Callable[[Any], T], default: T) -> T:
        if key not in raw:
            return default
        value = c.attempt((*path, key), lambda: fn(raw[key]))
        return default if value is None else value

    def checked(regex: re.Pattern[str], what: str) -> Callable[[Any], str]:
        def check(v: Any) -> str:
            if not regex.match(v):
                raise ValueError(f"{v!r} is not a valid {what}")
            return v
        return check

    def absolute(v: str) -> str:
        if not v.startswith("/"):
            raise ValueError(f"working_dir {v!r} must be an absolute path")
        return v

    grace = get("stop_grace_period", lambda v: format_duration(parse_duration(v)), None)
    return ServiceSpec(
        image=raw["image"],
        command=get("command", lambda v: _command(v, "command"), None),
        entrypoint=get("entrypoint", lambda v: _command(v, "entrypoint"), None),
        environment=get("environment", lambda v: string_map(v, "environment", environ), {}),
        working_dir=get("working_dir", absolute, None),
        user=raw.get("user"),
        hostname=get("hostname", checked(HOSTNAME, "hostname"), None),
        labels=get("labels", lambda v: string_map(v, "labels"), {}),
        ports=_ports(raw.get("ports", []), (*path, "ports"), c),
        volumes=_volumes(raw.get("volumes", []), (*path, "volumes"), c,
                         app.get("volumes") or {}, base_dir, name),
        networks=_networks(raw.get("networks"), (*path, "networks"), c,
                           app.get("networks") or {}, name),
        deploy=_deploy(raw.get("deploy", {}), (*path, "deploy"), c),
        restart=get("restart", restart_policy, None),
        stop_signal=get("stop_signal", stop_signal, None),
        stop_grace_period=grace,
        cap_add=[x for v in raw.get("cap_add", []) if (x := c.attempt(
            (*path, "cap_add"), lambda v=v: capability(v)))],
        cap_drop=[x for v in raw.get("cap_drop", []) if (x := c.attempt(
            (*path, "cap_drop"), lambda v=v: capability(v)))],
        privileged=get("privileged", lambda v: to_bool(v, "privileged"), False),
        read_only=get("read_only", lambda v: to_bool(v, "read_only"), False),
        init=get("init", lambda v: to_bool(v, "init"), False),
    )


def _network(app: str, key: str, raw: dict[str, Any] | None, path: KeyPath,
             c: Collector) -> NetworkSpec:
    raw = raw or {}
    external = c.attempt((*path, "external"), lambda: to_bool(raw.get("external", False),
                                                              "external")) or False
    ipam = None
    if "ipam" in raw:
        ipam = Ipam(driver=raw["ipam"].get("driver"),
                    config=[IpamConfig(**cfg) for cfg in raw["ipam"].get("config", [])])
    return NetworkSpec(
        name=raw.get("name") or (key if external else f"{app}_{key}"),
        driver=raw.get("driver"),
        driver_opts={k: str(v) for k, v in raw.get("driver_opts", {}).items()},
        ipam=ipam,
        internal=c.attempt((*path, "internal"), lambda: to_bool(
            raw.get("internal", False), "internal")) or False,
        attachable=c.attempt((*path, "attachable"), lambda: to_bool(
            raw.get("attachable", False), "attachable")) or False,
        external=external,
        labels=c.attempt((*path, "labels"), lambda: string_map(raw.get("labels", {}),
                                                               "labels")) or {},
    )


def _volume(app: str, key: str, raw: dict[str, Any] | None, path: KeyPath,
            c: Collector) -> VolumeSpec:
    raw = raw or {}
    c.attempt((), lambda: mounts.check_volume_name(key))
    external = c.attempt((*path, "external"), lambda: to_bool(raw.get("external", False),
                                                              "external")) or False
    return VolumeSpec(
        name=raw.get("name") or (key if external else f"{app}_{key}"),
        driver=raw.get("driver"),
        driver_opts={k: str(v) for k, v in raw.get("driver_opts", {}).items()},
        external=external,
        labels=c.attempt((*path, "labels"), lambda: string_map(raw.get("labels", {}),
                                                               "labels")) or {},
    )


def normalize(doc: dict[str, Any], c: Collector, *, base_dir: Path | None,
              environ: Mapping[str, str] | None, project_name: str | None) -> AppSpec:
    name = project_name or doc.get("name")
    if name is None:
        name = project_name_from(base_dir) if base_dir is not None else ""
        if not name:
            c.add((), "the app needs a name (top-level name key)")
    elif not APP_NAME.match(name):
        c.add(("name",), f"app name {name!r} must be lowercase letters, digits, '-' or '_', "
                         "starting with a letter or digit, at most 63 characters")
    if "version" in doc:
        c.warnings.append("the top-level version key is obsolete and ignored")
    services: dict[str, ServiceSpec] = {}
    raw_services = doc["services"]
    if len(raw_services) > MAX_SERVICES:
        c.add(("services",), f"more than {MAX_SERVICES} services in one app")
    for svc_name, raw in raw_services.items():
        path = ("services", svc_name)
        if not SERVICE_NAME.match(svc_name):
            c.add(path, f"service name {svc_name!r} must be letters, digits, '.', '-' or '_' "
                        "(at most 63)", at_key=True)
            continue
        services[svc_name] = service_spec(svc_name, raw, path, c, doc, base_dir, environ)
    networks = {k: _network(name, k, v, ("networks", k), c)
                for k, v in (doc.get("networks") or {}).items()}
    if any("default" in s.networks for s in services.values()) and "default" not in networks:
        networks["default"] = NetworkSpec(name=f"{name}_default")
    volumes = {k: _volume(name, k, v, ("volumes", k), c)
               for k, v in (doc.get("volumes") or {}).items()}
    return AppSpec(name=name, services=services, networks=networks, volumes=volumes)
