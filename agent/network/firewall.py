"""The node's nftables table for all its container networks, rebuilt as a whole.

The table is generated from the complete set of networks (the node's single bridge and every
ensured cluster network) and replaced in one `nft -f` transaction, so no packet ever sees a
half-updated table and re-applying never duplicates a rule (see bridge.nat_ruleset).

Per network: masquerade for traffic leaving its subnet, unless internal; internal networks
forward nothing to or from other interfaces; traffic between two networks' bridges is dropped
(as between Docker networks). Cross-node traffic of one network is bridged onto its VXLAN
port, never routed, so none of this touches it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network

from agent.network.bridge import check_ifname, check_table, drop_ruleset, nft


@dataclass(frozen=True)
class Lan:
    """A network as the firewall sees it: its bridge and address range on this node."""
    bridge: str
    subnet: IPv4Network
    internal: bool = False


def _names(bridges: Sequence[str]) -> str:
    return "{ " + ", ".join(f'"{b}"' for b in bridges) + " }"


def ruleset(table: str, lans: Sequence[Lan]) -> str:
    """The whole table; with no networks, just its removal."""
    check_table(table)
    for lan in lans:
        check_ifname(lan.bridge)
    if not lans:
        return drop_ruleset(table)
    nat: list[str] = []
    closed: list[str] = []  # internal networks
    isolation: list[str] = []  # between networks
    accepts: list[str] = []
    for lan in lans:
        b, net = lan.bridge, lan.subnet
        others = [o.bridge for o in lans if o.bridge != b]
        if lan.internal:
            closed.append(f'iifname "{b}" oifname != "{b}" counter drop')
            closed.append(f'oifname "{b}" iifname != "{b}" counter drop')
        elif others:
            isolation.append(f"iifname \"{b}\" oifname {_names(others)} counter drop")
        if not lan.internal:
            # Leaving the range: the source becomes the node's address on the way out.
            # Traffic within the range (on this node or across the overlay) keeps its own.
            nat.append(f"ip saddr {net} ip daddr != {net} counter masquerade")
        # Explicit accepts so a later default-drop policy in this table keeps containers
        # working. An accept here cannot override a drop in another table's chain.
        accepts.append(f'iifname "{b}" counter accept')
        accepts.append(f'oifname "{b}" counter accept')
    lines = [
        f"table ip {table} {{}}",
        f"delete table ip {table}",
        f"table ip {table} {{",
        "\tchain postrouting {",
        "\t\ttype nat hook postrouting priority srcnat; policy accept;",
        *(f"\t\t{rule}" for rule in nat),
        "\t}",
        "\tchain forward {",
        "\t\ttype filter hook forward priority filter; policy accept;",
        # Drops before accepts: first match wins within the chain.
        *(f"\t\t{rule}" for rule in closed),
        # A published port (the routing mesh DNATs it) is reachable from every network,
        # as from anywhere else; internal networks are never published, and stay closed.
        *(["\t\tct status dnat counter accept"] if isolation else []),
        *(f"\t\t{rule}" for rule in isolation + accepts),
        "\t}",
        "}",
    ]
    return "\n".join(lines) + "\n"


def apply(table: str, lans: Sequence[Lan]) -> None:
    """Replace the table (in the calling thread's namespace) with the one for `lans`."""
    nft(ruleset(table, lans))
