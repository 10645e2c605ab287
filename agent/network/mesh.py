"""RoutingMesh: every node publishes every service's published ports (issue 5).

The rules themselves are built by mesh_rules.mesh_ruleset (pure, checked); this module
applies them to the node's namespace. Like NodeNetwork, every nft call and sysctl write
blocks and acts on the calling thread's namespace, so each runs via asyncio.to_thread on
a fresh thread that enters `node_netns` first (None: the agent's own namespace).

What the agent feeds it (see docs/networking.md, "Routing mesh"):
mesh_endpoints.publications(every Endpoints object, this node's name, network ->
internal): one Publication per published port, backends = the ready replicas' IPs on the
service's first non-internal network (mode ingress: every node's; mode host: this node's,
and the publication only when a replica of the service runs on this node).

UDP has no connection to end: a client that keeps sending from one port keeps its conntrack
entry, DNATed to a replica that may be gone, alive for as long as it sends. So after each
change the entries of mesh UDP flows to backends that were dropped are deleted (what
kube-proxy does too). TCP needs nothing: a new connection is a new entry.

Sysctls: net.ipv4.ip_forward=1 (DNATed connections are forwarded to the bridge or the
overlay). route_localnet stays off: loopback is not published (see mesh_rules).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Iterable
from ipaddress import IPv4Address
from pathlib import Path

from agent.network.bridge import enable_ip_forward, nft
from agent.network.mesh_rules import (
    MESH_MARK,
    MeshRules,
    Publication,
    Rule,
    check_mark,
    check_table,
    drop_ruleset,
    mesh_ruleset,
    publications_summary,
)
from agent.network.netns import run_in_netns

log = logging.getLogger(__name__)

__all__ = ["MeshRules", "Publication", "RoutingMesh"]


class RoutingMesh:
    def __init__(self, table: str, node_netns: Path | str | None = None, *,
                 mark: int = MESH_MARK) -> None:
        self.table = check_table(table)
        self.mark = check_mark(mark)
        self.node_netns = None if node_netns is None else Path(node_netns)
        self._applied: str | None = None  # the script the kernel has, as far as we know
        self._rules: list[Rule] = []  # what that script publishes
        self._lock = asyncio.Lock()  # one nft transaction at a time, in call order

    async def _run(self, fn: object, *args: object) -> None:
        await asyncio.to_thread(run_in_netns, self.node_netns, fn, *args)  # type: ignore[arg-type]

    async def update(self, publications: Iterable[Publication], *,
                     force: bool = False) -> MeshRules:
        """Publish exactly `publications`. Applies (one atomic transaction) only when the
        generated table differs from the last one applied; `force` re-applies anyway,
        for a periodic resync in case someone flushed the ruleset under us."""
        rules = mesh_ruleset(self.table, publications, self.mark)
        for service, why in rules.skipped:
            log.warning("routing mesh: %s not published: %s", service, why)
        async with self._lock:
            if rules.script == self._applied and not force:
                return rules
            self._applied = None  # unknown until nft says otherwise
            await self._run(_apply, rules.script)
            self._applied = rules.script
            gone = _udp_backends(self._rules) - _udp_backends(rules.rules)
            self._rules = rules.rules
            if gone:
                await self._run(forget_udp_flows, gone, self.mark)
        log.info("routing mesh %s: %s", self.table, publications_summary(rules.rules))
        return rules

    async def remove(self) -> None:
        """Drop the table (a missing one is fine). ip_forward stays: the bridge needs it."""
        async with self._lock:
            self._applied = None
            self._rules = []
            await self._run(nft, drop_ruleset(self.table))

    @property
    def applied(self) -> str | None:
        """The script last applied (None before the first update and after remove)."""
        return self._applied


def _apply(script: str) -> None:
    # Forwarding first: with the table in place but forwarding off, DNATed connections
    # would be dropped silently instead of refused.
    enable_ip_forward()
    nft(script)


def _udp_backends(rules: Iterable[Rule]) -> set[tuple[IPv4Address, int]]:
    return {(ip, r.target) for r in rules if r.protocol == "udp" for ip in r.backends}


def forget_udp_flows(backends: set[tuple[IPv4Address, int]], mark: int) -> int:
    """Delete the conntrack entries of mesh UDP flows answered by these (address, port)s.
    Best effort: a missing conntrack netlink only costs stale flows until they time out.
    Returns how many were deleted."""
    from pyroute2 import Conntrack
    from pyroute2.netlink.exceptions import NetlinkError
    from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple

    deleted = 0
    try:
        with Conntrack() as ct:
            # The kernel filters on the mesh bit; the reply tuple's source is the backend.
            # Read the whole dump before deleting: pyroute2's sync wrapper cannot run a
            # request while a dump is still being iterated.
            entries = list(ct.dump_entries(
                mark=mark, mark_mask=mark, tuple_reply=NFCTAttrTuple(proto=socket.IPPROTO_UDP)))
            for entry in entries:
                reply = entry.tuple_reply
                if (IPv4Address(reply.saddr), reply.sport) not in backends:
                    continue
                try:
                    ct.entry("del", tuple_orig=entry.tuple_orig)
                    deleted += 1
                except NetlinkError as exc:
                    if exc.code != errno.ENOENT:  # expired meanwhile: fine
                        raise
    except (NetlinkError, OSError) as exc:
        log.warning("routing mesh: could not forget UDP flows to %s: %s",
                    ", ".join(f"{ip}:{port}" for ip, port in sorted(backends)), exc)
    return deleted
