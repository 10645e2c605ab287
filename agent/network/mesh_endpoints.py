"""What the routing mesh publishes, from the Endpoints objects every agent watches. Pure.

docs/networking.md, "Routing mesh": every `mode: ingress` published port of every service,
to the ready replicas' addresses (on any node) on the service's first non-internal
network; `mode: host` ports only on nodes where a replica of the service runs, to the
replicas on this node. The service's networks are the keys of `Endpoints.names`; "first" is
sorted order, the order in which a task joins them (eth0 is the first).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from agent.network.mesh_rules import Publication
from skiff.models.objects import Endpoints, qualified_name


def mesh_network(endpoints: Endpoints, internal: Mapping[str, bool]) -> str | None:
    """The network whose addresses the mesh uses for this service, or None if it has no
    non-internal one. Raises KeyError(network) when a network that could be the first is
    not known yet: better to wait than to pick the second and switch later."""
    for network in sorted(endpoints.names):
        if internal[network]:  # KeyError: not known yet
            continue
        return network
    return None


def publications(endpoints: Iterable[Endpoints], node: str,
                 internal: Mapping[str, bool]) -> tuple[list[Publication],
                                                         list[tuple[str, str]]]:
    """Publications for this node, and (service, why) for services left out.

    `internal`: cluster network name -> its spec.internal, from the Network objects."""
    pubs: list[Publication] = []
    skipped: list[tuple[str, str]] = []
    for ep in endpoints:
        if not ep.ports:
            continue
        key = qualified_name(ep.metadata)
        try:
            network = mesh_network(ep, internal)
        except KeyError as exc:
            skipped.append((key, f"network {exc.args[0]} is not known yet"))
            continue
        if network is None:
            skipped.append((key, "no non-internal network to publish from"))
            continue
        everywhere = [a.addresses[network] for a in ep.addresses
                      if a.ready and network in a.addresses]
        local = [a.addresses[network] for a in ep.addresses
                 if a.ready and a.node == node and network in a.addresses]
        runs_here = any(a.node == node for a in ep.addresses)
        for port in ep.ports:
            if port.mode == "host":
                if runs_here:  # a replica here that is not ready (yet): refuse, not hang
                    pubs.append(Publication(key, port, local))
            else:
                pubs.append(Publication(key, port, everywhere))
    return pubs, skipped
