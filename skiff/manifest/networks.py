"""Checks across services and networks of one manifest (docs/networking.md): DNS names
that would answer for two services, ports two services publish, subnets that cannot be
split across nodes or that overlap, and published ports nothing could reach.

They run on the normalised AppSpec, with the raw document only to find where each
published port was written (a range expands to several mappings of one entry).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from typing import Any

from skiff.manifest import ports
from skiff.manifest.convert import Collector
from skiff.manifest.errors import KeyPath
from skiff.models.appspec import AppSpec, NetworkSpec, PortMapping

# A network is cut into one slice per node: a /24 gives 16 slices of /28, and anything
# smaller would leave too few addresses per node (docs/networking.md, Addresses).
MAX_PREFIX = 24


def subnet_problem(text: str) -> str | None:
    """Why ``text`` (a normalised CIDR) cannot be a skiff network's subnet, or None."""
    net = ipaddress.ip_network(text, strict=False)
    if net.version != 4:
        return f"subnet {text} is IPv6; skiff networks are IPv4 only"
    if net.prefixlen > MAX_PREFIX:
        return (f"subnet {text} is too small to split across nodes (at most "
                f"/{MAX_PREFIX}, e.g. {net.supernet(new_prefix=MAX_PREFIX)})")
    return None


def requested_subnet(spec: NetworkSpec) -> str | None:
    """The subnet a network asks for: its first ipam config's (the only one used; any
    further ones are checked like it, or ignored if IPv6)."""
    if spec.ipam and spec.ipam.config and spec.ipam.config[0].subnet:
        return spec.ipam.config[0].subnet
    return None


def port_entries(raw_ports: Any) -> Iterator[tuple[int, PortMapping]]:
    """(index of the entry as written, mapping) for every mapping of a ports list that
    already normalised cleanly (so parsing again cannot fail)."""
    for i, entry in enumerate(raw_ports or []):
        try:
            parsed = ports.parse_long(entry) if isinstance(entry, dict) \
                else ports.parse_short(entry)
        except ValueError:
            continue
        for mapping in parsed:
            yield i, mapping


def _subnets(app: AppSpec, c: Collector) -> None:
    seen: list[tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network, str]] = []
    for key, net in app.networks.items():
        if net.external or net.ipam is None:
            continue  # an external network's address plan is not ours to check
        for i, cfg in enumerate(net.ipam.config):
            if not cfg.subnet:
                continue
            path: KeyPath = ("networks", key, "ipam", "config", i, "subnet")
            if i > 0 and ipaddress.ip_network(cfg.subnet).version != 4:
                continue  # the IPv6 half of a dual-stack file: unused, but harmless
            problem = subnet_problem(cfg.subnet)
            if problem:
                c.add(path, problem)
                continue
            if i > 0:
                continue  # only the first config's subnet is used
            this = ipaddress.ip_network(cfg.subnet)
            for other_key, other, other_name in seen:
                if other_name != net.name and this.overlaps(other):
                    c.add(path, f"subnet {this} of network \"{key}\" overlaps subnet {other} "
                                f'of network "{other_key}"')
                    break
            seen.append((key, this, net.name))


def _dns_names(app: AppSpec, raw_services: Mapping[str, Any], c: Collector) -> None:
    """Per cluster network, every name must answer for one service only: a service's
    aliases may be neither another service's name there nor another service's alias."""
    on: dict[str, set[str]] = {}  # cluster network -> services on it
    for svc, spec in app.services.items():
        for key in spec.networks:
            if key in app.networks:
                on.setdefault(app.networks[key].name, set()).add(svc)
    claimed: dict[tuple[str, str], str] = {}  # (network, alias) -> service
    for svc, spec in app.services.items():
        written = (raw_services.get(svc) or {}).get("networks")
        for key, sn in spec.networks.items():
            if key not in app.networks or not isinstance(written, dict):
                continue  # aliases can only be written in the mapping form
            network = app.networks[key].name
            for j, alias in enumerate(sn.aliases):
                path: KeyPath = ("services", svc, "networks", key, "aliases", j)
                if alias != svc and alias in on.get(network, set()):
                    c.add(path, f'alias "{alias}" of service "{svc}" is the name of service '
                                f'"{alias}" on network "{key}"')
                elif (network, alias) in claimed and claimed[network, alias] != svc:
                    c.add(path, f'alias "{alias}" is claimed by services '
                                f'"{claimed[network, alias]}" and "{svc}" on network "{key}"')
                else:
                    claimed.setdefault((network, alias), svc)


def _published(app: AppSpec, raw_services: Mapping[str, Any], c: Collector) -> None:
    """A published (protocol, port) belongs to one service: every node publishes it."""
    owner: dict[tuple[str, int], str] = {}
    for svc in app.services:
        raw_ports = (raw_services.get(svc) or {}).get("ports")
        reported: set[tuple[str, int]] = set()
        for i, mapping in port_entries(raw_ports):
            if mapping.published is None:
                continue
            key = (mapping.protocol, mapping.published)
            first = owner.setdefault(key, svc)
            if first != svc and key not in reported:
                reported.add(key)
                c.add(("services", svc, "ports", i),
                      f'port {mapping.published}/{mapping.protocol} is published by both '
                      f'services "{first}" and "{svc}"; a published port belongs to one '
                      "service in the whole cluster")


def _reachable(app: AppSpec, c: Collector) -> None:
    for svc, spec in app.services.items():
        if not any(p.published is not None for p in spec.ports):
            continue
        nets = [app.networks[k] for k in spec.networks if k in app.networks]
        if nets and all(n.internal for n in nets):
            names = ", ".join(f'"{k}"' for k in spec.networks)
            c.add(("services", svc, "ports"),
                  f'service "{svc}" publishes ports but is only on internal networks '
                  f"({names}), which nothing outside can reach; add a network that is not "
                  "internal")


def check(app: AppSpec, raw_services: Mapping[str, Any], c: Collector) -> None:
    """Record every cross-service problem of ``app`` in ``c``."""
    _subnets(app, c)
    _dns_names(app, raw_services, c)
    _published(app, raw_services, c)
    _reachable(app, c)
