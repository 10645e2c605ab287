"""A Network's status from its claim and the cluster's nodes, without I/O."""

from __future__ import annotations

import dataclasses
from ipaddress import IPv4Network

from controller.reconcilers.netregistry import Claim, Refusal
from controller.reconcilers.network_plan import network_status, plan_network, requested_subnet
from skiff.models.appspec import Ipam, IpamConfig, NetworkSpec
from skiff.models.objects import Network, NetworkNode, NetworkStatus, ObjectMeta

CLAIM = Claim(IPv4Network("10.128.16.0/20"), 4097)


def network(generation: int = 3, status: NetworkStatus | None = None,
            spec: NetworkSpec | None = None) -> Network:
    return Network(metadata=ObjectMeta(name="todo_default", app="todo", generation=generation,
                                       resource_version=7),
                   spec=spec or NetworkSpec(name="todo_default"),
                   status=status or NetworkStatus())


def test_requested_subnet_is_the_first_ipam_configs():
    assert requested_subnet(NetworkSpec(name="a")) is None
    assert requested_subnet(NetworkSpec(name="a", ipam=Ipam(config=[]))) is None
    assert requested_subnet(NetworkSpec(name="a", ipam=Ipam(config=[
        IpamConfig(subnet="10.9.0.0/16"), IpamConfig(subnet="10.8.0.0/16")]))) == "10.9.0.0/16"
    assert requested_subnet(NetworkSpec(name="a", ipam=Ipam(config=[
        IpamConfig(gateway="10.9.0.1")]))) is None


def test_every_node_with_an_address_gets_a_slice_with_its_vtep():
    status = network_status(network(), CLAIM, {"n2": "192.168.1.2", "n1": "192.168.1.1",
                                               "n3": ""})
    assert status == NetworkStatus(
        observed_generation=3, subnet="10.128.16.0/20", vni=4097, ready=True, message="",
        nodes={"n1": NetworkNode("10.128.16.0/26", "192.168.1.1"),
               "n2": NetworkNode("10.128.16.64/26", "192.168.1.2")})


def test_a_node_keeps_its_slice_while_it_exists_and_loses_it_when_gone():
    held = NetworkStatus(subnet="10.128.16.0/20", vni=4097, ready=True, nodes={
        "n1": NetworkNode("10.128.16.0/26", "192.168.1.1"),
        "n2": NetworkNode("10.128.16.64/26", "192.168.1.2")})
    # n1 lost its address (it re-registers): it keeps its slice and last vtep; n2 moved.
    status = network_status(network(status=held), CLAIM, {"n1": "", "n2": "192.168.1.22"})
    assert status.nodes == {"n1": NetworkNode("10.128.16.0/26", "192.168.1.1"),
                            "n2": NetworkNode("10.128.16.64/26", "192.168.1.22")}
    # n1 is removed: its slice is free for the next node.
    status = network_status(network(status=held), CLAIM, {"n2": "192.168.1.2",
                                                          "n0": "192.168.1.10"})
    assert status.nodes == {"n0": NetworkNode("10.128.16.0/26", "192.168.1.10"),
                            "n2": NetworkNode("10.128.16.64/26", "192.168.1.2")}


def test_a_refusal_keeps_what_was_held_but_is_not_ready():
    held = NetworkStatus(observed_generation=2, subnet="10.128.16.0/20", vni=4097,
                         ready=True, nodes={"n1": NetworkNode("10.128.16.0/26", "a")})
    status = network_status(network(status=held), Refusal("subnet 10.1.0.0/24 overlaps "
                                                          "network 'x' (10.1.0.0/16)"), {})
    assert status.ready is False and "overlaps network 'x'" in status.message
    assert (status.subnet, status.vni, status.nodes) == (held.subnet, held.vni, held.nodes)
    assert status.observed_generation == 3


def test_nodes_beyond_the_last_slice_are_named():
    small = Claim(IPv4Network("10.0.0.0/24"), 4096)
    vteps = {f"n{i:02d}": f"192.168.0.{i + 1}" for i in range(17)}
    status = network_status(network(), small, vteps)
    assert len(status.nodes) == 16 and "n16" not in status.nodes
    assert status.ready and "nodes n16" in status.message


def test_plan_writes_only_a_changed_status():
    net = network()
    updated = plan_network(net, CLAIM, {"n1": "192.168.1.1"})
    assert updated is not None and updated.metadata == net.metadata
    assert plan_network(updated, CLAIM, {"n1": "192.168.1.1"}) is None
    assert plan_network(dataclasses.replace(updated, metadata=dataclasses.replace(
        updated.metadata, generation=4)), CLAIM, {"n1": "192.168.1.1"}) is not None
