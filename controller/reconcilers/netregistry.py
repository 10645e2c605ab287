"""The cluster's claims on subnets and VNIs: one etcd key, changed by compare-and-swap.

``/skiff/ipam/networks`` holds ``{network: {"subnet": CIDR, "vni": N}}``. Every claim
reads the whole map, decides with ``decide_claim`` (pure) and writes it back only if the
key has not moved since, so two networks can never hold overlapping subnets or one VNI,
whatever controllers (an old leader, a restart) race. Network.status repeats a claim for
readers; this key is the truth.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Network

from controller.reconcilers import netalloc
from controller.store.errors import Conflict
from controller.store.keys import IPAM_NETWORKS_KEY, ROOT
from controller.store.kv import Compare, Delete, KVStore, Put

log = logging.getLogger(__name__)

_CAS_ATTEMPTS = 10


@dataclass(frozen=True)
class Claim:
    subnet: IPv4Network
    vni: int


@dataclass(frozen=True)
class Refusal:
    """Why a network got no claim; said in its status, never raised."""

    message: str


Claims = dict[str, Claim]


def decode_claims(value: bytes) -> Claims:
    """The map stored in the key; entries that do not parse are dropped (and logged),
    since one bad entry must not stop every other network."""
    out: Claims = {}
    try:
        raw = json.loads(value) if value else {}
    except ValueError:
        log.error("%s is not JSON; treating it as empty", IPAM_NETWORKS_KEY)
        return out
    for name, entry in (raw.items() if isinstance(raw, dict) else ()):
        try:
            out[name] = Claim(IPv4Network(entry["subnet"]), int(entry["vni"]))
        except (KeyError, TypeError, ValueError):
            log.error("%s: dropping unreadable entry %r: %r", IPAM_NETWORKS_KEY, name, entry)
    return out


def encode_claims(claims: Mapping[str, Claim]) -> bytes:
    data = {n: {"subnet": str(c.subnet), "vni": c.vni} for n, c in sorted(claims.items())}
    return json.dumps(data, separators=(",", ":")).encode()


def decide_claim(name: str, requested: str | None, claims: Mapping[str, Claim]
                 ) -> Claim | Refusal:
    """What ``name`` should hold, given everyone's claims (its own included, if any).

    A network keeps what it holds unless it asks for a different subnet; a requested
    subnet must overlap no other network's; otherwise it gets the next free /20 of the
    pool. Its VNI never changes once held.
    """
    others = {n: c for n, c in claims.items() if n != name}
    have = claims.get(name)
    if requested is not None:
        try:
            subnet = netalloc.parse_subnet(requested)
        except netalloc.SubnetError as exc:
            return Refusal(str(exc))
        clash = netalloc.first_overlap(subnet, {n: c.subnet for n, c in others.items()})
        if clash is not None:
            return Refusal(f"subnet {subnet} overlaps network {clash!r} "
                           f"({others[clash].subnet})")
    elif have is not None:
        return have
    else:
        free = netalloc.next_free_subnet(c.subnet for c in others.values())
        if free is None:
            return Refusal(f"no free /{netalloc.DEFAULT_PREFIX} left in the pool "
                           f"{netalloc.POOL}")
        subnet = free
    if have is not None:
        return Claim(subnet, have.vni)
    vni = netalloc.next_vni(c.vni for c in others.values())
    if vni is None:
        return Refusal("no VXLAN network identifier left")
    return Claim(subnet, vni)


class NetworkRegistry:
    def __init__(self, kv: KVStore) -> None:
        self.kv = kv

    async def load(self) -> tuple[Claims, int]:
        """Every claim, and the key's mod_revision (0: no key yet) to compare against."""
        kv = await self.kv.get(IPAM_NETWORKS_KEY)
        if kv is None:
            return {}, 0
        return decode_claims(kv.value), kv.mod_revision

    async def _swap(self, claims: Claims, revision: int) -> bool:
        ops = [Put(IPAM_NETWORKS_KEY, encode_claims(claims))] if claims else \
            [Delete(IPAM_NETWORKS_KEY)]
        result = await self.kv.txn([Compare(IPAM_NETWORKS_KEY, revision)], ops)
        return result.succeeded

    async def claim(self, name: str, requested: str | None) -> Claim | Refusal:
        """Claim (or confirm) ``name``'s subnet and VNI; a Refusal says why not.

        Costs one read when nothing changes (the common case: a resync).
        """
        revision = 0
        for _ in range(_CAS_ATTEMPTS):
            claims, revision = await self.load()
            decided = decide_claim(name, requested, claims)
            if isinstance(decided, Refusal) or claims.get(name) == decided:
                return decided
            claims[name] = decided
            if await self._swap(claims, revision):
                return decided
        raise Conflict(IPAM_NETWORKS_KEY.removeprefix(ROOT), revision)

    async def release(self, names: set[str] | frozenset[str]) -> None:
        """Drop the claims of ``names`` (networks that are gone); absent ones are fine."""
        revision = 0
        for _ in range(_CAS_ATTEMPTS):
            claims, revision = await self.load()
            if not names & claims.keys():
                return
            for name in names:
                claims.pop(name, None)
            if await self._swap(claims, revision):
                return
        raise Conflict(IPAM_NETWORKS_KEY.removeprefix(ROOT), revision)
