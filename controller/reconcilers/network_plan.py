"""Network → its status: the claim the registry gave it and every node's slice, pure."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from controller.reconcilers import netalloc
from controller.reconcilers.netregistry import Claim, Refusal
from skiff.models.appspec import NetworkSpec
from skiff.models.objects import Network, NetworkNode, NetworkStatus


def requested_subnet(spec: NetworkSpec) -> str | None:
    """The subnet a network's compose ipam asks for (the first config's), if any."""
    if spec.ipam is None:
        return None
    return next((c.subnet for c in spec.ipam.config[:1] if c.subnet), None)


def network_status(network: Network, outcome: Claim | Refusal,
                   vteps: Mapping[str, str]) -> NetworkStatus:
    """The status ``network`` should have.

    ``vteps`` maps every node the cluster knows to its address ("" until it reports
    one). A node gets a slice once it has an address, and keeps it, with the last
    address it reported, for as long as its Node exists. A refusal (the requested
    subnet overlaps another network's, ...) keeps what the network held, not ready,
    so a bad edit does not tear down a working network.
    """
    old = network.status
    generation = network.metadata.generation
    if isinstance(outcome, Refusal):
        return dataclasses.replace(old, observed_generation=generation, ready=False,
                                   message=outcome.message)
    held = {n: nn.subnet for n, nn in old.nodes.items() if n in vteps}
    members = [n for n, address in vteps.items() if address or n in held]
    slices, left_out = netalloc.assign_slices(outcome.subnet, held, members)
    nodes = {}
    for name, node_slice in sorted(slices.items()):
        previous = old.nodes.get(name)
        vtep = vteps[name] or (previous.vtep if previous else "")
        nodes[name] = NetworkNode(subnet=str(node_slice), vtep=vtep)
    message = ""
    if left_out:
        message = (f"no slice of {outcome.subnet} left for nodes {', '.join(left_out)}: "
                   "they cannot run containers on this network")
    return NetworkStatus(observed_generation=generation, subnet=str(outcome.subnet),
                         vni=outcome.vni, nodes=nodes, ready=True, message=message)


def plan_network(network: Network, outcome: Claim | Refusal,
                 vteps: Mapping[str, str]) -> Network | None:
    """``network`` with the status it should have, or None when it has it already."""
    status = network_status(network, outcome, vteps)
    return None if status == network.status else dataclasses.replace(network, status=status)
