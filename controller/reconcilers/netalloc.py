"""Address arithmetic of cluster networks (docs/networking.md, "Addresses"), pure.

A network gets a subnet (the one its ipam config asks for, else the next free /20 of the
pool) and a VNI; every node gets a slice of the subnet for its containers, whose first
host address is the node's bridge and its containers' gateway. Nothing here does I/O:
the registry (netregistry.py) and the network reconciler feed it what is claimed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from ipaddress import IPv4Address, IPv4Network, ip_network

POOL = IPv4Network("10.128.0.0/9")
DEFAULT_PREFIX = 20
FIRST_VNI = 4096  # below it: room for hand-made VXLANs on the hosts
MAX_VNI = 2**24 - 1  # VNIs are 24 bits
SMALLEST_PREFIX = 24  # a /25 would leave slices too small to hold a container


class SubnetError(ValueError):
    """A subnet that cannot be a cluster network (not IPv4, or smaller than /24)."""


def parse_subnet(text: str) -> IPv4Network:
    """The network ``text`` names (host bits ignored, as compose does); SubnetError if it
    is not IPv4 or is smaller than a /24."""
    try:
        net = ip_network(text.strip(), strict=False)
    except ValueError as exc:
        raise SubnetError(f"{text!r} is not a subnet: {exc}") from None
    if not isinstance(net, IPv4Network):
        raise SubnetError(f"{text}: only IPv4 subnets are supported")
    if net.prefixlen > SMALLEST_PREFIX:
        raise SubnetError(f"{net} is smaller than a /{SMALLEST_PREFIX}: each node needs a "
                          "slice of it")
    return net


def slice_prefix(subnet: IPv4Network) -> int:
    """Prefix length of a node's slice: min(prefix + 6, max(26, prefix + 4)).

    At most 64 slices, at least 16, and never smaller than a /28 (a /20 gives 64 /26s,
    a /24 gives 16 /28s, a /16 gives 64 /22s).
    """
    if subnet.prefixlen > SMALLEST_PREFIX:
        raise SubnetError(f"{subnet} is smaller than a /{SMALLEST_PREFIX}")
    p = subnet.prefixlen
    return min(p + 6, max(26, p + 4))


def slices(subnet: IPv4Network) -> list[IPv4Network]:
    """Every slice of ``subnet``, lowest first."""
    return list(subnet.subnets(new_prefix=slice_prefix(subnet)))


def gateway(node_slice: IPv4Network) -> IPv4Address:
    """The node's bridge address on a network: its slice's first host address."""
    return node_slice.network_address + 1


def first_overlap(subnet: IPv4Network, claimed: Mapping[str, IPv4Network]) -> str | None:
    """The name of a claimed subnet ``subnet`` overlaps (lowest name first), or None."""
    for name in sorted(claimed):
        if subnet.overlaps(claimed[name]):
            return name
    return None


def next_free_subnet(claimed: Iterable[IPv4Network], pool: IPv4Network = POOL,
                     prefix: int = DEFAULT_PREFIX) -> IPv4Network | None:
    """The lowest /``prefix`` of ``pool`` that overlaps nothing claimed; None when full.

    Claimed subnets may be any size and need not lie in the pool (a requested subnet
    may straddle it): a candidate is skipped past whatever blocks it, so the walk costs
    one step per claim, not one per candidate.
    """
    taken = sorted((n for n in claimed if n.overlaps(pool)), key=lambda n: n.network_address)
    size = 2 ** (32 - prefix)
    start = int(pool.network_address)
    end = int(pool.broadcast_address)
    candidate = start
    for block in taken:
        lo, hi = int(block.network_address), int(block.broadcast_address)
        if hi < candidate:
            continue
        if lo > candidate + size - 1:
            break  # the candidate fits before this block (and every later one)
        # Overlap: the next aligned candidate after the block.
        candidate = ((hi + 1 - start + size - 1) // size) * size + start
    if candidate + size - 1 > end:
        return None
    return IPv4Network((candidate, prefix))


def next_vni(used: Iterable[int]) -> int | None:
    """The lowest VNI from FIRST_VNI up that is not used; None if none is left."""
    taken = set(used)
    vni = FIRST_VNI
    while vni in taken:
        vni += 1
    return vni if vni <= MAX_VNI else None


def assign_slices(subnet: IPv4Network, current: Mapping[str, str],
                  nodes: Iterable[str]) -> tuple[dict[str, IPv4Network], list[str]]:
    """Slices for ``nodes`` (the nodes that exist), keeping every slice already held.

    A node keeps its slice while it exists, so its containers' addresses and its
    bridge's stay put across restarts and outages; a slice is freed only when its node
    is gone. New nodes get the lowest free slices, in name order. A held slice that is
    not a slice of ``subnet`` (the subnet changed) is dropped and replaced. Returns the
    slices and the nodes that got none because the subnet is full.
    """
    wanted = sorted(set(nodes))
    valid = set(slices(subnet))
    out: dict[str, IPv4Network] = {}
    for name in wanted:
        text = current.get(name)
        if text is None:
            continue
        try:
            held = IPv4Network(text)
        except ValueError:
            continue
        if held in valid and held not in out.values():
            out[name] = held
    free = sorted(valid - set(out.values()), key=lambda n: n.network_address, reverse=True)
    left_out = []
    for name in wanted:
        if name in out:
            continue
        if free:
            out[name] = free.pop()
        else:
            left_out.append(name)
    return out, left_out
