"""Container endpoints on a real bridge: reachability, idempotence, rollback, detach."""

from __future__ import annotations

import asyncio
from ipaddress import IPv4Interface

import pytest

from agent.network import NetworkError, NodeNetwork
from agent.network import endpoint as endpoint_mod
from tests.integration.network.helpers import (
    Lab,
    in_ns,
    needs_root,
    netns_names,
    pings,
    sh,
)

pytestmark = [pytest.mark.integration, needs_root]


async def node_links(node_path: object) -> str:
    return (await sh(*in_ns(str(node_path), "ip", "-o", "link", "show"))).stdout


def ipam_files(net: NodeNetwork) -> list[str]:
    return sorted(p.name for p in net.ipam.dir.glob("*") if not p.name.startswith("."))


def records(net: NodeNetwork) -> list[str]:
    d = net.state_dir / "endpoints"
    return sorted(p.name for p in d.glob("*")) if d.is_dir() else []


async def test_two_endpoints_reach_each_other_and_the_gateway(lab: Lab):
    node = await lab.node()
    net = lab.network(node)
    await net.ensure()
    a = await net.attach("ctr-a")
    b = await net.attach("ctr-b")
    assert a.ip != b.ip and {a.ip, b.ip} <= set(IPv4Interface(f"{h}/24") for h in
                                                net.subnet.hosts())
    assert a.gateway == b.gateway == net.gateway.ip
    assert len(a.host_veth) <= 15 and a.netns_path.name == f"{net.netns_prefix}ctr-a"

    await pings(a.netns_path, b.ip.ip)
    await pings(b.netns_path, a.ip.ip)
    await pings(a.netns_path, a.gateway)

    # Inside: eth0 with the address and MAC we report, lo up, default route via gateway.
    addr = (await sh(*in_ns(a.netns_path, "ip", "-o", "-4", "addr", "show", "dev",
                            "eth0"))).stdout
    assert str(a.ip) in addr
    link = (await sh(*in_ns(a.netns_path, "ip", "-o", "link", "show", "dev", "eth0"))).stdout
    assert a.mac in link and "UP" in link
    route = (await sh(*in_ns(a.netns_path, "ip", "route", "show", "default"))).stdout
    assert f"default via {a.gateway} dev eth0" in route
    lo = (await sh(*in_ns(a.netns_path, "ip", "-o", "link", "show", "dev", "lo"))).stdout
    assert "UP" in lo
    # The host end is a port of the node's bridge.
    assert f"master {net.bridge}" in (await sh(*in_ns(node.path, "ip", "-o", "link", "show",
                                                      "dev", a.host_veth))).stdout


async def test_attach_is_idempotent_and_survives_a_restart(lab: Lab):
    node = await lab.node()
    net = lab.network(node)
    await net.ensure()
    first = await net.attach("web-1")
    assert await net.attach("web-1") == first
    assert (await node_links(node.path)).count(first.host_veth) == 1
    assert len(ipam_files(net)) == 1

    # A new agent process (fresh object, same state dir and names) adopts it.
    again = NodeNetwork(net.state_dir, net.subnet, net.bridge, net.nft_table, net.netns_prefix,
                        node_netns=node.path)
    assert await again.endpoints() == [first]
    assert await again.stale() == []
    assert await again.attach("web-1") == first

    # Repair: the veth vanished (say, a crash mid-attach); attach rebuilds, same address.
    await sh(*in_ns(node.path, "ip", "link", "del", first.host_veth))
    assert await net.endpoints() == [first]  # the namespace is still there
    repaired = await net.attach("web-1")
    assert repaired.ip == first.ip and repaired.host_veth == first.host_veth
    await pings(repaired.netns_path, repaired.gateway)


async def test_detach_removes_everything_and_repeats(lab: Lab):
    node = await lab.node()
    net = lab.network(node)
    await net.ensure()
    ep = await net.attach("gone-1")
    keep = await net.attach("keep-1")
    await net.detach("gone-1")

    assert ep.host_veth not in await node_links(node.path)
    assert ep.netns_path.name not in netns_names(lab.token)
    assert str(ep.ip.ip) not in ipam_files(net)
    assert records(net) == ["keep-1.json"]
    assert await net.endpoints() == [keep]
    # Again, and for an id never attached: both fine.
    await net.detach("gone-1")
    await net.detach("never-attached")
    await pings(keep.netns_path, keep.gateway)


async def test_detach_tolerates_pieces_already_gone(lab: Lab):
    node = await lab.node()
    net = lab.network(node)
    await net.ensure()
    ep = await net.attach("half-1")
    await sh("ip", "netns", "del", ep.netns_path.name)  # namespace (and with it the pair)
    assert await net.endpoints() == []
    assert await net.stale() == ["half-1"]
    await net.detach("half-1")
    assert ipam_files(net) == [] and records(net) == []


async def test_attach_rolls_back_when_the_bridge_is_missing(lab: Lab):
    node = await lab.node()
    net = lab.network(node)  # no ensure(): the veth cannot join a bridge
    with pytest.raises(NetworkError, match="bridge"):
        await net.attach("doomed")
    assert "vsk" not in await node_links(node.path)
    assert netns_names(net.netns_prefix) == []
    assert ipam_files(net) == [] and records(net) == []


async def test_attach_rolls_back_a_late_failure(lab: Lab, monkeypatch: pytest.MonkeyPatch):
    node = await lab.node()
    net = lab.network(node)
    await net.ensure()

    def broken(*_args: object) -> str:
        raise OSError(99, "injected failure inside the container namespace")

    monkeypatch.setattr(endpoint_mod, "_configure_inside", broken)
    with pytest.raises(NetworkError, match="injected"):
        await net.attach("doomed")
    assert "vsk" not in await node_links(node.path)  # the veth had joined the bridge
    assert netns_names(net.netns_prefix) == []
    assert ipam_files(net) == [] and records(net) == []
    monkeypatch.undo()
    ok = await net.attach("doomed")  # the failure left nothing in the way
    await pings(ok.netns_path, ok.gateway)


async def test_concurrent_attaches_get_distinct_addresses(lab: Lab):
    node = await lab.node()
    net = lab.network(node)
    await net.ensure()
    ids = [f"c{i}" for i in range(8)]
    eps = await asyncio.gather(*(net.attach(cid) for cid in ids))
    assert len({ep.ip for ep in eps}) == len({ep.host_veth for ep in eps}) == 8
    again = await asyncio.gather(*(net.attach(cid) for cid in ids))  # all idempotent
    assert again == eps
    await pings(eps[0].netns_path, eps[-1].ip.ip)
    await asyncio.gather(*(net.detach(cid) for cid in ids))
    assert ipam_files(net) == [] and netns_names(net.netns_prefix) == []


async def test_cancelled_attach_leaves_a_state_detach_can_clean(lab: Lab):
    node = await lab.node()
    net = lab.network(node)
    await net.ensure()
    task = asyncio.create_task(net.attach("cancel-1"))
    await asyncio.sleep(0)  # let it start its thread
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The thread finished before the cancellation landed: a whole endpoint, not half of one.
    assert [ep.container_id for ep in await net.endpoints()] == ["cancel-1"]
    await net.detach("cancel-1")
    assert ipam_files(net) == [] and netns_names(net.netns_prefix) == []
    assert "vsk" not in await node_links(node.path)
