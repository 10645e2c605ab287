"""The instructions that only change the image config (ENV, LABEL, EXPOSE, USER, CMD,
ENTRYPOINT, STOPSIGNAL, HEALTHCHECK, SHELL, WORKDIR, VOLUME, ONBUILD, MAINTAINER), as a
pure function of the config before and the expanded instruction. Docker's JSON keys."""

from __future__ import annotations

import posixpath
import re
from typing import Any

from skiff.build import instructions as ins

DEFAULT_SHELL = ("/bin/sh", "-c")
# EXPOSE 8000-8010 is stored as one entry per port, like Docker; a range this big is a
# typo, not a service.
MAX_PORT_RANGE = 1024
_PORT = re.compile(r"^(\d+)(?:-(\d+))?(?:/(\w+))?$")

METADATA = (ins.Env, ins.Label, ins.Expose, ins.User, ins.Cmd, ins.Entrypoint,
            ins.Stopsignal, ins.Healthcheck, ins.Shell, ins.Workdir, ins.Volume, ins.Onbuild,
            ins.Maintainer)


def shell_of(config: dict[str, Any]) -> tuple[str, ...]:
    shell = config.get("Shell")
    return tuple(shell) if shell else DEFAULT_SHELL


def workdir_of(config: dict[str, Any], path: str) -> str:
    """WORKDIR's path: a relative one is relative to the previous WORKDIR."""
    base = config.get("WorkingDir") or "/"
    return posixpath.normpath(posixpath.join(base, path)).replace("//", "/")


def _set_env(config: dict[str, Any], pairs: tuple[tuple[str, str], ...]) -> None:
    env = list(config.get("Env") or [])
    for key, value in pairs:
        item = f"{key}={value}"
        for i, old in enumerate(env):
            if old.partition("=")[0] == key:
                env[i] = item  # in place: Docker keeps the variable's position
                break
        else:
            env.append(item)
    config["Env"] = env


def _ports(spec: str) -> list[str]:
    match = _PORT.match(spec)
    if not match:  # the front half checked it; keep it as written rather than guess
        return [spec]
    low = int(match.group(1))
    high = int(match.group(2) or low)
    proto = (match.group(3) or "tcp").lower()
    if high - low >= MAX_PORT_RANGE:
        raise ValueError(f"EXPOSE {spec}: a range of more than {MAX_PORT_RANGE} ports")
    return [f"{p}/{proto}" for p in range(low, high + 1)]


def apply_metadata(config: dict[str, Any], instruction: ins.Instruction,
                   cmd_set_in_stage: bool) -> dict[str, Any]:
    """`config` (a copy the caller owns) changed by `instruction`, returned."""
    match instruction:
        case ins.Env(pairs=pairs):
            _set_env(config, pairs)
        case ins.Label(pairs=pairs):
            labels = dict(config.get("Labels") or {})
            labels.update(pairs)
            config["Labels"] = labels
        case ins.Expose(ports=ports):
            exposed = dict(config.get("ExposedPorts") or {})
            for spec in ports:
                for port in _ports(spec):
                    exposed[port] = {}
            config["ExposedPorts"] = exposed
        case ins.User(user=user):
            config["User"] = user
        case ins.Cmd(command=command):
            config["Cmd"] = command.argv(shell_of(config))
        case ins.Entrypoint(command=command):
            config["Entrypoint"] = command.argv(shell_of(config))
            if not cmd_set_in_stage:
                # Docker: a CMD inherited from the base image is meaningless with a new
                # entrypoint, so it is cleared; a CMD of this stage stays.
                config["Cmd"] = None
        case ins.Stopsignal(signal=sig):
            config["StopSignal"] = sig
        case ins.Healthcheck():
            config["Healthcheck"] = healthcheck_json(instruction)
        case ins.Shell(argv=argv):
            config["Shell"] = list(argv)
        case ins.Workdir(path=path):
            config["WorkingDir"] = workdir_of(config, path)
        case ins.Volume(paths=paths):
            volumes = dict(config.get("Volumes") or {})
            for path in paths:
                volumes[path] = {}
            config["Volumes"] = volumes
        case ins.Onbuild(expression=expression):
            config["OnBuild"] = [*(config.get("OnBuild") or []), expression]
        case ins.Maintainer():
            pass  # the image's author, not a config field: the builder records it
        case _:
            raise TypeError(f"{instruction.keyword} is not a metadata instruction")
    return config


def healthcheck_json(h: ins.Healthcheck) -> dict[str, Any]:
    out: dict[str, Any] = {"Test": list(h.test)}
    for key, value in (("Interval", h.interval_ns), ("Timeout", h.timeout_ns),
                       ("StartPeriod", h.start_period_ns),
                       ("StartInterval", h.start_interval_ns), ("Retries", h.retries)):
        if value is not None:
            out[key] = value
    return out
