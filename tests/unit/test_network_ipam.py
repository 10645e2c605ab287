"""Host-local IPAM: the pure search, then the file store in temp dirs."""

from __future__ import annotations

import multiprocessing
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.network.ipam import (
    Ipam,
    IpamError,
    RangeExhausted,
    candidates,
    gateway_of,
    parse_subnet,
    pick,
)

NET = IPv4Network("10.88.0.0/24")


def test_gateway_is_first_host():
    assert gateway_of(NET) == IPv4Interface("10.88.0.1/24")
    assert gateway_of(IPv4Network("10.213.7.0/30")) == IPv4Interface("10.213.7.1/30")


@pytest.mark.parametrize("bad", ["10.88.0.0/31", "10.88.0.0/32", "10.88.0.1/24", "fd00::/64",
                                 "nonsense"])
def test_bad_ranges_are_refused(bad):
    with pytest.raises(IpamError):
        parse_subnet(bad)


def test_candidates_skip_network_gateway_broadcast_and_wrap():
    net = IPv4Network("10.1.2.0/29")  # .0 net, .1 gw, .2-.6 hosts, .7 broadcast
    assert [str(ip) for ip in candidates(net, None)] == [f"10.1.2.{i}" for i in range(2, 7)]
    assert [str(ip) for ip in candidates(net, IPv4Address("10.1.2.4"))] == [
        "10.1.2.5", "10.1.2.6", "10.1.2.2", "10.1.2.3", "10.1.2.4"]
    # A `last` outside the usable part (e.g. from another range) restarts at the front.
    assert next(candidates(net, IPv4Address("192.168.0.9"))) == IPv4Address("10.1.2.2")


def test_smallest_range_has_one_address():
    assert list(candidates(IPv4Network("10.0.0.0/30"), None)) == [IPv4Address("10.0.0.2")]


@given(prefix=st.integers(24, 30), taken_bits=st.integers(0, 2**64), last_off=st.integers(0, 300))
def test_pick_returns_free_usable_address_or_none(prefix, taken_bits, last_off):
    net = IPv4Network(f"10.9.0.0/{prefix}")
    usable = [ip for ip in net.hosts() if ip != net.network_address + 1]
    taken = {ip for i, ip in enumerate(usable) if taken_bits >> (i % 64) & 1}
    last = net.network_address + last_off
    got = pick(net, taken, last)
    if len(taken) == len(usable):
        assert got is None
    else:
        assert got in usable and got not in taken


# ---- file store --------------------------------------------------------------------------


def test_allocate_is_idempotent_and_persisted(tmp_path: Path):
    ipam = Ipam(tmp_path / "ipam", NET)
    a = ipam.allocate("ctr-a")
    assert a == IPv4Interface("10.88.0.2/24")
    assert ipam.allocate("ctr-a") == a
    assert (tmp_path / "ipam" / "10.88.0.2").read_text() == "ctr-a\n"
    # A fresh instance (an agent restart) sees the same allocations.
    again = Ipam(tmp_path / "ipam", NET)
    assert again.allocate("ctr-a") == a
    assert again.allocations() == {IPv4Address("10.88.0.2"): "ctr-a"}
    assert again.lookup("ctr-a") == a
    assert again.lookup("nobody") is None


def test_release_tolerates_unknown_and_does_not_reuse_at_once(tmp_path: Path):
    ipam = Ipam(tmp_path, NET)
    a = ipam.allocate("a")
    ipam.allocate("b")
    assert ipam.release("a") == [a.ip]
    assert ipam.release("a") == []
    assert ipam.release("never-seen") == []
    # Round robin: the next address is after the last one handed out, not the freed one.
    assert ipam.allocate("c") == IPv4Interface("10.88.0.4/24")


def test_exhaustion_then_release_frees_a_slot(tmp_path: Path):
    ipam = Ipam(tmp_path, "10.0.0.0/29")  # 5 usable
    got = {ipam.allocate(f"c{i}").ip for i in range(5)}
    assert len(got) == 5
    with pytest.raises(RangeExhausted):
        ipam.allocate("c5")
    ipam.release("c2")
    assert ipam.allocate("c5").ip not in got - {IPv4Address("10.0.0.4")}


def test_foreign_files_are_skipped(tmp_path: Path):
    # Another range's reservation and one its owner never finished writing.
    (tmp_path / "10.99.0.5").write_text("other\n")
    (tmp_path / "10.88.0.2").write_text("")
    ipam = Ipam(tmp_path, NET)
    assert ipam.allocations() == {IPv4Address("10.88.0.2"): ""}
    assert ipam.allocate("x") == IPv4Interface("10.88.0.3/24")


def test_reset_forgets_only_this_range(tmp_path: Path):
    (tmp_path / "10.99.0.5").write_text("other\n")
    ipam = Ipam(tmp_path, NET)
    ipam.allocate("x")
    ipam.reset()
    assert ipam.allocations() == {}
    assert (tmp_path / "10.99.0.5").exists()
    assert ipam.allocate("y") == IPv4Interface("10.88.0.2/24")


@pytest.mark.parametrize("owner", ["", " a", "a b", "a\nb"])
def test_owner_must_be_one_word(tmp_path: Path, owner: str):
    with pytest.raises(IpamError):
        Ipam(tmp_path, NET).allocate(owner)


def _allocate_many(directory: str, worker: int, out) -> None:
    ipam = Ipam(Path(directory), NET)
    # Every worker also asks for the shared owner: it must end up with exactly one address.
    out.put([str(ipam.allocate(f"w{worker}-{i}").ip) for i in range(10)]
            + [str(ipam.allocate("shared").ip)])


def test_processes_never_share_an_address(tmp_path: Path):
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_allocate_many, args=(str(tmp_path), w, out)) for w in range(4)]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    own = [ip for r in results for ip in r[:-1]]
    assert len(own) == len(set(own)) == 40
    shared = {r[-1] for r in results}
    assert len(shared) == 1 and shared.isdisjoint(own)
    assert len(Ipam(tmp_path, NET).allocations()) == 41
