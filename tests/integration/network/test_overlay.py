"""Cluster networks across nodes: two node namespaces on an underlay switch, a VXLAN overlay
between them, containers on one or several networks (docs/networking.md, "On each node")."""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from agent.network import NetworkEndpoint, NetworkError, NodeNetwork, Peer
from agent.network import attach as attach_mod
from agent.network.naming import bridge_name, vxlan_name
from tests.integration.network.helpers import BUSYBOX, in_ns, needs_root, netns_names, pings, sh
from tests.integration.network.overlay_lab import OverlayLab, OverlayNode

pytestmark = [pytest.mark.integration, needs_root]


async def unreachable(from_netns: Path | str, ip: IPv4Address | str) -> bool:
    """True if a ping (two tries, 1 s each) gets no answer."""
    for _ in range(2):
        res = await sh(*in_ns(from_netns, BUSYBOX, "ping", "-c1", "-W1", str(ip)), check=False)
        if res.returncode == 0:
            return False
    return True


def counter(table: str, rule: str) -> int:
    """Packets counted by the first rule containing `rule`."""
    for line in table.splitlines():
        if rule in line:
            found = re.search(r"counter packets (\d+)", line)
            assert found, line
            return int(found.group(1))
    raise AssertionError(f"no rule {rule!r} in\n{table}")


async def two_nodes(lab: OverlayLab) -> tuple[OverlayNode, OverlayNode]:
    a, b = await lab.node(), await lab.node()
    await pings(a.path, b.vtep)  # the underlay works before the overlay is tried
    return a, b


async def peer_up(node: OverlayNode, name: str, remote: OverlayNode,
                  remote_eps: list[NetworkEndpoint], local: list[NetworkEndpoint]) -> None:
    """Tell `node` about the remote node's gateway and containers (and, to show they are
    ignored, its own)."""
    gateway = remote_eps[0].gateway if remote_eps else None
    peers = {Peer(ep.ip.ip, remote.vtep) for ep in remote_eps}
    if gateway is not None:
        peers.add(Peer(gateway, remote.vtep))
    peers |= {Peer(ep.ip.ip, node.vtep) for ep in local}
    await node.net.set_peers(name, peers)


async def test_containers_on_two_nodes_reach_each_other_over_vxlan(overlay_lab: OverlayLab):
    a, b = await two_nodes(overlay_lab)
    cfg_a, cfg_b = overlay_lab.config(a), overlay_lab.config(b)
    assert cfg_a.slice != cfg_b.slice and cfg_a.vni == cfg_b.vni
    for node, cfg in ((a, cfg_a), (b, cfg_b)):
        await node.net.ensure_network(cfg)
        await node.net.ensure_network(cfg)  # repeatable
    [ea] = await a.net.attach_networks("ctr", [cfg_a])
    [eb] = await b.net.attach_networks("ctr", [cfg_b])
    assert ea.ip.ip in cfg_a.slice and eb.ip.ip in cfg_b.slice
    assert ea.ip.network == cfg_a.subnet  # the whole network is on-link
    assert ea.gateway == cfg_a.slice.network_address + 1 and ea.ifname == "eth0"
    assert ea.mac == "02:42:" + ":".join(f"{x:02x}" for x in ea.ip.ip.packed)

    # The devices, as the contract says.
    vx = vxlan_name(overlay_lab.token, cfg_a.vni)
    br = bridge_name(overlay_lab.token, cfg_a.vni)
    detail = (await sh(*in_ns(a.path, "ip", "-d", "link", "show", vx))).stdout
    assert f"vxlan id {cfg_a.vni} local {a.vtep}" in detail and "dstport 4789" in detail
    assert "nolearning" in detail and "proxy" in detail and f"master {br}" in detail
    assert "mtu 1450" in detail
    bridge = (await sh(*in_ns(a.path, "ip", "-d", "addr", "show", br))).stdout
    assert f"inet {cfg_a.gateway}" in bridge and "mtu 1450" in bridge
    assert "link/ether 02:42:0a:96:00:01" in bridge  # the gateway's MAC: 10.150.0.1

    # Without peers nothing crosses: there is no flooding entry.
    ea_ns = a.net.netns_path("ctr")
    assert await unreachable(ea_ns, eb.ip.ip)

    await peer_up(a, cfg_a.name, b, [eb], [ea])
    await peer_up(b, cfg_b.name, a, [ea], [eb])
    eb_ns = b.net.netns_path("ctr")
    await pings(ea_ns, eb.ip.ip)
    await pings(eb_ns, ea.ip.ip)
    await pings(ea_ns, eb.gateway)  # the other node's bridge too
    fdb = (await sh(*in_ns(a.path, "bridge", "fdb", "show", "dev", vx))).stdout
    assert f"{eb.mac} dst {b.vtep} self permanent" in fdb
    assert ea.mac not in fdb  # the local peer was ignored
    # No all-zeros (default destination) entry: broadcasts and unknown unicast never leave
    # the node, so nothing floods across the cluster.
    assert "00:00:00:00:00:00" not in fdb
    neigh = (await sh(*in_ns(a.path, "ip", "neigh", "show", "dev", vx))).stdout
    assert f"{eb.ip.ip} lladdr {eb.mac} PERMANENT" in neigh
    # Programming the same set again changes nothing.
    again = await a.net.set_peers(cfg_a.name, {Peer(eb.ip.ip, b.vtep), Peer(eb.gateway, b.vtep)})
    assert not again

    # Removing the peer breaks reachability (the ARP cache still knows the MAC: the missing
    # forwarding entry alone stops it).
    changes = await a.net.set_peers(cfg_a.name, {Peer(eb.gateway, b.vtep)})
    assert changes.fdb_del == {(eb.mac, b.vtep)}
    assert changes.neigh_del == {(eb.ip.ip, eb.mac)}
    assert await unreachable(ea_ns, eb.ip.ip)
    await pings(ea_ns, eb.gateway)
    await a.net.set_peers(cfg_a.name, {Peer(eb.ip.ip, b.vtep), Peer(eb.gateway, b.vtep)})
    await pings(ea_ns, eb.ip.ip)

    # Leaving the subnet is masqueraded; within it addresses are kept.
    table = await a.table()
    assert f"ip saddr {cfg_a.subnet} ip daddr != {cfg_a.subnet} counter" in table


async def test_second_network_is_isolated_and_containers_join_several(overlay_lab: OverlayLab):
    a, b = await two_nodes(overlay_lab)
    front_a, front_b = overlay_lab.config(a), overlay_lab.config(b)
    back_a = overlay_lab.config(a, "back", 4097, "10.151.0.0/20")
    for node, cfg in ((a, front_a), (b, front_b), (a, back_a)):
        await node.net.ensure_network(cfg)
    [ea] = await a.net.attach_networks("one", [front_a])
    [eb] = await b.net.attach_networks("two", [front_b])
    [other] = await a.net.attach_networks("other", [back_a])
    await peer_up(a, front_a.name, b, [eb], [ea])
    await peer_up(b, front_b.name, a, [ea], [eb])
    await pings(a.net.netns_path("one"), eb.ip.ip)

    other_ns = a.net.netns_path("other")
    await pings(other_ns, other.gateway)
    # Routed through node A to the other network's bridge: dropped between bridges.
    before = counter(await a.table(), f'iifname "{bridge_name(overlay_lab.token, 4097)}" '
                                      "oifname")
    assert await unreachable(other_ns, ea.ip.ip)
    assert await unreachable(other_ns, eb.ip.ip)
    after = counter(await a.table(), f'iifname "{bridge_name(overlay_lab.token, 4097)}" '
                                     "oifname")
    assert after > before

    # One container on both: eth0 on the first, eth1 on the second, default via the first.
    both = await a.net.attach_networks("both", [back_a, front_a])
    assert [(e.network, e.ifname) for e in both] == [(back_a.name, "eth0"),
                                                      (front_a.name, "eth1")]
    both_ns = a.net.netns_path("both")
    route = (await sh(*in_ns(both_ns, "ip", "route", "show", "default"))).stdout
    assert f"default via {both[0].gateway} dev eth0" in route
    link = (await sh(*in_ns(both_ns, "ip", "-o", "link", "show", "eth1"))).stdout
    assert both[1].mac in link and "mtu 1450" in link
    # Node B learns of the new container on the shared network; then it is reachable.
    assert await unreachable(both_ns, eb.ip.ip)
    await peer_up(b, front_b.name, a, [ea, both[1]], [eb])
    await pings(both_ns, eb.ip.ip)  # on-link on eth1, across the overlay
    await pings(both_ns, other.ip.ip)  # on-link on eth0
    assert await a.net.attach_networks("both", [back_a, front_a]) == both  # repeatable


async def test_internal_network_has_no_default_route_and_no_forwarding(
        overlay_lab: OverlayLab):
    a = await overlay_lab.node()
    internal = overlay_lab.config(a, "priv", 4100, "10.152.0.0/24", internal=True)
    public = overlay_lab.config(a, "pub", 4101, "10.153.0.0/24")
    await a.net.ensure_network(internal)
    await a.net.ensure_network(public)
    [ep] = await a.net.attach_networks("locked", [internal])
    ns = a.net.netns_path("locked")
    assert (await sh(*in_ns(ns, "ip", "route", "show", "default"))).stdout.strip() == ""
    await pings(ns, ep.gateway)  # the node itself (its DNS server) stays reachable
    table = await a.table()
    priv = bridge_name(overlay_lab.token, 4100)
    assert f'iifname "{priv}" oifname != "{priv}" counter' in table
    assert f"ip saddr {internal.subnet}" not in table  # no masquerade
    assert f"ip saddr {public.subnet} ip daddr != {public.subnet}" in table

    # Internal first, public second: the default route goes via the public one.
    mixed = await a.net.attach_networks("mixed", [internal, public])
    route = (await sh(*in_ns(a.net.netns_path("mixed"), "ip", "route", "show",
                             "default"))).stdout
    assert f"default via {mixed[1].gateway} dev eth1" in route


async def test_remove_network_refuses_while_attached_then_leaves_nothing(
        overlay_lab: OverlayLab):
    a = await overlay_lab.node()
    cfg = overlay_lab.config(a)
    keep = overlay_lab.config(a, "keep", 4200, "10.154.0.0/24")
    await a.net.ensure_network(cfg)
    await a.net.ensure_network(keep)
    await a.net.attach_networks("held", [cfg])
    with pytest.raises(NetworkError, match="held"):
        await a.net.remove_network(cfg.name)
    await a.net.detach("held")
    await a.net.detach("held")  # repeatable
    await a.net.remove_network(cfg.name)
    await a.net.remove_network(cfg.name)  # so is this

    links = await a.links()
    assert bridge_name(overlay_lab.token, cfg.vni) not in links
    assert vxlan_name(overlay_lab.token, cfg.vni) not in links
    assert f"{overlay_lab.token}v" not in links  # no veth
    table = await a.table()
    assert str(cfg.subnet) not in table and str(keep.subnet) in table
    assert not (a.net.state_dir / "networks" / cfg.name).exists()
    assert netns_names(a.net.netns_prefix) == []
    assert [c.name for c in await a.net.networks()] == [keep.name]
    with pytest.raises(NetworkError, match="not ensured"):
        await a.net.attach_networks("late", [cfg])


async def test_attach_rolls_back_and_survives_a_restart(overlay_lab: OverlayLab,
                                                        monkeypatch: pytest.MonkeyPatch):
    a = await overlay_lab.node()
    one = overlay_lab.config(a)
    two = overlay_lab.config(a, "two", 4300, "10.155.0.0/24")
    await a.net.ensure_network(one)
    await a.net.ensure_network(two)

    def broken(*_args: object) -> None:
        raise OSError(99, "injected failure inside the container namespace")

    monkeypatch.setattr(attach_mod, "_configure_inside", broken)
    with pytest.raises(NetworkError, match="injected"):
        await a.net.attach_networks("doomed", [one, two])
    assert f"{overlay_lab.token}v" not in await a.links()
    assert netns_names(a.net.netns_prefix) == []
    assert not list((a.net.state_dir / "networks").glob("*/ipam/1*"))
    assert not (a.net.state_dir / "attachments" / "doomed.json").exists()
    monkeypatch.undo()

    eps = await a.net.attach_networks("doomed", [one, two])
    # A new agent process (fresh object, same state and names) adopts it.
    again = NodeNetwork(a.net.state_dir, a.net.subnet, a.net.bridge, a.net.nft_table,
                        a.net.netns_prefix, node_netns=a.path, ifprefix=overlay_lab.token)
    [att] = await again.attachments()
    assert list(att.endpoints) == eps and await again.stale() == []
    assert await again.networks() == [one, two]
    assert await again.attach_networks("doomed", [one, two]) == eps

    # Repair: a veth vanished; attach rebuilds with the same addresses.
    await sh(*in_ns(a.path, "ip", "link", "del", eps[1].host_veth))
    repaired = await again.attach_networks("doomed", [one, two])
    assert [e.ip for e in repaired] == [e.ip for e in eps]
    await pings(a.net.netns_path("doomed"), repaired[1].gateway)
    # Another set of networks: the dropped network's address is released.
    [only] = await again.attach_networks("doomed", [two])
    assert only.ifname == "eth0" and only.ip == eps[1].ip
    assert not list((a.net.state_dir / "networks" / one.name / "ipam").glob("1*"))


async def test_teardown_removes_networks_legacy_bridge_and_all_state(overlay_lab: OverlayLab):
    a = await overlay_lab.node()
    cfg = overlay_lab.config(a)
    await a.net.ensure()  # the single bridge too: they share the table
    await a.net.ensure_network(cfg)
    table = await a.table()
    assert f"ip saddr {a.net.subnet}" in table and f"ip saddr {cfg.subnet}" in table
    await a.net.ensure()  # the legacy ensure keeps the network's rules
    assert f"ip saddr {cfg.subnet}" in await a.table()
    legacy = await a.net.attach("old")
    await a.net.attach_networks("new", [cfg])
    await a.net.set_peers(cfg.name, {Peer(IPv4Address("10.150.0.70"), IPv4Address(
        str(a.vtep + 1)))})
    await pings(legacy.netns_path, legacy.gateway)

    await a.net.teardown()
    await a.net.teardown()  # twice is fine
    links = await a.links()
    assert overlay_lab.token not in links and "vsk" not in links
    assert a.net.nft_table not in await a.tables()
    assert netns_names(a.net.netns_prefix) == []
    state = a.net.state_dir
    assert not (state / "networks").exists()
    assert not list(state.glob("attachments/*"))
    assert a.net.ipam.allocations() == {}
    assert await a.net.networks() == [] and await a.net.attachments() == []


async def test_ensure_applies_a_changed_slice_and_vtep(overlay_lab: OverlayLab):
    a = await overlay_lab.node()
    first = overlay_lab.config(a)
    await a.net.ensure_network(first)
    await a.net.set_peers(first.name, {Peer(IPv4Address("10.150.0.70"), a.vtep + 1)})
    moved = type(first)(first.name, first.vni, first.subnet, IPv4Network("10.150.1.0/26"),
                        first.internal, a.vtep + 5)
    await sh(*in_ns(a.path, "ip", "addr", "add", f"{a.vtep + 5}/32", "dev", "eth0"))
    await a.net.attach_networks("pin", [first])
    with pytest.raises(NetworkError, match="slice changed"):
        await a.net.ensure_network(moved)
    await a.net.detach("pin")
    await a.net.ensure_network(moved)

    br = bridge_name(overlay_lab.token, first.vni)
    addrs = (await sh(*in_ns(a.path, "ip", "-o", "-4", "addr", "show", "dev", br))).stdout
    assert str(moved.gateway) in addrs and str(first.gateway) not in addrs
    detail = (await sh(*in_ns(a.path, "ip", "-d", "link", "show",
                              vxlan_name(overlay_lab.token, first.vni)))).stdout
    assert f"local {moved.vtep}" in detail and f"master {br}" in detail
    [ep] = await a.net.attach_networks("new", [moved])
    assert ep.ip.ip in moved.slice and ep.gateway == moved.gateway.ip
    await pings(a.net.netns_path("new"), ep.gateway)
