"""Pure parts of bridge and endpoint setup: names, MACs, the nft ruleset, records."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

import pytest

from agent.network.bridge import (
    bridge_mac,
    check_ifname,
    check_table,
    drop_ruleset,
    nat_ruleset,
)
from agent.network.endpoint import Endpoint, check_id, host_veth_name
from agent.network.errors import NetworkError
from agent.network.node import NodeNetwork


def test_host_veth_names_fit_and_are_deterministic():
    name = host_veth_name("skiff-", "a" * 64)
    assert len(name) <= 15 and name.startswith("vsk")
    assert name == host_veth_name("skiff-", "a" * 64)
    assert name != host_veth_name("skiff-", "b" * 64)
    # Two nodes sharing a namespace and a container id still get distinct veths.
    assert name != host_veth_name("lab2-", "a" * 64)


@pytest.mark.parametrize("cid", ["", "../x", "a/b", ".hidden", "a b", "x" * 200])
def test_bad_container_ids(cid):
    with pytest.raises(NetworkError):
        check_id(cid)


def test_good_container_ids():
    assert check_id("web.1_abc-DEF") == "web.1_abc-DEF"


def test_bridge_mac_is_local_unicast_and_stable():
    mac = bridge_mac("skiff0")
    first = int(mac.split(":")[0], 16)
    assert first & 0x02 and not first & 0x01
    assert mac == bridge_mac("skiff0") != bridge_mac("skiff1")
    assert len(mac.split(":")) == 6


@pytest.mark.parametrize("name", ["", "sixteen-chars-xx", "a b", "a;b", "br/0"])
def test_bad_ifnames(name):
    with pytest.raises(NetworkError):
        check_ifname(name)


def test_bad_table_name():
    with pytest.raises(NetworkError):
        check_table("x; flush ruleset")


def test_nat_ruleset_replaces_the_table_atomically():
    text = nat_ruleset("skiff", "skiff0", IPv4Network("10.88.0.0/24"))
    lines = [ln.strip() for ln in text.splitlines()]
    # Declared, deleted, defined: re-applying never duplicates rules.
    assert lines[:3] == ["table ip skiff {}", "delete table ip skiff", "table ip skiff {"]
    assert ("ip saddr 10.88.0.0/24 ip daddr != 10.88.0.0/24 counter masquerade") in lines
    assert 'iifname "skiff0" counter accept' in lines
    assert 'oifname "skiff0" counter accept' in lines
    assert "type nat hook postrouting priority srcnat; policy accept;" in lines


def test_drop_ruleset_tolerates_missing_table():
    assert drop_ruleset("t1") == "table ip t1 {}\ndelete table ip t1\n"


def test_endpoint_record_round_trips():
    ep = Endpoint("c1", Path("/run/netns/skiff-c1"), IPv4Interface("10.88.0.2/24"),
                  IPv4Address("10.88.0.1"), "vsk0123456789ab", "02:00:00:00:00:01")
    assert Endpoint.from_json(ep.to_json()) == ep


def test_node_network_validates_names(tmp_path):
    with pytest.raises(NetworkError):
        NodeNetwork(tmp_path, bridge="far-too-long-bridge")
    with pytest.raises(NetworkError):
        NodeNetwork(tmp_path, netns_prefix="a/b")
    nn = NodeNetwork(tmp_path, "10.7.0.0/16")
    assert nn.gateway == IPv4Interface("10.7.0.1/16")
    assert nn.netns_path("abc") == Path("/run/netns/skiff-abc")
