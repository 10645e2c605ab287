"""A cluster network's devices on a node: its bridge and its VXLAN port (netlink).

Blocking, and acting on the calling thread's namespace (the node's): run on a worker thread
(see netns.run_in_netns). Every step accepts "already there" and repairs what differs, so
ensure can be repeated after a crash or a changed slice; removal accepts "already gone".
"""

from __future__ import annotations

import errno
import socket
from ipaddress import IPv4Address, IPv4Interface

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from agent.network.bridge import check_ifname, link_index
from agent.network.errors import NetworkError
from agent.network.naming import mac_of

OVERLAY_MTU = 1450  # 1500 minus VXLAN's 50 bytes of outer headers
VXLAN_PORT = 4789


def _kind(ipr: IPRoute, idx: int) -> str | None:
    return ipr.get_links(idx)[0].get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND")


def _create(ipr: IPRoute, name: str, **attrs: object) -> int:
    try:
        ipr.link("add", ifname=name, **attrs)
    except NetlinkError as exc:
        if exc.code != errno.EEXIST:  # a concurrent ensure won the race: fine
            raise NetworkError(f"create {attrs.get('kind')} {name}: {exc}") from exc
    idx = link_index(ipr, name)
    if idx is None:
        raise NetworkError(f"{name} vanished right after creation")
    return idx


def ensure_network_bridge(name: str, gateway: IPv4Interface, mtu: int = OVERLAY_MTU) -> int:
    """The bridge up, with exactly the gateway address (a slice that changed loses its old
    one) and the gateway's MAC. Returns its index."""
    check_ifname(name)
    with IPRoute() as ipr:
        idx = link_index(ipr, name)
        if idx is None:
            idx = _create(ipr, name, kind="bridge")
        if (kind := _kind(ipr, idx)) != "bridge":
            raise NetworkError(f"{name} exists but is a {kind or 'plain'} link, not a bridge")
        # An explicit MAC: left alone, a bridge takes its lowest port's MAC, which changes as
        # containers come and go. This one is what peers on other nodes program for it.
        ipr.link("set", index=idx, address=mac_of(gateway.ip), mtu=mtu)
        for addr in ipr.get_addr(index=idx, family=socket.AF_INET):
            have = IPv4Interface(f"{addr.get_attr('IFA_ADDRESS')}/{addr['prefixlen']}")
            if have != gateway:
                ipr.addr("del", index=idx, address=str(have.ip), prefixlen=have.network.prefixlen)
        try:
            ipr.addr("add", index=idx, address=str(gateway.ip),
                     prefixlen=gateway.network.prefixlen)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise NetworkError(f"address {gateway} on {name}: {exc}") from exc
        ipr.link("set", index=idx, state="up")
        return idx


def _vxlan_matches(ipr: IPRoute, idx: int, vni: int, local: IPv4Address, port: int) -> bool:
    link = ipr.get_links(idx)[0]
    if link.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") != "vxlan":
        return False
    data = link.get_nested("IFLA_LINKINFO", "IFLA_INFO_DATA")
    if data is None:
        return False
    return (data.get_attr("IFLA_VXLAN_ID") == vni
            and data.get_attr("IFLA_VXLAN_LOCAL") == str(local)
            and data.get_attr("IFLA_VXLAN_PORT") == port
            and not data.get_attr("IFLA_VXLAN_LEARNING")
            and bool(data.get_attr("IFLA_VXLAN_PROXY")))


def ensure_vxlan(name: str, vni: int, local: IPv4Address, bridge: str,
                 port: int = VXLAN_PORT, mtu: int = OVERLAY_MTU) -> int:
    """The VXLAN device, a port of `bridge`, up. One that differs (another VNI, VTEP or
    port) is replaced: its forwarding entries go with it, and set_peers puts them back.

    No remote and no all-zeros FDB entry: broadcasts never leave the node. `learning off`
    because the agent programs every entry; `proxy on` so ARP for a remote address is
    answered here from the neighbour table instead of crossing the overlay."""
    check_ifname(name)
    with IPRoute() as ipr:
        master = link_index(ipr, bridge)
        if master is None:
            raise NetworkError(f"bridge {bridge} is missing")
        idx = link_index(ipr, name)
        if idx is not None and not _vxlan_matches(ipr, idx, vni, local, port):
            ipr.link("del", index=idx)
            idx = None
        if idx is None:
            idx = _create(ipr, name, kind="vxlan", vxlan_id=vni, vxlan_local=str(local),
                          vxlan_port=port, vxlan_learning=0, vxlan_proxy=1)
        ipr.link("set", index=idx, master=master, mtu=mtu, state="up")
        return idx


def link_exists(name: str) -> bool:
    with IPRoute() as ipr:
        return link_index(ipr, name) is not None
