"""The node's bridge, IPv4 forwarding and outbound NAT.

Everything here acts on the namespace of the calling thread, which is the node's: the host's
root namespace on a real machine, or a lab node's namespace when the agent was started with
`nsenter --net=...`. Nothing assumes the root namespace. All calls block: run them from a
worker thread (see netns.run_in_netns), never on the event loop.

Every setup step has a teardown that accepts "already gone", and every setup step accepts
"already there", so both can be repeated after a crash.
"""

from __future__ import annotations

import errno
import hashlib
import re
import subprocess
from ipaddress import IPv4Interface, IPv4Network
from pathlib import Path

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from agent.network.errors import NetworkError

IFNAME_MAX = 15  # IFNAMSIZ - 1
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")


def check_ifname(name: str) -> str:
    if not _NAME.match(name) or len(name) > IFNAME_MAX:
        raise NetworkError(f"invalid interface name {name!r} (letters, digits, _ -; <= 15)")
    return name


def check_table(name: str) -> str:
    if not _NAME.match(name):
        raise NetworkError(f"invalid nftables table name {name!r}")
    return name


def bridge_mac(name: str) -> str:
    """A fixed, locally administered MAC for the bridge. Left alone, a Linux bridge takes
    the lowest MAC of its ports, so the gateway's MAC would change as containers come and
    go and every container's ARP entry for the gateway would go stale."""
    digest = hashlib.sha256(b"skiff-bridge:" + name.encode()).digest()
    octets = [0x02, *digest[:5]]  # 0x02: locally administered, unicast
    return ":".join(f"{b:02x}" for b in octets)


def link_index(ipr: IPRoute, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return found[0] if found else None


def ensure_bridge(name: str, gateway: IPv4Interface) -> int:
    """Create the bridge if missing, give it the gateway address, bring it up.
    Returns its interface index."""
    check_ifname(name)
    with IPRoute() as ipr:
        idx = link_index(ipr, name)
        if idx is None:
            try:
                ipr.link("add", ifname=name, kind="bridge")
            except NetlinkError as exc:
                if exc.code != errno.EEXIST:  # another agent won the race: fine
                    raise NetworkError(f"create bridge {name}: {exc}") from exc
            idx = link_index(ipr, name)
            if idx is None:
                raise NetworkError(f"bridge {name} vanished right after creation")
            # Set through ndo_set_mac_address so the kernel marks the address as chosen
            # and never recomputes it from the ports.
            ipr.link("set", index=idx, address=bridge_mac(name))
        kind = ipr.get_links(idx)[0].get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND")
        if kind != "bridge":
            raise NetworkError(f"{name} exists but is a {kind or 'plain'} link, not a bridge")
        try:
            ipr.addr("add", index=idx, address=str(gateway.ip),
                     prefixlen=gateway.network.prefixlen)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise NetworkError(f"address {gateway} on {name}: {exc}") from exc
        ipr.link("set", index=idx, state="up")
        return idx


def remove_link(name: str) -> None:
    """Delete a link (a bridge's ports stay, detached; a veth takes its peer along); a
    missing one is fine."""
    check_ifname(name)
    with IPRoute() as ipr:
        try:
            ipr.link("del", ifname=name)
        except NetlinkError as exc:
            if exc.code != errno.ENODEV:
                raise NetworkError(f"delete {name}: {exc}") from exc


def enable_ip_forward(path: Path = IP_FORWARD) -> None:
    """Route between the bridge and the node's uplink. Per network namespace (the
    calling thread's). Written only when off: writing it resets per-interface settings."""
    if path.read_text().strip() != "1":
        path.write_text("1\n")


# ---- nftables ---------------------------------------------------------------------------


def nat_ruleset(table: str, bridge: str, subnet: IPv4Network) -> str:
    """The whole table in one `nft -f` transaction. `table ... {}` then `delete table` first
    makes re-applying replace the table atomically instead of appending duplicate rules."""
    check_table(table)
    check_ifname(bridge)
    return (
        f"table ip {table} {{}}\n"
        f"delete table ip {table}\n"
        f"table ip {table} {{\n"
        "\tchain postrouting {\n"
        "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
        # Leaving the range: rewrite the source to the node's address on the way out.
        # Traffic between containers of the range keeps its addresses.
        f"\t\tip saddr {subnet} ip daddr != {subnet} counter masquerade\n"
        "\t}\n"
        "\tchain forward {\n"
        "\t\ttype filter hook forward priority filter; policy accept;\n"
        # Explicit accepts so a later default-drop policy in this table keeps containers
        # working. An accept here cannot override a drop in another table's chain.
        f'\t\tiifname "{bridge}" counter accept\n'
        f'\t\toifname "{bridge}" counter accept\n'
        "\t}\n"
        "}\n"
    )


def drop_ruleset(table: str) -> str:
    check_table(table)
    # Declaring the table first makes the delete succeed whether or not it existed.
    return f"table ip {table} {{}}\ndelete table ip {table}\n"


def nft(script: str) -> str:
    proc = subprocess.run(["nft", "-f", "-"], input=script, capture_output=True, text=True,
                          timeout=30, check=False)
    if proc.returncode != 0:
        raise NetworkError(f"nft failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def apply_nat(table: str, bridge: str, subnet: IPv4Network) -> None:
    nft(nat_ruleset(table, bridge, subnet))


def remove_nat(table: str) -> None:
    nft(drop_ruleset(table))
