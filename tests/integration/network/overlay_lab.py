"""A lab for the overlay tests: node namespaces on an underlay switch, a NodeNetwork each.

    <token>sw   a namespace with bridge `sw`: the underlay (a stand-in for the data centre)
    <token>n<i> node i's namespace, `eth0` = 192.168.<k>.<i+1>/24 plugged into `sw`

Every name this lab creates starts with "t3" plus a per-test token (netns files, nft table,
interface prefix, container namespace prefix), so tests running in parallel on this machine
never collide, and `cleanup` can remove whatever a failing test left behind.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from agent.network import NetworkConfig, NodeNetwork
from tests.integration.network.helpers import NETNS_DIR, in_ns, netns_names, sh


@dataclass
class OverlayNode:
    index: int
    name: str
    path: Path
    vtep: IPv4Address
    net: NodeNetwork

    async def links(self) -> str:
        """The node's interface names, space-separated (for substring checks)."""
        out = (await sh(*in_ns(self.path, "ip", "-o", "link", "show"))).stdout
        return " ".join(ln.split(":")[1].strip().split("@")[0] for ln in out.splitlines())

    async def tables(self) -> str:
        return (await sh(*in_ns(self.path, "nft", "list", "tables"))).stdout

    async def table(self) -> str:
        return (await sh(*in_ns(self.path, "nft", "list", "table", "ip",
                                self.net.nft_table))).stdout


class OverlayLab:
    def __init__(self, tmp: Path) -> None:
        self.token = "t3" + secrets.token_hex(2)  # also the interface prefix: <= 6 chars
        self.tmp = tmp
        self.underlay = IPv4Network(f"192.168.{random.randrange(256)}.0/24")
        self.nodes: list[OverlayNode] = []
        self._switch: Path | None = None

    async def _ns(self, name: str) -> Path:
        await sh("ip", "netns", "add", name)
        path = NETNS_DIR / name
        await sh(*in_ns(path, "ip", "link", "set", "lo", "up"))
        return path

    async def node(self) -> OverlayNode:
        if self._switch is None:
            self._switch = await self._ns(f"{self.token}sw")
            await sh(*in_ns(self._switch, "ip", "link", "add", "sw", "type", "bridge"))
            await sh(*in_ns(self._switch, "ip", "link", "set", "sw", "up"))
        i = len(self.nodes)
        name = f"{self.token}n{i}"
        path = await self._ns(name)
        vtep = self.underlay.network_address + i + 1
        port = f"p{i}"
        # Born in the switch namespace, the peer moved straight into the node's as eth0.
        await sh(*in_ns(self._switch, "ip", "link", "add", port, "type", "veth", "peer",
                        "name", "eth0", "netns", str(path)))
        await sh(*in_ns(self._switch, "ip", "link", "set", port, "master", "sw", "up"))
        await sh(*in_ns(path, "ip", "addr", "add", f"{vtep}/24", "dev", "eth0"))
        await sh(*in_ns(path, "ip", "link", "set", "eth0", "up"))
        net = NodeNetwork(self.tmp / name, subnet=f"10.88.{i}.0/24", bridge=f"{self.token}l",
                          nft_table=self.token, netns_prefix=f"{name}-", node_netns=path,
                          ifprefix=self.token)
        node = OverlayNode(i, name, path, vtep, net)
        self.nodes.append(node)
        return node

    def config(self, node: OverlayNode, name: str = "front", vni: int = 4096,
               subnet: str = "10.150.0.0/20", internal: bool = False) -> NetworkConfig:
        """The network as `node` joins it: slice = the node's /26 of the subnet."""
        whole = IPv4Network(subnet)
        slices = list(whole.subnets(new_prefix=26))
        return NetworkConfig(name=f"{self.token}{name}", vni=vni, subnet=whole,
                             slice=slices[node.index], internal=internal, vtep=node.vtep)

    async def cleanup(self) -> None:
        for node in self.nodes:
            try:
                await node.net.teardown()
            except Exception as exc:  # keep going: the namespaces go anyway
                print(f"teardown of {node.name} failed: {exc}")
        for name in netns_names(self.token):
            await sh("ip", "netns", "del", name, check=False)

    async def leftovers(self) -> list[str]:
        found = netns_names(self.token)
        found += [ln for ln in (await sh("ip", "-o", "link", "show")).stdout.splitlines()
                  if self.token in ln]
        found += [ln for ln in (await sh("nft", "list", "tables")).stdout.splitlines()
                  if self.token in ln]
        return found
