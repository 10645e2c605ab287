"""Which cluster networks this node joins, and which of their addresses live elsewhere.

Pure: objects in, plain values out, no I/O. agent/netsync.py applies the result (bridges
and VXLAN devices, forwarding entries); the routing mesh's share is
agent/network/mesh_endpoints.py. See docs/networking.md.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from agent.network.config import NetworkConfig, Peer
from agent.network.errors import NetworkError
from skiff.models.objects import Endpoints, Network

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Skipped:
    network: str
    reason: str


def node_networks(networks: Iterable[Network], me: str
                  ) -> tuple[dict[str, NetworkConfig], list[Skipped]]:
    """The networks this node takes part in (every allocated network that gave it a
    slice), as NetworkConfigs; and the ones it cannot join yet, with why."""
    out: dict[str, NetworkConfig] = {}
    skipped: list[Skipped] = []
    for net in networks:
        name = net.metadata.name
        status = net.status
        mine = status.nodes.get(me)
        if not status.subnet or not status.vni:
            skipped.append(Skipped(name, status.message or "no subnet allocated yet"))
            continue
        if mine is None:
            skipped.append(Skipped(name, f"no address slice for node {me} yet"))
            continue
        try:
            out[name] = NetworkConfig(
                name=name, vni=status.vni, subnet=IPv4Network(status.subnet),
                slice=IPv4Network(mine.subnet), internal=net.spec.internal,
                vtep=IPv4Address(mine.vtep))
        except (ValueError, NetworkError) as exc:
            # A stored value we cannot use must not stop the other networks.
            skipped.append(Skipped(name, f"unusable allocation: {exc}"))
    return out, skipped


def _ip(text: str) -> IPv4Address | None:
    try:
        return IPv4Address(text)
    except ValueError:
        return None


def peers(network: Network, endpoints: Iterable[Endpoints], me: str) -> set[Peer]:
    """Addresses of `network` that live on other nodes: their bridges (gateways) and the
    containers on them, each with the VTEP that reaches it."""
    name = network.metadata.name
    out: set[Peer] = set()
    for node, part in network.status.nodes.items():
        if node == me:
            continue
        try:
            gateway = IPv4Network(part.subnet).network_address + 1
        except ValueError:
            continue
        vtep = _ip(part.vtep)
        if vtep is not None:
            out.add(Peer(gateway, vtep))
    for ep in endpoints:
        for addr in ep.addresses:
            ip = addr.addresses.get(name)
            if addr.node == me or ip is None:
                continue
            ip4, vtep = _ip(ip), _ip(addr.vtep)
            if ip4 is not None and vtep is not None:
                out.add(Peer(ip4, vtep))
    return out
