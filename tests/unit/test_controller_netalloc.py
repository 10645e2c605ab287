"""Subnets, slices, VNIs and gateways of cluster networks (docs/networking.md), pure."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from controller.reconcilers import netalloc
from controller.reconcilers.netalloc import (
    SubnetError,
    assign_slices,
    first_overlap,
    gateway,
    next_free_subnet,
    next_vni,
    parse_subnet,
    slice_prefix,
    slices,
)


def net(text: str) -> IPv4Network:
    return IPv4Network(text)


@pytest.mark.parametrize(("subnet", "prefix", "count"), [
    ("10.128.0.0/20", 26, 64),
    ("10.0.0.0/24", 28, 16),
    ("10.0.0.0/16", 22, 64),
    ("10.0.0.0/22", 26, 16),
    ("10.0.0.0/23", 27, 16),
    ("10.0.0.0/8", 14, 64),
])
def test_slice_prefix_rule(subnet, prefix, count):
    assert slice_prefix(net(subnet)) == prefix
    assert len(slices(net(subnet))) == count


def test_subnets_smaller_than_a_24_are_refused():
    with pytest.raises(SubnetError, match="smaller than a /24"):
        slice_prefix(net("10.0.0.0/25"))
    with pytest.raises(SubnetError, match="smaller than a /24"):
        parse_subnet("10.0.0.0/26")


def test_parse_subnet_ignores_host_bits_and_refuses_junk():
    assert parse_subnet("172.20.1.7/16") == net("172.20.0.0/16")
    with pytest.raises(SubnetError, match="not a subnet"):
        parse_subnet("nope")
    with pytest.raises(SubnetError, match="IPv4"):
        parse_subnet("fd00::/64")


def test_gateway_is_the_slices_first_host():
    assert gateway(net("10.128.0.64/26")) == IPv4Address("10.128.0.65")


def test_next_free_subnet_walks_the_pool_in_twentieths():
    assert next_free_subnet([]) == net("10.128.0.0/20")
    assert next_free_subnet([net("10.128.0.0/20")]) == net("10.128.16.0/20")
    # A hole is reused.
    assert next_free_subnet([net("10.128.0.0/20"), net("10.128.32.0/20")]) == \
        net("10.128.16.0/20")


def test_next_free_subnet_avoids_requested_subnets_of_any_shape():
    # A /24 requested inside the first /20 blocks all of it.
    assert next_free_subnet([net("10.128.5.0/24")]) == net("10.128.16.0/20")
    # A /16 covering the first sixteen /20s, and one straddling the pool's start.
    assert next_free_subnet([net("10.128.0.0/16")]) == net("10.129.0.0/20")
    assert next_free_subnet([net("10.0.0.0/8")]) is None
    assert next_free_subnet([net("10.127.0.0/16"), net("10.128.0.0/20")]) == \
        net("10.128.16.0/20")
    # Unrelated subnets outside the pool do not matter.
    assert next_free_subnet([net("192.168.0.0/16")]) == net("10.128.0.0/20")


def test_next_free_subnet_when_the_pool_is_full():
    small = net("10.128.0.0/19")
    assert next_free_subnet([], pool=small) == net("10.128.0.0/20")
    assert next_free_subnet([net("10.128.0.0/20")], pool=small) == net("10.128.16.0/20")
    assert next_free_subnet([net("10.128.0.0/20"), net("10.128.16.0/20")], pool=small) is None


def test_next_free_subnet_never_overlaps_anything_claimed():
    claimed: list[IPv4Network] = [net("10.128.40.0/22"), net("10.130.0.0/15")]
    for _ in range(200):
        got = next_free_subnet(claimed)
        assert got is not None and got.prefixlen == 20 and got.subnet_of(netalloc.POOL)
        assert not any(got.overlaps(c) for c in claimed)
        claimed.append(got)


def test_first_overlap_names_the_other_network():
    claimed = {"b": net("10.1.0.0/16"), "a": net("10.2.0.0/16")}
    assert first_overlap(net("10.1.4.0/24"), claimed) == "b"
    assert first_overlap(net("10.0.0.0/8"), claimed) == "a"
    assert first_overlap(net("10.3.0.0/16"), claimed) is None


def test_vnis_count_up_from_4096_filling_holes():
    assert next_vni([]) == 4096
    assert next_vni([4096, 4097, 4099]) == 4098
    assert next_vni([5]) == 4096
    assert next_vni(range(4096, netalloc.MAX_VNI + 1)) is None


def test_slices_new_nodes_get_the_lowest_free_in_name_order():
    got, left = assign_slices(net("10.128.0.0/20"), {}, ["n2", "n1"])
    assert got == {"n1": net("10.128.0.0/26"), "n2": net("10.128.0.64/26")}
    assert left == []


def test_a_node_keeps_its_slice_and_a_gone_nodes_slice_is_reused():
    subnet = net("10.128.0.0/20")
    current = {"n1": "10.128.0.0/26", "n2": "10.128.0.64/26", "n3": "10.128.0.128/26"}
    got, _ = assign_slices(subnet, current, ["n3", "n1", "n4"])  # n2 is gone
    assert got == {"n1": net("10.128.0.0/26"), "n3": net("10.128.0.128/26"),
                   "n4": net("10.128.0.64/26")}
    # n0 sorts first, but held slices are never moved.
    got2, _ = assign_slices(subnet, {k: str(v) for k, v in got.items()}, ["n0", "n1", "n3", "n4"])
    assert got2["n1"] == got["n1"] and got2["n4"] == got["n4"]
    assert got2["n0"] == net("10.128.0.192/26")


def test_slices_of_another_subnet_or_junk_are_replaced():
    got, _ = assign_slices(net("10.0.0.0/24"),
                           {"n1": "10.128.0.0/26", "n2": "bad", "n3": "10.0.0.16/28"},
                           ["n1", "n2", "n3"])
    assert got == {"n3": net("10.0.0.16/28"), "n1": net("10.0.0.0/28"),
                   "n2": net("10.0.0.32/28")}


def test_two_nodes_claiming_one_slice_keep_it_for_one_only():
    got, _ = assign_slices(net("10.0.0.0/24"), {"a": "10.0.0.0/28", "b": "10.0.0.0/28"},
                           ["a", "b"])
    assert got == {"a": net("10.0.0.0/28"), "b": net("10.0.0.16/28")}


def test_nodes_beyond_the_slices_are_left_out():
    nodes = [f"n{i:02d}" for i in range(18)]
    got, left = assign_slices(net("10.0.0.0/24"), {}, nodes)
    assert len(got) == 16 and left == ["n16", "n17"]
    assert len(set(got.values())) == 16
