"""The registry of network claims: decisions (pure) and compare-and-swap (in memory)."""

from __future__ import annotations

import asyncio
import json
from ipaddress import IPv4Network

from controller.reconcilers.netregistry import (
    Claim,
    NetworkRegistry,
    Refusal,
    decide_claim,
    decode_claims,
    encode_claims,
)
from controller.store.keys import IPAM_NETWORKS_KEY
from controller.store.kv import Put
from controller.store.memory import MemoryKV


def claim(subnet: str, vni: int) -> Claim:
    return Claim(IPv4Network(subnet), vni)


def test_first_network_gets_the_pools_first_20_and_vni_4096():
    assert decide_claim("a", None, {}) == claim("10.128.0.0/20", 4096)


def test_a_held_claim_is_kept():
    held = {"a": claim("10.128.16.0/20", 4100)}
    assert decide_claim("a", None, held) == held["a"]
    assert decide_claim("a", "10.128.16.0/20", held) == held["a"]


def test_next_network_avoids_every_claim():
    held = {"a": claim("10.128.0.0/20", 4096), "b": claim("10.128.16.0/24", 4097)}
    assert decide_claim("c", None, held) == claim("10.128.32.0/20", 4098)


def test_requested_subnet_that_overlaps_is_refused_naming_the_other():
    held = {"todo_back": claim("10.1.0.0/16", 4096)}
    got = decide_claim("shop_default", "10.1.2.0/24", held)
    assert isinstance(got, Refusal)
    assert "todo_back" in got.message and "10.1.0.0/16" in got.message


def test_requested_subnet_too_small_or_junk_is_refused():
    assert "smaller than a /24" in decide_claim("a", "10.0.0.0/25", {}).message  # type: ignore[union-attr]
    assert "not a subnet" in decide_claim("a", "x", {}).message  # type: ignore[union-attr]


def test_changing_the_requested_subnet_keeps_the_vni():
    held = {"a": claim("10.128.0.0/20", 4200)}
    assert decide_claim("a", "172.30.0.0/16", held) == claim("172.30.0.0/16", 4200)


def test_claims_round_trip_and_bad_entries_are_dropped():
    claims = {"b": claim("10.128.16.0/20", 4097), "a": claim("10.128.0.0/20", 4096)}
    assert decode_claims(encode_claims(claims)) == claims
    raw = json.dumps({"a": {"subnet": "10.0.0.0/24", "vni": 5000}, "bad": {"subnet": "x"},
                      "worse": 3}).encode()
    assert decode_claims(raw) == {"a": claim("10.0.0.0/24", 5000)}
    assert decode_claims(b"not json") == {}


async def test_registry_claims_releases_and_deletes_the_key_when_empty():
    kv = MemoryKV()
    reg = NetworkRegistry(kv)
    assert await reg.claim("a", None) == claim("10.128.0.0/20", 4096)
    assert await reg.claim("b", "10.5.0.0/24") == claim("10.5.0.0/24", 4097)
    stored = json.loads((await kv.get(IPAM_NETWORKS_KEY)).value)  # type: ignore[union-attr]
    assert stored == {"a": {"subnet": "10.128.0.0/20", "vni": 4096},
                      "b": {"subnet": "10.5.0.0/24", "vni": 4097}}
    # Confirming a claim writes nothing.
    rev = (await kv.get(IPAM_NETWORKS_KEY)).mod_revision  # type: ignore[union-attr]
    await reg.claim("a", None)
    assert (await kv.get(IPAM_NETWORKS_KEY)).mod_revision == rev  # type: ignore[union-attr]
    await reg.release({"a"})
    assert set((await reg.load())[0]) == {"b"}
    await reg.release({"a", "b"})
    assert await kv.get(IPAM_NETWORKS_KEY) is None


async def test_concurrent_claims_never_overlap_or_share_a_vni():
    reg = NetworkRegistry(MemoryKV())
    got = await asyncio.gather(*(reg.claim(f"n{i}", None) for i in range(20)))
    assert all(isinstance(c, Claim) for c in got)
    assert len({c.vni for c in got}) == 20  # type: ignore[union-attr]
    subnets = [c.subnet for c in got]  # type: ignore[union-attr]
    assert not any(a.overlaps(b) for i, a in enumerate(subnets) for b in subnets[i + 1:])
    claims, _ = await reg.load()
    assert set(claims) == {f"n{i}" for i in range(20)}


async def test_a_write_between_read_and_swap_is_seen_and_decided_again():
    kv = MemoryKV()
    reg = NetworkRegistry(kv)
    real_load = reg.load
    raced = False

    async def racing_load():
        nonlocal raced
        result = await real_load()
        if not raced:  # someone else claims the first /20 right after our read
            raced = True
            await kv.txn([], [Put(IPAM_NETWORKS_KEY, encode_claims(
                {"other": claim("10.128.0.0/20", 4096)}))])
        return result

    reg.load = racing_load  # type: ignore[method-assign]
    assert await reg.claim("mine", None) == claim("10.128.16.0/20", 4097)
