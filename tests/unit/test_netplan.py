"""agent/netplan.py: a node's networks and their remote addresses from cluster objects."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from agent.netplan import node_networks, peers
from agent.network.config import Peer
from skiff.models.appspec import NetworkSpec
from skiff.models.objects import (
    EndpointAddress,
    Endpoints,
    Network,
    NetworkNode,
    NetworkStatus,
    ObjectMeta,
)

NODES = {"n1": NetworkNode("10.128.0.0/26", "192.168.1.1"),
         "n2": NetworkNode("10.128.0.64/26", "192.168.1.2"),
         "n3": NetworkNode("10.128.0.128/26", "192.168.1.3")}


def network(name: str, *, vni: int = 4096, subnet: str = "10.128.0.0/20",
            nodes: dict[str, NetworkNode] | None = None, internal: bool = False) -> Network:
    return Network(metadata=ObjectMeta(name=name),
                   spec=NetworkSpec(name=name, internal=internal),
                   status=NetworkStatus(subnet=subnet, vni=vni,
                                        nodes=NODES if nodes is None else nodes, ready=True))


def address(task: str, node: str, ip: str, *, ready: bool = True,
            net: str = "app_default") -> EndpointAddress:
    return EndpointAddress(task=task, node=node, vtep=NODES[node].vtep, hostname=task,
                           ready=ready, addresses={net: ip})


def endpoints(name: str, *addrs: EndpointAddress,
              nets: tuple[str, ...] = ("app_default",)) -> Endpoints:
    return Endpoints(metadata=ObjectMeta(name=name, app="app"),
                     names={n: [name] for n in nets}, addresses=list(addrs))


def test_node_networks_take_only_allocated_networks_with_a_slice_here() -> None:
    configs, skipped = node_networks([
        network("app_default"),
        network("pending", vni=0, subnet=""),
        network("elsewhere", vni=4097, nodes={"n2": NODES["n2"]}),
        network("broken", vni=4098, nodes={"n1": NetworkNode("not-a-cidr", "x")}),
    ], "n1")
    assert list(configs) == ["app_default"]
    cfg = configs["app_default"]
    assert (cfg.vni, cfg.subnet, cfg.slice, cfg.vtep) == (
        4096, IPv4Network("10.128.0.0/20"), IPv4Network("10.128.0.0/26"),
        IPv4Address("192.168.1.1"))
    assert str(cfg.gateway) == "10.128.0.1/20"
    reasons = {s.network: s.reason for s in skipped}
    assert set(reasons) == {"pending", "elsewhere", "broken"}
    assert "no address slice for node n1" in reasons["elsewhere"]
    assert "unusable" in reasons["broken"]


def test_peers_are_other_nodes_gateways_and_containers_never_our_own() -> None:
    eps = [endpoints("web", address("web.1", "n1", "10.128.0.2"),
                     address("web.2", "n2", "10.128.0.66"),
                     address("web.3", "n3", "10.128.0.130", ready=False))]
    got = peers(network("app_default"), eps, "n1")
    assert got == {
        Peer(IPv4Address("10.128.0.65"), IPv4Address("192.168.1.2")),
        Peer(IPv4Address("10.128.0.129"), IPv4Address("192.168.1.3")),
        Peer(IPv4Address("10.128.0.66"), IPv4Address("192.168.1.2")),
        # Not ready yet, but its container is there: the overlay must reach it already.
        Peer(IPv4Address("10.128.0.130"), IPv4Address("192.168.1.3")),
    }


def test_peers_skip_addresses_on_other_networks() -> None:
    eps = [endpoints("db", address("db.1", "n2", "10.128.16.66", net="other"),
                     nets=("other",))]
    got = peers(network("app_default"), eps, "n1")
    assert all(p.ip != IPv4Address("10.128.16.66") for p in got)
