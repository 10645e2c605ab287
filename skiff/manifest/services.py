"""One schema-valid service mapping → ServiceSpec, checking what a schema cannot:
port and volume strings, references to top-level volumes and networks, limits."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skiff.manifest import builds, mounts, placement, ports
from skiff.manifest.convert import (
    Collector,
    command_line,
    string_map,
    to_bool,
    to_float,
    to_int,
)
from skiff.manifest.dotenv import parse_dotenv
from skiff.manifest.errors import KeyPath, quote
from skiff.manifest.services_extra import capability, restart_policy, stop_signal
from skiff.manifest.units import format_duration, parse_bytes, parse_duration
from skiff.models.appspec import (
    BuildSpec,
    Deploy,
    Healthcheck,
    Mount,
    PortMapping,
    ResourceLimits,
    ResourceReservations,
    Resources,
    RestartPolicy,
    ServiceNetwork,
    ServiceSpec,
    TmpfsOptions,
    UpdateConfig,
)

MAX_REPLICAS = 1000
MAX_CPUS = 4096.0
HOSTNAME = re.compile(r"(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
                      r"(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*")


@dataclass(frozen=True)
class Context:
    """What a service is read against: the whole document and where it came from."""

    volumes: Mapping[str, Any]  # top-level volumes, as written
    networks: Mapping[str, Any]  # top-level networks, as written
    base_dir: Path | None  # the manifest's folder; None for documents from the API
    environ: Mapping[str, str] | None  # for bare environment entries ("- HOME")
    app: str = ""  # the app's name: a built image without `image:` is <app>-<service>


def _limits(raw: dict[str, Any], path: KeyPath, c: Collector) -> ResourceLimits | None:
    limits = ResourceLimits(
        cpus=c.read(raw, "cpus", path, lambda v: to_float(v, 0, MAX_CPUS), None),
        memory=c.read(raw, "memory", path, parse_bytes, None),
        pids=c.read(raw, "pids", path, lambda v: to_int(v, 1, 2**31), None))
    # Nothing set is no limit at all: keeps to_compose's output loading back equal.
    return limits if limits != ResourceLimits() else None


def _reservations(raw: dict[str, Any], path: KeyPath, c: Collector
                  ) -> ResourceReservations | None:
    res = ResourceReservations(
        cpus=c.read(raw, "cpus", path, lambda v: to_float(v, 0, MAX_CPUS), None),
        memory=c.read(raw, "memory", path, parse_bytes, None))
    return res if res != ResourceReservations() else None


def _deploy(raw: dict[str, Any], path: KeyPath, c: Collector) -> Deploy:
    mode = raw.get("mode") or "replicated"  # the schema holds it to the two modes
    if mode == "global" and raw.get("replicas") is not None:
        c.add((*path, "replicas"), "replicas can only be used with mode: replicated "
                                   "(a global service runs one task per eligible node)")
    replicas = c.read(raw, "replicas", path, lambda v: to_int(v, 0, MAX_REPLICAS), 1)
    resources = None
    if raw.get("resources"):
        rp = (*path, "resources")
        res = raw["resources"]
        limits = _limits(res["limits"], (*rp, "limits"), c) if res.get("limits") else None
        reservations = (_reservations(res["reservations"], (*rp, "reservations"), c)
                        if res.get("reservations") else None)
        if limits or reservations:
            resources = Resources(limits=limits, reservations=reservations)
    labels = c.read(raw, "labels", path, string_map, {})
    where = placement.placement(raw.get("placement") or {}, (*path, "placement"), c, mode)
    return Deploy(replicas=replicas, mode=mode, placement=where, resources=resources,
                  labels=labels,
                  update_config=_update_config(raw, "update_config", path, c),
                  rollback_config=_update_config(raw, "rollback_config", path, c))


def _update_config(raw: dict[str, Any], key: str, path: KeyPath, c: Collector
                   ) -> UpdateConfig | None:
    conf = raw.get(key)
    if conf is None:
        return None
    where = (*path, key)
    return UpdateConfig(
        parallelism=c.read(conf, "parallelism", where, lambda v: to_int(v, 0, MAX_REPLICAS),
                           1),
        delay=c.read(conf, "delay", where, parse_duration, 0.0),
        order=conf.get("order", "stop-first"),
        failure_action=conf.get("failure_action", "pause"),
        monitor=c.read(conf, "monitor", where, parse_duration, 5.0),
        max_failure_ratio=c.read(conf, "max_failure_ratio", where, _ratio, 0.0))


def _ratio(value: Any) -> float:
    """0 (no failure tolerated) to 1; to_float's low bound is exclusive, hence -1."""
    number = to_float(value, -1.0, 1.0)
    if number < 0:
        raise ValueError(f"must be between 0 and 1, got {quote(value)}")
    return number


def _ports(raw: list[Any], path: KeyPath, c: Collector) -> list[PortMapping]:
    out: list[PortMapping] = []
    seen: dict[tuple[Any, ...], int] = {}
    for i, entry in enumerate(raw):
        parsed = c.attempt((*path, i), lambda e=entry: (
            ports.parse_long(e) if isinstance(e, dict) else ports.parse_short(e)))
        for mapping in parsed or []:
            if mapping.published is not None:
                key = (mapping.published, mapping.protocol, mapping.host_ip)
                if key in seen:
                    c.add((*path, i), f"port {mapping.published}/{mapping.protocol} is "
                                      f"published twice (also by ports[{seen[key]}])")
                    break
                seen[key] = i
            out.append(mapping)
        if len(out) > ports.MAX_PORTS_PER_SERVICE:
            c.add(path, f"more than {ports.MAX_PORTS_PER_SERVICE} port mappings")
            break
    return out


def _volumes(raw: list[Any], path: KeyPath, c: Collector, ctx: Context, service: str
             ) -> list[Mount]:
    out: list[Mount] = []
    targets: dict[str, int] = {}
    for i, entry in enumerate(raw):
        mount = c.attempt((*path, i), lambda e=entry: (
            mounts.parse_long(e, ctx.base_dir) if isinstance(e, dict)
            else mounts.parse_short(e, ctx.base_dir)))
        if mount is None:
            continue
        if mount.type == "volume" and mount.source and mount.source not in ctx.volumes:
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


def _networks(raw: Any, path: KeyPath, c: Collector, ctx: Context, service: str
              ) -> dict[str, ServiceNetwork]:
    if not raw:  # none listed (or an empty list): on the app's default network, as compose
        return {"default": ServiceNetwork()}
    entries = dict.fromkeys(raw) if isinstance(raw, list) else raw
    out: dict[str, ServiceNetwork] = {}
    for i, (name, opts) in enumerate(entries.items()):
        where = (*path, name) if isinstance(raw, dict) else (*path, i)
        if name not in ctx.networks and name != "default":
            c.add(where, f'service "{service}" refers to undefined network "{name}": '
                         "declare it under the top-level networks", at_key=True)
            continue
        opts = opts or {}
        aliases = []
        for j, alias in enumerate(opts.get("aliases") or []):
            if HOSTNAME.fullmatch(alias):
                aliases.append(alias)
            else:
                c.add((*where, "aliases", j), f"alias {quote(alias)} is not a valid DNS name")
        address = c.read(opts, "ipv4_address", where, _ipv4, None)
        if address is not None:
            # Each node hands out addresses from its own slice of the network, so a fixed
            # address could collide with, or fall outside, the slice of where it runs.
            # Dropped rather than kept: the stored app never holds what is not honoured.
            c.warn((*where, "ipv4_address"), "ipv4_address is ignored: replicas take "
                   "addresses from the slice of the node they run on")
            address = None
        out[name] = ServiceNetwork(aliases=aliases, ipv4_address=address)
    return out


def _ipv4(text: str) -> str:
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise ValueError(f"{quote(text)} is not an IPv4 address") from None


def _absolute(text: str) -> str:
    if not text.startswith("/"):
        raise ValueError(f"{quote(text)} must be an absolute path")
    return text


def _hostname(text: str) -> str:
    if not HOSTNAME.fullmatch(text):
        raise ValueError(f"{quote(text)} is not a valid hostname")
    return text


def _restart(raw: dict[str, Any], path: KeyPath, c: Collector
             ) -> tuple[RestartPolicy | None, int | None]:
    found = c.read(raw, "restart", path, restart_policy, None)
    return found if found is not None else (None, None)


def _healthcheck(raw: dict[str, Any], path: KeyPath, c: Collector) -> Healthcheck | None:
    """compose's healthcheck: `test` as a string is CMD-SHELL; a list starts with CMD,
    CMD-SHELL or NONE; durations are checked and kept as compose writes them."""
    hc = raw.get("healthcheck")
    if hc is None:
        return None
    where = (*path, "healthcheck")
    test = hc.get("test")
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    elif isinstance(test, list):
        if not test or test[0] not in ("CMD", "CMD-SHELL", "NONE"):
            c.add((*where, "test"), 'a test list starts with "CMD", "CMD-SHELL" or "NONE"')
        elif test[0] != "NONE" and len(test) < 2:
            c.add((*where, "test"), f"{test[0]} needs a command after it")

    def duration(key: str) -> str | None:
        return c.read(hc, key, where, lambda v: format_duration(parse_duration(v)), None)

    if "start_interval" in hc:
        c.warn((*where, "start_interval"), "start_interval is ignored: probes run every "
                                           "interval from the start")
    return Healthcheck(test=test, interval=duration("interval"), timeout=duration("timeout"),
                       retries=c.read(hc, "retries", where, lambda v: to_int(v, 1, 1000),
                                      None),
                       start_period=duration("start_period"),
                       disable=c.read(hc, "disable", where, to_bool, False))


_CONDITIONS = {"none": "no", "on-failure": "on-failure", "any": "always"}


def _restart_policy(policy: dict[str, Any], path: KeyPath, c: Collector
                    ) -> tuple[RestartPolicy | None, int | None]:
    """deploy.restart_policy (condition, max_attempts) as the equivalent `restart`; its
    delay and window are the agent's back-off, which is fixed."""
    for key in ("delay", "window"):
        if key in policy:
            c.warn((*path, key), f"{key} is ignored: restarts back off from 0.5 s to 30 s")
    restart = _CONDITIONS[policy.get("condition", "any")]
    attempts = c.read(policy, "max_attempts", path, lambda v: to_int(v, 0), None)
    if attempts and restart == "on-failure":
        return "on-failure", attempts
    if attempts and restart == "always":
        c.warn((*path, "max_attempts"), "max_attempts with condition any: counted as "
                                        "on-failure:N would differ; restarts are unlimited")
    return restart, None  # type: ignore[return-value]


def _capabilities(raw: dict[str, Any], key: str, path: KeyPath, c: Collector) -> list[str]:
    out: list[str] = []
    for i, value in enumerate(raw.get(key) or []):
        name = c.attempt((*path, key, i), lambda v=value: capability(v))
        if name is not None and name not in out:
            out.append(name)
    return out


def _depends_on(value: Any) -> dict[str, str]:
    if isinstance(value, list):
        return dict.fromkeys((str(v) for v in value), "service_started")
    return {str(k): (v or {}).get("condition", "service_started") for k, v in value.items()}


def _tmpfs(raw: dict[str, Any], path: KeyPath, c: Collector, taken: set[str]
           ) -> list[Mount]:
    """compose's service-level `tmpfs`: paths (`/run`, or `/run:size=64m`), each a tmpfs
    mount, as `docker run --tmpfs`."""
    value = raw.get("tmpfs")
    entries = [value] if isinstance(value, str) else list(value or [])
    out = []
    for i, entry in enumerate(entries):
        where = (*path, "tmpfs") if isinstance(value, str) else (*path, "tmpfs", i)
        target, _, opts = entry.partition(":")
        size = None
        for opt in filter(None, opts.split(",")):
            key, _, val = opt.partition("=")
            if key == "size":
                size = c.attempt(where, lambda v=val: parse_bytes(v))
            elif key not in ("rw", "ro", "noexec", "nosuid", "nodev", "exec", "suid", "dev",
                             "mode"):
                c.add(where, f"tmpfs option {quote(opt)} is not one of size, mode, rw, ro, "
                             "noexec, nosuid, nodev")
        mount = c.attempt(where, lambda t=target, s=size: Mount(
            type="tmpfs", target=mounts.check_target(t),
            tmpfs=TmpfsOptions(size=s) if s else None))
        if mount is not None and mount.target in taken:
            c.add(where, f"target {mount.target} is already mounted by volumes")
        elif mount is not None:
            taken.add(mount.target)
            out.append(mount)
    return out


def _env_files(raw: dict[str, Any], path: KeyPath, c: Collector,
               ctx: Context) -> dict[str, str]:
    """compose's `env_file`: dotenv files beside the manifest, in order; `environment`
    overrides them. Read here, so the stored app holds the values, never the paths."""
    value = raw.get("env_file")
    if value is None:
        return {}
    entries = [value] if isinstance(value, str) else list(value)
    out: dict[str, str] = {}
    for i, entry in enumerate(entries):
        where = (*path, "env_file") if isinstance(value, str) else (*path, "env_file", i)
        file, required = (entry, True) if isinstance(entry, str) else (
            entry["path"], to_bool(entry.get("required", True)))
        if ctx.base_dir is None:
            c.add(where, "env_file is read by the CLI beside the manifest; send its values "
                         "in environment")
            continue
        target = Path(file).expanduser()
        target = target if target.is_absolute() else ctx.base_dir / target
        try:
            text = target.read_text(encoding="utf-8")
        except FileNotFoundError:
            if required:
                c.add(where, f"env file {target} not found")
            continue
        except (OSError, UnicodeDecodeError) as exc:
            c.add(where, f"cannot read env file {target}: {exc}")
            continue
        values, problems = parse_dotenv(text, str(target))
        for problem in problems:
            c.add(where, f"{problem.source}:{problem.line}: {problem.message}")
        out.update(values)
    return out


def _image(name: str, raw: dict[str, Any], path: KeyPath, c: Collector, ctx: Context,
           build: BuildSpec | None) -> str:
    if "image" in raw:
        if not raw["image"].strip():
            c.add((*path, "image"), "image must not be empty")
        return str(raw["image"]).strip()
    if "build" not in raw:
        c.add(path, "a service needs `image`, or `build` to make one")
        return ""
    # compose v2's name for a built image without `image:`: <project>-<service>.
    return f"{ctx.app}-{name}".lower()


def _build(raw: dict[str, Any], path: KeyPath, c: Collector,
           ctx: Context) -> BuildSpec | None:
    value = raw.get("build")
    if value is None:
        return None
    where = (*path, "build")
    entry = {"context": value} if isinstance(value, str) else value
    # The short form's problems are the value's own: `build.context` is not written.
    written = isinstance(value, dict) and "context" in value
    context = c.attempt((*where, "context") if written else where,
                        lambda: builds.resolve_context(entry.get("context", "."), ctx.base_dir))
    dockerfile = c.attempt((*where, "dockerfile"),
                           lambda: builds.check_dockerfile(entry.get("dockerfile")))
    args = c.read(entry, "args", where, lambda v: string_map(
        v, ctx.environ, from_environment=True), {})
    target = entry.get("target") or None
    if context is None or dockerfile is None:
        return None
    return BuildSpec(context=context, dockerfile=dockerfile, args=args, target=target)


def service_spec(name: str, raw: dict[str, Any], path: KeyPath, c: Collector,
                 ctx: Context) -> ServiceSpec:
    def flag(key: str) -> bool:
        return c.read(raw, key, path, to_bool, False)

    build = _build(raw, path, c, ctx)
    image = _image(name, raw, path, c, ctx, build)
    volumes = _volumes(raw.get("volumes") or [], (*path, "volumes"), c, ctx, name)
    restart, max_retries = _restart(raw, path, c)
    policy = (raw.get("deploy") or {}).get("restart_policy")
    if policy is not None:  # swarm's form wins over `restart`, as in docker stack deploy
        restart, max_retries = _restart_policy(policy, (*path, "deploy", "restart_policy"),
                                               c)
    grace = c.read(raw, "stop_grace_period", path,
                   lambda v: format_duration(parse_duration(v)), None)
    return ServiceSpec(
        image=image,
        build=build,
        command=c.read(raw, "command", path, command_line, None),
        entrypoint=c.read(raw, "entrypoint", path, command_line, None),
        environment={**_env_files(raw, path, c, ctx), **c.read(
            raw, "environment", path, lambda v: string_map(
                v, ctx.environ, from_environment=True), {})},
        working_dir=c.read(raw, "working_dir", path, _absolute, None),
        user=c.read(raw, "user", path, str, None),
        hostname=c.read(raw, "hostname", path, _hostname, None),
        labels=c.read(raw, "labels", path, string_map, {}),
        ports=_ports(raw.get("ports") or [], (*path, "ports"), c),
        volumes=volumes + _tmpfs(raw, path, c, {m.target for m in volumes}),
        depends_on=c.read(raw, "depends_on", path, _depends_on, {}),
        expose=[str(p) for p in raw.get("expose") or []],
        healthcheck=_healthcheck(raw, path, c),
        networks=_networks(raw.get("networks"), (*path, "networks"), c, ctx, name),
        deploy=_deploy(raw.get("deploy") or {}, (*path, "deploy"), c),
        restart=restart,
        restart_max_retries=max_retries,
        stop_signal=c.read(raw, "stop_signal", path, stop_signal, None),
        stop_grace_period=grace,
        cap_add=_capabilities(raw, "cap_add", path, c),
        cap_drop=_capabilities(raw, "cap_drop", path, c),
        privileged=flag("privileged"),
        read_only=flag("read_only"),
        init=flag("init"),
    )
