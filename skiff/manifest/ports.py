"""Compose's port syntaxes, short and long, to PortMapping values (ranges expanded)."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from skiff.models.appspec import PortMapping

MAX_PORTS_PER_SERVICE = 1000
_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")


class PortError(ValueError):
    pass


def _range(text: str, what: str) -> list[int]:
    m = _RANGE.match(text)
    if m is None:
        raise PortError(f"{what} {text!r} is not a port or range")
    first, last = int(m.group(1)), int(m.group(2) or m.group(1))
    for port in (first, last):
        if not 1 <= port <= 65535:
            raise PortError(f"{what} {port} is out of range 1-65535")
    if last < first:
        raise PortError(f"{what} range {text!r} runs backwards")
    if last - first >= MAX_PORTS_PER_SERVICE:
        raise PortError(f"{what} range {text!r} is over {MAX_PORTS_PER_SERVICE} ports")
    return list(range(first, last + 1))


def parse_short(spec: str | int) -> list[PortMapping]:
    """"80", "8080:80", "127.0.0.1:8080:80", "127.0.0.1::80", "[::1]:80:80",
    "8000-8010:8000-8010", "53:53/udp"."""
    text = str(spec)
    bad = f"{text!r} is not a port mapping"
    body, _, protocol = text.partition("/")
    protocol = protocol or "tcp"
    if protocol not in ("tcp", "udp"):
        raise PortError(f"{bad}: protocol must be tcp or udp")
    host_ip = None
    if body.startswith("["):
        end = body.find("]")
        if end < 0 or body[end + 1:end + 2] != ":":
            raise PortError(bad)
        host_ip, body = body[1:end], body[end + 2:]
        parts = body.split(":")
        if len(parts) == 1:
            parts = ["", parts[0]]
    else:
        parts = body.split(":")
        if len(parts) == 3:
            host_ip, parts = parts[0], parts[1:]
        elif len(parts) > 3:
            raise PortError(bad)
    if host_ip is not None:
        try:
            ipaddress.ip_address(host_ip)
        except ValueError:
            raise PortError(f"{bad}: {host_ip!r} is not an IP address") from None
    try:
        if len(parts) == 1:
            return [PortMapping(target=t, protocol=protocol, host_ip=host_ip)  # type: ignore[arg-type]
                    for t in _range(parts[0], "container port")]
        published, target = parts
        targets = _range(target, "container port")
        if not published:
            return [PortMapping(target=t, protocol=protocol, host_ip=host_ip)  # type: ignore[arg-type]
                    for t in targets]
        publish = _range(published, "published port")
    except PortError as exc:
        raise PortError(f"{bad}: {exc}") from None
    if len(publish) != len(targets):
        if len(targets) == 1:
            # "8000-8010:80": any one free host port of the range, as Docker does; skiff
            # publishes on every node, so it takes the first.
            publish = publish[:1]
        else:
            raise PortError(f"{bad}: published and container ranges differ in length")
    return [PortMapping(target=t, published=p, protocol=protocol, host_ip=host_ip)  # type: ignore[arg-type]
            for p, t in zip(publish, targets, strict=True)]


def parse_long(entry: dict[str, Any]) -> list[PortMapping]:
    """The long syntax; ``published`` may be a port, a string port, or a range."""
    target = entry["target"]
    if not isinstance(target, int) or not 1 <= target <= 65535:
        raise PortError(f"target {target!r} is out of range 1-65535")
    host_ip = entry.get("host_ip")
    if host_ip is not None:
        try:
            ipaddress.ip_address(host_ip)
        except ValueError:
            raise PortError(f"host_ip {host_ip!r} is not an IP address") from None
    published = entry.get("published")
    pub_port = None
    if published is not None and published != "":
        ports = _range(str(published), "published port")
        pub_port = ports[0]
    return [PortMapping(target=target, published=pub_port,
                        protocol=entry.get("protocol", "tcp"), host_ip=host_ip,
                        mode=entry.get("mode", "ingress"))]
