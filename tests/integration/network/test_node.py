"""The node side: NAT table, outbound reachability through masquerade, several node networks
side by side, teardown, and the agent running inside a lab node's namespace."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path

import pytest

from tests.integration.network.helpers import (
    BUSYBOX,
    Lab,
    eventually,
    in_ns,
    needs_root,
    netns_names,
    pings,
    sh,
)

pytestmark = [pytest.mark.integration, needs_root]


async def nft_table(node_path: Path, table: str) -> str:
    return (await sh(*in_ns(node_path, "nft", "list", "table", "ip", table))).stdout


def masquerade_packets(ruleset: str) -> int:
    found = re.search(r"counter packets (\d+) bytes \d+ masquerade", ruleset)
    assert found, ruleset
    return int(found.group(1))


async def test_ensure_installs_nat_and_forwarding_once(lab: Lab):
    node = await lab.node()
    net = lab.network(node)
    root_forward = (await sh("cat", "/proc/sys/net/ipv4/ip_forward")).stdout
    await net.ensure()
    await net.ensure()  # repeatable: the table is replaced, never appended to

    table = await nft_table(node.path, net.nft_table)
    rule = f"ip saddr {net.subnet} ip daddr != {net.subnet}"
    assert table.count(rule) == 1 and "masquerade" in table
    assert table.count(f'iifname "{net.bridge}"') == 1
    assert table.count(f'oifname "{net.bridge}"') == 1
    fwd = await sh(*in_ns(node.path, "cat", "/proc/sys/net/ipv4/ip_forward"))
    assert fwd.stdout.strip() == "1"
    # Only the node's namespace changed: the test runner's root namespace did not.
    assert (await sh("cat", "/proc/sys/net/ipv4/ip_forward")).stdout == root_forward
    assert net.nft_table not in (await sh("nft", "list", "tables")).stdout

    link = (await sh(*in_ns(node.path, "ip", "-o", "addr", "show", "dev", net.bridge))).stdout
    assert str(net.gateway) in link


async def test_container_reaches_beyond_the_node_with_the_node_address(lab: Lab):
    node = await lab.node(uplink=True)
    assert node.uplink_root is not None and node.uplink_node is not None
    net = lab.network(node)
    await net.ensure()
    ep = await net.attach("outbound-1")

    # A server in the root namespace, on the uplink: "beyond the node".
    peers: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.append(writer.get_extra_info("peername")[0])
        writer.write(b"hi\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, str(node.uplink_root.ip), 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async def connects() -> bool:
            res = await sh(*in_ns(ep.netns_path, BUSYBOX, "nc", "-w", "2",
                                  str(node.uplink_root.ip), str(port)), stdin=b"", check=False)
            return res.returncode == 0 and "hi" in res.stdout
        await eventually(connects, "container connects to the root namespace")
    finally:
        server.close()
        await server.wait_closed()

    # Masqueraded: the root side saw the node's uplink address, never the container's.
    assert peers and set(peers) == {str(node.uplink_node.ip)}
    assert masquerade_packets(await nft_table(node.path, net.nft_table)) >= 1
    await pings(ep.netns_path, node.uplink_root.ip)


async def test_two_node_networks_do_not_interfere(lab: Lab):
    node = await lab.node()
    one = lab.network(node)
    two = lab.network(node)
    await asyncio.gather(one.ensure(), two.ensure())
    # The same container id on both: distinct namespaces, veths and ranges.
    a1, a2 = await asyncio.gather(one.attach("same"), two.attach("same"))
    assert a1.netns_path != a2.netns_path and a1.host_veth != a2.host_veth
    assert a1.ip.ip in one.subnet
    assert a2.ip.ip in two.subnet
    await pings(a1.netns_path, a1.gateway)
    await pings(a2.netns_path, a2.gateway)

    await one.teardown()
    assert one.nft_table not in (await sh(*in_ns(node.path, "nft", "list", "tables"))).stdout
    links = (await sh(*in_ns(node.path, "ip", "-o", "link", "show"))).stdout
    assert one.bridge not in links and a1.host_veth not in links
    assert netns_names(one.netns_prefix) == []
    # The other is untouched.
    assert await two.endpoints() == [a2]
    assert "masquerade" in await nft_table(node.path, two.nft_table)
    await pings(a2.netns_path, a2.gateway)


async def test_teardown_removes_everything_it_made(lab: Lab):
    node = await lab.node()
    net = lab.network(node)
    await net.ensure()
    await asyncio.gather(net.attach("t1"), net.attach("t2"))
    await net.teardown()
    await net.teardown()  # twice is fine
    links = (await sh(*in_ns(node.path, "ip", "-o", "link", "show"))).stdout
    assert net.bridge not in links and "vsk" not in links
    assert net.nft_table not in (await sh(*in_ns(node.path, "nft", "list", "tables"))).stdout
    assert netns_names(net.netns_prefix) == []
    assert net.ipam.allocations() == {}
    assert await net.endpoints() == []


AGENT = """
import asyncio, json, sys
from agent.network import NodeNetwork
state, subnet, bridge, table, prefix, verb = sys.argv[1:7]
async def main():
    net = NodeNetwork(state, subnet, bridge, table, prefix)  # the process's own namespace
    if verb == "up":
        await net.ensure()
        eps = [await net.attach(c) for c in ("p1", "p2")]
    elif verb == "list":
        eps = await net.endpoints()
    else:
        await net.teardown()
        eps = []
    print(json.dumps([{"ns": str(e.netns_path), "ip": str(e.ip.ip)} for e in eps]))
asyncio.run(main())
"""


async def test_agent_started_inside_a_lab_node_namespace(lab: Lab):
    """The lab-node way: the agent process is put into the node's namespace with
    `nsenter --net` and NodeNetwork works on its own namespace, never the root one."""
    node = await lab.node()
    # Names and state dir for the child; node_netns only matters to the fixture's cleanup.
    probe = lab.network(node)
    args = [str(probe.state_dir), str(probe.subnet), probe.bridge, probe.nft_table,
            probe.netns_prefix]

    async def agent(verb: str) -> list[dict[str, str]]:
        res = await sh(*in_ns(node.path, sys.executable, "-c", AGENT, *args, verb),
                       timeout=60)
        return json.loads(res.stdout)

    up = await agent("up")
    assert await agent("list") == up  # a second process adopts what the first made
    assert probe.bridge in (await sh(*in_ns(node.path, "ip", "-o", "link", "show"))).stdout
    assert probe.bridge not in (await sh("ip", "-o", "link", "show")).stdout
    await pings(up[0]["ns"], up[1]["ip"])
    assert await agent("down") == []
    assert netns_names(probe.netns_prefix) == []
    assert probe.nft_table not in (await sh(*in_ns(node.path, "nft", "list", "tables"))).stdout
