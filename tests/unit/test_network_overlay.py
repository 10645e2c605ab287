"""Pure parts of the VXLAN overlay: names, MACs, configs, the peer diff, the nft ruleset,
IPAM of a slice, attachment records."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

import pytest

from agent.network.attach import Attachment, NetworkEndpoint, default_gateway
from agent.network.bridge import drop_ruleset, nat_ruleset
from agent.network.config import NetworkConfig, Peer
from agent.network.errors import NetworkError
from agent.network.firewall import Lan, ruleset
from agent.network.ipam import Ipam, IpamError
from agent.network.naming import (
    bridge_name,
    check_network_name,
    ifname_of,
    mac_of,
    veth_name,
    vxlan_name,
)
from agent.network.peers import PeerChanges, desired, diff

A = IPv4Address


def cfg(name: str = "todo_backend", vni: int = 4096, subnet: str = "10.128.0.0/20",
        slice_: str = "10.128.0.64/26", internal: bool = False,
        vtep: str = "192.168.1.1") -> NetworkConfig:
    return NetworkConfig(name, vni, IPv4Network(subnet), IPv4Network(slice_), internal,
                         A(vtep))


# ---- naming ------------------------------------------------------------------------------


def test_device_names_follow_the_vni():
    assert bridge_name("sk", 4096) == "skb001000"
    assert vxlan_name("sk", 4096) == "skx001000"
    assert bridge_name("t3ab", 0xFFFFFF) == "t3abbffffff"
    assert len(vxlan_name("abcdef", 1)) <= 15


@pytest.mark.parametrize("prefix", ["", "Sk", "1a", "abcdefg", "s-k"])
def test_bad_prefixes(prefix):
    with pytest.raises(NetworkError):
        bridge_name(prefix, 4096)


@pytest.mark.parametrize("vni", [0, -1, 1 << 24])
def test_bad_vnis(vni):
    with pytest.raises(NetworkError):
        vxlan_name("sk", vni)


def test_veth_names_fit_and_differ_per_container_and_network():
    name = veth_name("sk", "c" * 64, "todo_backend")
    assert len(name) == 15 and name.startswith("skv")
    assert name == veth_name("sk", "c" * 64, "todo_backend")
    assert name != veth_name("sk", "c" * 64, "todo_front")
    assert name != veth_name("sk", "d" * 64, "todo_backend")
    assert len(veth_name("abcdef", "x", "y")) == 15


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden", "a b"])
def test_bad_network_names(name):
    with pytest.raises(NetworkError):
        check_network_name(name)


def test_mac_from_address():
    assert mac_of(A("10.128.0.1")) == "02:42:0a:80:00:01"
    assert mac_of(A("255.0.16.7")) == "02:42:ff:00:10:07"
    assert ifname_of(0) == "eth0" and ifname_of(3) == "eth3"


# ---- config ------------------------------------------------------------------------------


def test_config_gateway_has_the_whole_network_prefix_and_round_trips():
    c = cfg()
    assert c.gateway == IPv4Interface("10.128.0.65/20")
    assert NetworkConfig.from_json(c.to_json()) == c
    assert Peer(A("10.128.0.2"), A("192.168.1.2")).mac == "02:42:0a:80:00:02"


@pytest.mark.parametrize("kw", [{"slice_": "10.129.0.0/26"}, {"slice_": "10.128.0.0/31"},
                                {"vni": 0}, {"name": "a/b"}])
def test_bad_configs(kw):
    with pytest.raises(NetworkError):
        cfg(**kw)


# ---- peers -------------------------------------------------------------------------------

ME, B, C = A("192.168.1.1"), A("192.168.1.2"), A("192.168.1.3")
X, Y = A("10.128.0.130"), A("10.128.0.131")


def test_diff_from_nothing_adds_both_entries_and_ignores_local_peers():
    ch = diff({Peer(X, B), Peer(A("10.128.0.66"), ME)}, ME, set(), set())
    assert ch.fdb_add == {(mac_of(X), B)} and ch.neigh_add == {(X, mac_of(X))}
    assert not ch.fdb_del and not ch.neigh_del


def test_diff_removes_what_is_no_longer_wanted():
    ch = diff({Peer(X, B)}, ME, {(mac_of(X), B), (mac_of(Y), B)},
              {(X, mac_of(X)), (Y, mac_of(Y))})
    assert ch == PeerChanges(fdb_del=frozenset({(mac_of(Y), B)}),
                             neigh_del=frozenset({(Y, mac_of(Y))}))


def test_diff_of_an_address_that_moved_nodes():
    ch = diff({Peer(X, C)}, ME, {(mac_of(X), B)}, {(X, mac_of(X))})
    assert ch.fdb_del == {(mac_of(X), B)} and ch.fdb_add == {(mac_of(X), C)}
    assert not ch.neigh_add and not ch.neigh_del


def test_diff_in_sync_is_empty():
    fdb, neigh = desired({Peer(X, B), Peer(Y, C)}, ME)
    assert not diff({Peer(X, B), Peer(Y, C)}, ME, fdb, neigh)


def test_an_address_claimed_twice_goes_to_the_lowest_vtep():
    fdb, neigh = desired({Peer(X, C), Peer(X, B)}, ME)
    assert fdb == {(mac_of(X), B)} and neigh == {(X, mac_of(X))}


# ---- firewall ----------------------------------------------------------------------------


def _lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines()]


def test_one_legacy_lan_is_the_old_nat_table():
    net = IPv4Network("10.88.0.0/24")
    assert _lines(ruleset("skiff", [Lan("skiff0", net)])) == _lines(
        nat_ruleset("skiff", "skiff0", net))


def test_no_lans_drops_the_table():
    assert ruleset("skiff", []) == drop_ruleset("skiff")


def test_networks_are_isolated_and_internal_ones_closed():
    text = ruleset("skiff", [Lan("skb001000", IPv4Network("10.128.0.0/20")),
                             Lan("skb001001", IPv4Network("10.128.16.0/20"), internal=True)])
    lines = _lines(text)
    assert lines[:3] == ["table ip skiff {}", "delete table ip skiff", "table ip skiff {"]
    assert "ip saddr 10.128.0.0/20 ip daddr != 10.128.0.0/20 counter masquerade" in lines
    assert not any("10.128.16.0/20" in ln for ln in lines)  # internal: no masquerade
    drop = 'iifname "skb001000" oifname { "skb001001" } counter drop'
    internal_out = 'iifname "skb001001" oifname != "skb001001" counter drop'
    internal_in = 'oifname "skb001001" iifname != "skb001001" counter drop'
    accept = 'iifname "skb001000" counter accept'
    assert {drop, internal_out, internal_in, accept} <= set(lines)
    # Internal networks are closed even to published ports; other networks are isolated
    # from each other except for published ports (DNATed by the routing mesh).
    dnat = lines.index("ct status dnat counter accept")
    assert lines.index(internal_out) < dnat and lines.index(internal_in) < dnat
    assert dnat < lines.index(drop) < lines.index(accept)


def test_ruleset_refuses_bad_names():
    with pytest.raises(NetworkError):
        ruleset("skiff", [Lan('x" accept; #', IPv4Network("10.0.0.0/24"))])
    with pytest.raises(NetworkError):
        ruleset("a b", [])


# ---- IPAM of a slice, records ------------------------------------------------------------


def test_slice_ipam_hands_out_addresses_with_the_network_prefix(tmp_path: Path):
    ipam = Ipam(tmp_path, IPv4Network("10.128.0.64/26"), prefixlen=20)
    assert ipam.gateway == IPv4Interface("10.128.0.65/20")
    assert ipam.allocate("c1") == IPv4Interface("10.128.0.66/20")
    assert ipam.lookup("c1") == IPv4Interface("10.128.0.66/20")
    with pytest.raises(IpamError):
        Ipam(tmp_path, IPv4Network("10.128.0.64/26"), prefixlen=27)


def _ep(network: str, i: int, ip: str) -> NetworkEndpoint:
    return NetworkEndpoint(network, ifname_of(i), IPv4Interface(ip),
                           IPv4Interface(ip).network.network_address + 1,
                           mac_of(IPv4Interface(ip).ip), veth_name("sk", "c1", network))


def test_attachment_record_round_trips():
    att = Attachment("c1", Path("/run/netns/skiff-c1"),
                     (_ep("a", 0, "10.128.0.66/20"), _ep("b", 1, "10.128.16.2/20")))
    assert Attachment.from_json(att.to_json()) == att


def test_default_route_goes_via_the_first_non_internal_network():
    priv = cfg("priv", internal=True)
    pub = cfg("pub", 4097)
    e0, e1 = _ep("priv", 0, "10.128.0.66/20"), _ep("pub", 1, "10.128.0.67/20")
    assert default_gateway([priv, pub], [e0, e1]) == e1
    assert default_gateway([pub, priv], [e1, e0]) == e1
    assert default_gateway([priv], [e0]) is None
