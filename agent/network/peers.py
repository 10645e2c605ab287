"""Remote addresses of a cluster network on the node's VXLAN device.

For each address living on another node: a forwarding entry MAC -> that node's VTEP (`bridge
fdb ... self dst VTEP`) so frames to it are tunnelled there, and a permanent neighbour entry
ip -> MAC that the device's ARP proxy answers from (ARP never crosses the overlay). The MAC
follows from the address (naming.mac_of), so an (ip, vtep) pair is all a peer needs.

`diff` is pure; `sync` reads the device's entries, applies the difference and returns it.
Blocking netlink in the calling thread's namespace (the node's).
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl import ndmsg

from agent.network.bridge import link_index
from agent.network.config import Peer
from agent.network.errors import NetworkError
from agent.network.naming import mac_of

Fdb = tuple[str, IPv4Address]  # (mac, vtep)
Neigh = tuple[IPv4Address, str]  # (ip, mac)

NTF_SELF = ndmsg.flags["self"]
NUD_PERMANENT = ndmsg.states["permanent"]


@dataclass(frozen=True)
class PeerChanges:
    fdb_add: frozenset[Fdb] = field(default_factory=frozenset)
    fdb_del: frozenset[Fdb] = field(default_factory=frozenset)
    neigh_add: frozenset[Neigh] = field(default_factory=frozenset)
    neigh_del: frozenset[Neigh] = field(default_factory=frozenset)

    def __bool__(self) -> bool:
        return bool(self.fdb_add or self.fdb_del or self.neigh_add or self.neigh_del)


def desired(peers: Iterable[Peer], local_vtep: IPv4Address) -> tuple[set[Fdb], set[Neigh]]:
    """The entries `peers` call for. Peers on this node (their VTEP is ours) need none: they
    are reached through the bridge. Should an address be claimed by two VTEPs (a stale
    report), the lowest wins, so every node picks the same one."""
    vtep_of: dict[IPv4Address, IPv4Address] = {}
    for peer in peers:
        if peer.vtep == local_vtep:
            continue
        vtep_of[peer.ip] = min(peer.vtep, vtep_of.get(peer.ip, peer.vtep))
    fdb = {(mac_of(ip), vtep) for ip, vtep in vtep_of.items()}
    neigh = {(ip, mac_of(ip)) for ip in vtep_of}
    return fdb, neigh


def diff(peers: Iterable[Peer], local_vtep: IPv4Address, fdb_now: set[Fdb],
         neigh_now: set[Neigh]) -> PeerChanges:
    """What to add and delete to go from the device's entries to those `peers` call for.
    An address that moved to another node is a delete plus an add."""
    fdb, neigh = desired(peers, local_vtep)
    return PeerChanges(fdb_add=frozenset(fdb - fdb_now), fdb_del=frozenset(fdb_now - fdb),
                       neigh_add=frozenset(neigh - neigh_now),
                       neigh_del=frozenset(neigh_now - neigh))


# ---- netlink ----------------------------------------------------------------------------


def current(ipr: IPRoute, idx: int) -> tuple[set[Fdb], set[Neigh]]:
    """The device's own unicast forwarding entries (not the bridge's: those have no dst) and
    its permanent neighbours."""
    fdb: set[Fdb] = set()
    for entry in ipr.fdb("dump", ifindex=idx):
        dst = entry.get_attr("NDA_DST")
        mac = entry.get_attr("NDA_LLADDR")
        if entry["ifindex"] == idx and entry["flags"] & NTF_SELF and dst and mac:
            fdb.add((str(mac).lower(), IPv4Address(dst)))
    neigh: set[Neigh] = set()
    for entry in ipr.neigh("dump", ifindex=idx, family=socket.AF_INET):
        dst = entry.get_attr("NDA_DST")
        mac = entry.get_attr("NDA_LLADDR")
        if entry["ifindex"] == idx and entry["state"] & NUD_PERMANENT and dst and mac:
            neigh.add((IPv4Address(dst), str(mac).lower()))
    return fdb, neigh


def _tolerate(exc: NetlinkError, *codes: int) -> None:
    if exc.code not in codes:
        raise NetworkError(f"peer entry: {exc}") from exc


def apply(ipr: IPRoute, idx: int, changes: PeerChanges) -> None:
    # Deletes first: an address that moved nodes keeps its MAC, and its new entry must not
    # collide with the old one.
    for mac, vtep in sorted(changes.fdb_del):
        try:
            ipr.fdb("del", ifindex=idx, lladdr=mac, dst=str(vtep))
        except NetlinkError as exc:
            _tolerate(exc, errno.ENOENT)
    for ip, mac in sorted(changes.neigh_del):
        try:
            ipr.neigh("del", ifindex=idx, dst=str(ip), lladdr=mac)
        except NetlinkError as exc:
            _tolerate(exc, errno.ENOENT)
    for mac, vtep in sorted(changes.fdb_add):
        try:
            ipr.fdb("add", ifindex=idx, lladdr=mac, dst=str(vtep))
        except NetlinkError as exc:
            _tolerate(exc, errno.EEXIST)
    for ip, mac in sorted(changes.neigh_add):
        # replace: a stale entry for the address (other MAC) is overwritten, not an error.
        ipr.neigh("replace", ifindex=idx, dst=str(ip), lladdr=mac, state=NUD_PERMANENT)


def sync(vxlan: str, peers: Iterable[Peer], local_vtep: IPv4Address) -> PeerChanges:
    """Make the device's entries exactly those `peers` call for; returns what changed."""
    with IPRoute() as ipr:
        idx = link_index(ipr, vxlan)
        if idx is None:
            raise NetworkError(f"VXLAN device {vxlan} is missing (network not ensured?)")
        fdb_now, neigh_now = current(ipr, idx)
        changes = diff(peers, local_vtep, fdb_now, neigh_now)
        apply(ipr, idx, changes)
        return changes
