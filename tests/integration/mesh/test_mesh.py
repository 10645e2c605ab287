"""The routing mesh on real namespaces: round robin, updates, host_ip, UDP, refusal,
the node's own connections, ordinary traffic left alone, removal."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Callable
from typing import TypeVar

import pytest

from agent.network.bridge import nft
from agent.network.mesh import Publication, RoutingMesh
from agent.network.mesh_rules import drop_ruleset
from skiff.models.appspec import PortMapping
from tests.integration.mesh.lab import (
    CLIENT_IP,
    GATEWAY,
    NODE_IP,
    NODE_IP2,
    MeshLab,
    http_get,
    http_gets,
    node_tables,
    read_sysctl,
    tcp_refused,
    udp_ask,
    udp_asks,
    udp_refused,
)

T = TypeVar("T")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces and nftables"),
]


async def client(lab: MeshLab, fn: Callable[..., T], *args: object) -> T:
    return await asyncio.to_thread(lab.in_client, fn, *args)


async def on_node(lab: MeshLab, fn: Callable[..., T], *args: object) -> T:
    return await asyncio.to_thread(lab.in_node, fn, *args)


def web(lab: MeshLab, count: int | None = None, **port: object) -> Publication:
    backends = lab.backends if count is None else lab.backends[:count]
    mapping = PortMapping(**{"target": 80, "published": 8080, **port})  # type: ignore[arg-type]
    return Publication("app/web", mapping, [b.ip for b in backends])


def names(answers: list[str]) -> Counter[str]:
    return Counter(a.split()[0] for a in answers)


async def test_round_robin_over_every_backend(lab: MeshLab, mesh: RoutingMesh):
    rules = await mesh.update([web(lab)])
    assert rules.skipped == [] and mesh.applied == rules.script
    # Forwarding was off in the fresh node namespace; the mesh turned it on.
    assert read_sysctl(lab, "net.ipv4.ip_forward") == "1"
    assert read_sysctl(lab, "net.ipv4.conf.all.route_localnet") == "0"

    answers = await client(lab, http_gets, NODE_IP, 8080, 300)
    seen = names(answers)
    assert set(seen) == {b.name for b in lab.backends}
    # numgen inc: strict rotation, so an even split (allow a little for stray connections).
    assert all(90 <= n <= 110 for n in seen.values()), seen
    # Masqueraded: the backend sees the node's bridge address, not the client's.
    assert {a.split()[1] for a in answers} == {GATEWAY}


async def test_update_removes_a_backend_and_is_applied_only_on_change(lab: MeshLab,
                                                                      mesh: RoutingMesh):
    await mesh.update([web(lab)])
    assert len(names(await client(lab, http_gets, NODE_IP, 8080, 30))) == 3
    await mesh.update([web(lab, count=2)])
    seen = names(await client(lab, http_gets, NODE_IP, 8080, 60))
    assert set(seen) == {lab.backends[0].name, lab.backends[1].name}, seen

    # Same publications: no transaction. Seen by deleting the table behind its back.
    await on_node(lab, nft, drop_ruleset(lab.table))
    await mesh.update([web(lab, count=2)])
    assert lab.table not in node_tables(lab)
    # force (the agent's periodic resync) puts it back.
    await mesh.update([web(lab, count=2)], force=True)
    assert lab.table in node_tables(lab)
    assert len(names(await client(lab, http_gets, NODE_IP, 8080, 10))) == 2


async def test_host_ip_restricts_the_destination(lab: MeshLab, mesh: RoutingMesh):
    await mesh.update([web(lab, published=8081, host_ip=NODE_IP)])
    assert (await client(lab, http_get, NODE_IP, 8081)).split()[0].startswith(lab.token)
    # The node's other address: not published there, so nothing listens (kernel RST).
    was_refused, took = await client(lab, tcp_refused, NODE_IP2, 8081)
    assert was_refused and took < 1.0


async def test_udp_publication(lab: MeshLab, mesh: RoutingMesh):
    await mesh.update([web(lab, published=5353, protocol="udp")])
    answers = await client(lab, udp_asks, NODE_IP, 5353, 30)
    assert set(names(answers)) == {b.name for b in lab.backends}
    assert {a.split()[1] for a in answers} == {GATEWAY}
    # TCP on the same port is not published.
    was_refused, _ = await client(lab, tcp_refused, NODE_IP, 5353)
    assert was_refused


async def test_a_udp_flow_to_a_removed_backend_moves_on(lab: MeshLab, mesh: RoutingMesh):
    """One client port keeps one conntrack entry: the mesh must forget the entries of
    flows to a backend it drops, or that client keeps talking to the dead replica."""
    await mesh.update([web(lab, published=5353, protocol="udp")])
    first = (await client(lab, udp_ask, NODE_IP, 5353, 3.0, 40123)).split()[0]
    assert (await client(lab, udp_ask, NODE_IP, 5353, 3.0, 40123)).split()[0] == first
    keep = [b for b in lab.backends if b.name != first]
    await mesh.update([Publication("app/web", PortMapping(80, 5353, "udp"),
                                   [b.ip for b in keep])])
    again = (await client(lab, udp_ask, NODE_IP, 5353, 3.0, 40123)).split()[0]
    assert again in {b.name for b in keep}


async def test_no_ready_backend_refuses_fast(lab: MeshLab, mesh: RoutingMesh):
    await mesh.update([web(lab, count=0, published=9090),
                       web(lab, count=0, published=9090, protocol="udp"), web(lab)])
    was_refused, took = await client(lab, tcp_refused, NODE_IP, 9090)
    assert was_refused and took < 1.0
    was_refused, took = await client(lab, udp_refused, NODE_IP, 9090)
    assert was_refused and took < 1.0
    # From the node itself too (output path, then the input chain's reject).
    was_refused, took = await on_node(lab, tcp_refused, NODE_IP, 9090)
    assert was_refused and took < 1.0
    # The others still work.
    assert len(await client(lab, http_gets, NODE_IP, 8080, 3)) == 3


async def test_the_node_reaches_its_own_published_ports(lab: MeshLab, mesh: RoutingMesh):
    await mesh.update([web(lab)])
    for address in (NODE_IP, GATEWAY):
        seen = names(await on_node(lab, http_gets, address, 8080, 30))
        assert set(seen) == {b.name for b in lab.backends}, (address, seen)
    # Loopback is deliberately not published (no route_localnet): refused, not hung.
    was_refused, took = await on_node(lab, tcp_refused, "127.0.0.1", 8080)
    assert was_refused and took < 1.0


async def test_traffic_to_other_hosts_is_left_alone(lab: MeshLab, mesh: RoutingMesh):
    await mesh.update([web(lab)])
    target = lab.backends[0]
    # To a backend's own address on the published port: forwarded as is, and refused by
    # that backend (nothing listens on 8080 there), not DNATed by the node.
    was_refused, _ = await client(lab, tcp_refused, target.ip, 8080)
    assert was_refused
    # Ordinary forwarded traffic keeps its source address: no mesh mark, no masquerade.
    assert await client(lab, http_get, target.ip, 80) == f"{target.name} {CLIENT_IP}"


async def test_remove_leaves_no_table(lab: MeshLab, mesh: RoutingMesh):
    await mesh.update([web(lab)])
    assert lab.table in node_tables(lab)
    await mesh.remove()
    assert lab.table not in node_tables(lab) and mesh.applied is None
    was_refused, _ = await client(lab, tcp_refused, NODE_IP, 8080)
    assert was_refused
    await mesh.remove()  # again: fine
    # And it comes back on the next update.
    await mesh.update([web(lab)])
    assert len(await client(lab, http_gets, NODE_IP, 8080, 3)) == 3
