"""Names and MACs of the overlay network's devices: pure functions, no I/O.

A network's devices are named from its VNI, not its cluster name: names must fit IFNAMSIZ and
be the same on every node and after a restart, and a VNI is both short and unique in the
cluster. MACs come from addresses (Docker's 02:42 + the IPv4 bytes) so that an agent needs only
(ip, vtep) pairs to program its peers: the MAC of any address on the overlay is known without
asking anyone.
"""

from __future__ import annotations

import hashlib
import re
from ipaddress import IPv4Address

from agent.network.errors import NetworkError

DEFAULT_PREFIX = "sk"
VNI_MAX = 0xFFFFFF  # 24 bits
# Prefix + kind letter + 6 hex = at most 13 of IFNAMSIZ's 15; prefix + "v" + >= 8 hex for veths.
PREFIX_MAX = 6
_PREFIX = re.compile(r"^[a-z][a-z0-9]*$")
# Cluster network names (`todo_backend`) name files and records: no slashes, no dot-dot.
_NETWORK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_prefix(prefix: str) -> str:
    if not _PREFIX.match(prefix) or len(prefix) > PREFIX_MAX:
        raise NetworkError(f"invalid interface prefix {prefix!r} "
                           f"(lower-case letters and digits, 1-{PREFIX_MAX}, a letter first)")
    return prefix


def check_vni(vni: int) -> int:
    if not 1 <= vni <= VNI_MAX:
        raise NetworkError(f"VNI {vni} out of range 1..{VNI_MAX}")
    return vni


def check_network_name(name: str) -> str:
    if not _NETWORK.match(name):
        raise NetworkError(f"invalid network name {name!r}")
    return name


def bridge_name(prefix: str, vni: int) -> str:
    """`<prefix>b<vni as 6 hex>`: the network's bridge on every node."""
    return f"{check_prefix(prefix)}b{check_vni(vni):06x}"


def vxlan_name(prefix: str, vni: int) -> str:
    """`<prefix>x<vni as 6 hex>`: the network's VXLAN device, a port of its bridge."""
    return f"{check_prefix(prefix)}x{check_vni(vni):06x}"


def veth_name(prefix: str, container_id: str, network: str) -> str:
    """Host end of a container's veth on one network: `<prefix>v<hex>`, 15 characters.
    Deterministic, so a detach after a restart finds it without a record."""
    check_prefix(prefix)
    digest = hashlib.sha256(f"{container_id}\0{network}".encode()).hexdigest()
    return f"{prefix}v{digest[:14 - len(prefix)]}"


def mac_of(ip: IPv4Address) -> str:
    """02:42 + the four address bytes: locally administered, unicast, one per address."""
    return ":".join(f"{b:02x}" for b in (0x02, 0x42, *ip.packed))


def ifname_of(index: int) -> str:
    """The container side of its index-th network (sorted order): eth0, eth1, ..."""
    return f"eth{index}"
