"""The node DNS server on real namespaces: containers ask the gateway address with
dnspython and busybox nslookup; names, aliases, tasks.X, hostnames, rotation, network
isolation, refusal of strangers, table updates, TCP and truncation, upstream forwarding."""

from __future__ import annotations

import asyncio
import errno
import functools
import socket
import time
from collections.abc import Awaitable, Callable

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

from agent.dns import DnsServer, NameTable
from tests.integration.dns.conftest import needs_root
from tests.integration.dns.fake_upstream import FakeUpstream
from tests.integration.dns.lab import (
    BACK_GW,
    DB1_IP,
    DEAD_UPSTREAM,
    FRONT_GW,
    PROBE_IP,
    STRANGER_IP,
    UPSTREAM_IP,
    WEB1_FRONT,
    DnsLab,
    query,
)
from tests.integration.dns.names import (
    WEB_BACK,
    WEB_FRONT,
    address,
    endpoints,
    lab_endpoints,
    web_replica,
)

pytestmark = [pytest.mark.integration, needs_root]


async def ask(lab: DnsLab, role: str, name: str, server: str = FRONT_GW,
              **kw: object) -> dns.message.Message:
    return await asyncio.to_thread(lab.run_in, role, functools.partial(query, **kw), name,
                                   server)


def ips(response: dns.message.Message) -> list[str]:
    assert response.rcode() == dns.rcode.NOERROR, dns.rcode.to_text(response.rcode())
    return [rr.address for rrset in response.answer for rr in rrset]


async def eventually(check: Callable[[], Awaitable[bool]], what: str,
                     deadline: float = 10.0) -> None:
    end = time.monotonic() + deadline
    while not await check():
        if time.monotonic() > end:
            raise AssertionError(f"not within {deadline}s: {what}")
        await asyncio.sleep(0.05)


async def test_names_aliases_tasks_and_hostnames(lab: DnsLab, server: DnsServer):
    assert sorted(ips(await ask(lab, "probe", "web"))) == WEB_FRONT
    assert sorted(ips(await ask(lab, "probe", "WWW."))) == WEB_FRONT
    assert sorted(ips(await ask(lab, "probe", "tasks.web"))) == WEB_FRONT
    assert ips(await ask(lab, "probe", "prober")) == [PROBE_IP]  # its own hostname
    assert ips(await ask(lab, "probe", "web1host")) == [WEB1_FRONT]
    # AAAA of a name of ours: NODATA, never the upstream's idea of "web".
    aaaa = await ask(lab, "probe", "web", rdtype="AAAA")
    assert aaaa.rcode() == dns.rcode.NOERROR and not aaaa.answer
    # Over TCP too.
    assert sorted(ips(await ask(lab, "probe", "web", tcp=True))) == WEB_FRONT


async def test_other_networks_names_are_nxdomain(lab: DnsLab, server: DnsServer):
    for name in ("db", "api", "tasks.db", "dbhost"):
        r = await ask(lab, "probe", name)
        assert r.rcode() == dns.rcode.NXDOMAIN, name
    # web1 is on both networks: it sees both, whichever gateway it asks.
    assert ips(await ask(lab, "web1", "db", server=BACK_GW)) == [DB1_IP]
    assert ips(await ask(lab, "web1", "probe", server=BACK_GW)) == [PROBE_IP]
    assert sorted(ips(await ask(lab, "web1", "web", server=BACK_GW))) == sorted(
        WEB_FRONT + WEB_BACK)
    assert sorted(ips(await ask(lab, "db1", "api", server=BACK_GW))) == WEB_BACK


async def test_answers_rotate(lab: DnsLab, server: DnsServer):
    answers = [ips(await ask(lab, "probe", "web")) for _ in range(3)]
    assert {a[0] for a in answers} == set(WEB_FRONT)
    assert all(sorted(a) == WEB_FRONT for a in answers)


async def test_busybox_nslookup(lab: DnsLab, server: DnsServer):
    found = await asyncio.to_thread(lab.busybox, "probe", "nslookup", "web", FRONT_GW)
    assert found.returncode == 0, found.stdout + found.stderr
    for ip in WEB_FRONT:
        assert f"Address: {ip}" in found.stdout, found.stdout
    alias = await asyncio.to_thread(lab.busybox, "probe", "nslookup", "tasks.www", FRONT_GW)
    assert alias.returncode == 0 and f"Address: {WEB1_FRONT}" in alias.stdout, alias.stdout
    missing = await asyncio.to_thread(lab.busybox, "probe", "nslookup", "db", FRONT_GW)
    assert missing.returncode != 0
    assert "NXDOMAIN" in missing.stdout + missing.stderr, missing.stdout + missing.stderr


async def test_unknown_clients_are_refused(lab: DnsLab, server: DnsServer,
                                           upstream: FakeUpstream):
    for name in ("web", "example.test"):
        r = await ask(lab, "probe", name, source=STRANGER_IP)
        assert r.rcode() == dns.rcode.REFUSED, name
        r = await ask(lab, "probe", name, source=STRANGER_IP, tcp=True)
        assert r.rcode() == dns.rcode.REFUSED, name
    assert upstream.queries == []  # not an open resolver


async def test_table_updates_show_in_the_next_answer(lab: DnsLab, server: DnsServer):
    assert sorted(ips(await ask(lab, "probe", "web"))) == WEB_FRONT
    # A new replica becomes ready; a stranger becomes a known container.
    stranger = endpoints("late", {"front": ["late"]},
                         [address("late.1", "latehost", front=STRANGER_IP)])
    server.update(NameTable.from_endpoints(lab_endpoints(
        web=[web_replica(i) for i in (1, 2, 3, 4)], extra=[stranger])))
    assert sorted(ips(await ask(lab, "probe", "web"))) == [*WEB_FRONT, "10.1.0.14"]
    assert ips(await ask(lab, "probe", "latehost", source=STRANGER_IP)) == [STRANGER_IP]
    # Replica 2 goes, replica 3 stops being ready: neither is answered any more.
    server.update(NameTable.from_endpoints(lab_endpoints(
        web=[web_replica(1), web_replica(3, ready=False), web_replica(4)])))
    for _ in range(3):
        assert sorted(ips(await ask(lab, "probe", "tasks.web"))) == ["10.1.0.11", "10.1.0.14"]
    r = await ask(lab, "probe", "web", source=STRANGER_IP)
    assert r.rcode() == dns.rcode.REFUSED


async def test_big_answers_truncate_over_udp_and_come_whole_over_tcp(lab: DnsLab,
                                                                     server: DnsServer):
    big = endpoints("big", {"front": ["big"]},
                    [address(f"big.{i}", f"big{i}", front=f"10.1.1.{i}") for i in range(1, 61)])
    server.update(NameTable.from_endpoints(lab_endpoints(extra=[big])))
    r = await ask(lab, "probe", "big")
    assert r.flags & dns.flags.TC
    assert len(ips(await ask(lab, "probe", "big", edns=True))) == 60  # 1232 bytes fit
    assert len(ips(await ask(lab, "probe", "big", tcp=True))) == 60
    # What a stub resolver does on TC: ask again over TCP.
    q = dns.message.make_query("big", "A")
    r, used_tcp = await asyncio.to_thread(lab.run_in, "probe", dns.query.udp_with_fallback,
                                          q, FRONT_GW, 3.0)
    assert used_tcp and len(ips(r)) == 60
    # busybox never retries over TCP: it makes do with the part that fit, with TC set.
    found = await asyncio.to_thread(lab.busybox, "probe", "nslookup", "big", FRONT_GW)
    listed = [ln for ln in found.stdout.splitlines() if ln.startswith("Address: 10.1.1.")]
    assert 20 < len(listed) < 60, found.stdout + found.stderr


async def test_unknown_names_are_forwarded_upstream(lab: DnsLab, server: DnsServer,
                                                    upstream: FakeUpstream):
    assert ips(await ask(lab, "probe", "example.test")) == ["192.0.2.7"]
    assert ips(await ask(lab, "probe", "Example.Test", tcp=True)) == ["192.0.2.7"]
    r = await ask(lab, "probe", "nope.test")
    assert r.rcode() == dns.rcode.NXDOMAIN
    await ask(lab, "probe", "web", rdtype="AAAA")
    await ask(lab, "probe", "db")  # another network's name: NXDOMAIN here, not forwarded
    assert upstream.queries == [("udp", "example.test"), ("tcp", "example.test"),
                                ("udp", "nope.test")]
    found = await asyncio.to_thread(lab.busybox, "probe", "nslookup", "example.test",
                                    FRONT_GW)
    assert "Address: 192.0.2.7" in found.stdout, found.stdout + found.stderr


async def test_forwarding_skips_a_dead_upstream_and_fails_with_servfail(
        lab: DnsLab, server: DnsServer, upstream: FakeUpstream):
    server.set_upstreams([DEAD_UPSTREAM, UPSTREAM_IP])  # timeout 0.5 s each
    assert ips(await ask(lab, "probe", "example.test")) == ["192.0.2.7"]
    server.set_upstreams([DEAD_UPSTREAM])
    start = time.monotonic()
    r = await ask(lab, "probe", "example.test")
    assert r.rcode() == dns.rcode.SERVFAIL
    assert time.monotonic() - start < 2.5
    # Local names never depend on the upstreams.
    assert sorted(ips(await ask(lab, "probe", "web"))) == WEB_FRONT


async def test_addresses_come_and_go(lab: DnsLab, server: DnsServer):
    await server.remove_address(FRONT_GW)
    assert server.addresses == {BACK_GW}
    with pytest.raises(ConnectionRefusedError):
        await ask(lab, "probe", "web", tcp=True)
    await server.add_address(FRONT_GW)
    await server.add_address(FRONT_GW)  # idempotent
    assert sorted(ips(await ask(lab, "probe", "web"))) == WEB_FRONT
    assert await server.set_addresses([FRONT_GW]) == {}
    assert server.addresses == {FRONT_GW}
    with pytest.raises(ConnectionRefusedError):
        await ask(lab, "db1", "db", server=BACK_GW, tcp=True)
    # A port someone else holds: reported, not raised, and the other addresses still work.
    second = DnsServer(netns=lab.node)
    try:
        failed = await second.set_addresses([FRONT_GW, BACK_GW])
        assert set(failed) == {FRONT_GW} and second.addresses == {BACK_GW}
        assert failed[FRONT_GW].errno == errno.EADDRINUSE
    finally:
        await second.close()


async def test_listening_before_the_gateway_address_exists():
    lab = DnsLab()
    srv = DnsServer(NameTable.from_endpoints(lab_endpoints()), netns=lab.node)
    try:
        lab.up(back_gateway=False)
        await srv.add_address(BACK_GW)  # the bridge has no such address yet
        lab.add_back_gateway()

        async def answered() -> bool:
            try:
                r = await ask(lab, "db1", "db", server=BACK_GW, timeout=0.5)
            except (dns.exception.Timeout, OSError):
                return False
            return ips(r) == [DB1_IP]
        await eventually(answered, "an answer on the late gateway address")
    finally:
        await srv.close()
        lab.close()
        assert not lab.leftovers()


def _send_garbage(server: str) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for junk in (b"", b"\x00", b"\xff" * 12, b"\x12\x34\x01\x00\x00\x01" + b"\xc0" * 30,
                     bytes(range(256)) * 4):
            sock.sendto(junk, (server, 53))
    finally:
        sock.close()
    tcp = socket.create_connection((server, 53), timeout=2)
    try:
        tcp.sendall(b"\x00\x05hello\x00")  # a short message, then a cut-off length
    finally:
        tcp.close()


async def test_garbage_does_not_hurt(lab: DnsLab, server: DnsServer):
    await asyncio.to_thread(lab.run_in, "probe", _send_garbage, FRONT_GW)
    assert sorted(ips(await ask(lab, "probe", "web"))) == WEB_FRONT
    assert sorted(ips(await ask(lab, "probe", "web", tcp=True))) == WEB_FRONT
