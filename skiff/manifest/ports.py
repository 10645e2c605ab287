"""Compose's port syntaxes, short and long, to PortMapping values (ranges expanded)."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from skiff.manifest.convert import to_int
from skiff.manifest.errors import quote
from skiff.models.appspec import PortMapping

MAX_PORTS_PER_SERVICE = 1000
_RANGE = re.compile(r"([0-9]{1,5})(?:-([0-9]{1,5}))?")


class PortError(ValueError):
    pass


def _range(text: str, what: str) -> list[int]:
    m = _RANGE.fullmatch(text)
    if m is None:
        raise PortError(f"{what} {quote(text)} is not a port or a range like 8000-8010")
    first, last = int(m.group(1)), int(m.group(2) or m.group(1))
    for port in (first, last):
        if not 1 <= port <= 65535:
            raise PortError(f"{what} {port} is outside 1-65535")
    if last < first:
        raise PortError(f"{what} range {quote(text)} runs backwards")
    if last - first >= MAX_PORTS_PER_SERVICE:
        raise PortError(f"{what} range {quote(text)} is over {MAX_PORTS_PER_SERVICE} ports")
    return list(range(first, last + 1))


def _host_ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise PortError(f"{quote(text)} is not an IP address") from None


def _split_host(body: str) -> tuple[str | None, list[str]]:
    """``[HOST:]PUBLISHED:TARGET`` → (host, [published, target]); IPv6 hosts in brackets."""
    if body.startswith("["):
        end = body.find("]")
        if end < 0 or body[end + 1:end + 2] != ":":
            raise PortError("an IPv6 host address is written [::1]:8080:80")
        parts = body[end + 2:].split(":")
        if len(parts) != 2:
            raise PortError("expected [HOST]:PUBLISHED:TARGET")
        return body[1:end], parts
    parts = body.split(":")
    if len(parts) == 3:
        return parts[0], parts[1:]
    if len(parts) > 3:
        raise PortError("expected [[HOST:]PUBLISHED:]TARGET[/PROTOCOL]")
    return None, parts


def parse_short(spec: str | int) -> list[PortMapping]:
    """"80", "8080:80", "127.0.0.1:8080:80", "127.0.0.1::80", "[::1]:80:80",
    "8000-8010:8000-8010", "53:53/udp"."""
    text = str(spec) if not isinstance(spec, bool) else ""
    try:
        body, slash, protocol = text.partition("/")
        if slash and protocol not in ("tcp", "udp"):
            raise PortError(f"protocol {quote(protocol)} must be tcp or udp")
        host, parts = _split_host(body)
        host_ip = _host_ip(host) if host else None
        targets = _range(parts[-1], "container port")
        published = _range(parts[0], "published port") if len(parts) == 2 and parts[0] else []
        if published and len(published) != len(targets):
            raise PortError("published and container port ranges differ in length")
    except PortError as exc:
        raise PortError(f"{quote(text)} is not a port mapping: {exc}") from None
    proto = "udp" if protocol == "udp" else "tcp"
    if not published:
        return [PortMapping(target=t, protocol=proto, host_ip=host_ip) for t in targets]
    return [PortMapping(target=t, published=p, protocol=proto, host_ip=host_ip)
            for p, t in zip(published, targets, strict=True)]


def parse_long(entry: dict[str, Any]) -> list[PortMapping]:
    """The long syntax: one target; ``published`` a port or a string port (after
    interpolation). A published range with one target is not supported: skiff publishes
    the same port on every node, so it could not pick "any free one" from a range."""
    try:
        target = to_int(entry["target"], 1, 65535)
    except ValueError as exc:
        raise PortError(f"target: {exc}") from None
    published = entry.get("published")
    port: int | None = None
    if isinstance(published, str) and _RANGE.fullmatch(published.strip()) and "-" in published:
        raise PortError(f"published: a range ({quote(published)}) needs as many targets; "
                        "write it in the short syntax, e.g. \"8000-8002:9000-9002\"")
    if published is not None and published != "":
        try:
            port = to_int(published, 1, 65535)
        except ValueError as exc:
            raise PortError(f"published: {exc}") from None
    host = entry.get("host_ip")
    return [PortMapping(target=target, published=port, protocol=entry.get("protocol", "tcp"),
                        host_ip=_host_ip(host) if host else None,
                        mode=entry.get("mode", "ingress"))]
