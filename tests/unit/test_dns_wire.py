"""DNS messages in and out (agent/dns/wire.py) and the node's upstream list, no sockets."""

from __future__ import annotations

import struct

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from agent.dns.table import NameTable, RoundRobin
from agent.dns.upstream import node_upstreams
from agent.dns.wire import Forward, header_only, relay, respond
from skiff.models.objects import EndpointAddress, Endpoints, ObjectMeta

CLIENT = "10.1.0.2"


def big_table(replicas: int = 3) -> NameTable:
    addrs = [EndpointAddress(task=f"s.{i}", node="n", vtep="192.0.2.1", hostname=f"h{i}",
                             ready=True, addresses={"net": f"10.1.{i // 200}.{i % 200 + 2}"})
             for i in range(replicas)]
    return NameTable.from_endpoints([Endpoints(metadata=ObjectMeta(name="s", app="a"),
                                               names={"net": ["svc", "alias"]},
                                               addresses=addrs)])


def ask(table: NameTable, name: str, rdtype: str = "A", client: str = CLIENT,
        tcp: bool = False, **kw: object) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, **kw)  # type: ignore[arg-type]
    out = respond(table, RoundRobin(), client, query.to_wire(), tcp)
    assert isinstance(out, bytes), out
    response = dns.message.from_wire(out)
    assert response.id == query.id
    return response


def a_records(response: dns.message.Message) -> list[str]:
    return [rr.address for rrset in response.answer for rr in rrset]


def test_a_records_with_ttl_zero_and_the_clients_letter_case():
    r = ask(big_table(), "SvC.")
    assert r.rcode() == dns.rcode.NOERROR
    assert r.flags & dns.flags.AA and r.flags & dns.flags.RA and r.flags & dns.flags.QR
    assert sorted(a_records(r)) == ["10.1.0.2", "10.1.0.3", "10.1.0.4"]
    assert r.answer[0].ttl == 0
    assert r.answer[0].name.to_text() == "SvC."


def test_nodata_nxdomain_and_refused():
    table = big_table()
    r = ask(table, "svc", "AAAA")
    assert r.rcode() == dns.rcode.NOERROR and not r.answer
    other = NameTable.from_endpoints([
        Endpoints(metadata=ObjectMeta(name="x", app="a"), names={"other": ["x"]}),
        Endpoints(metadata=ObjectMeta(name="s", app="a"), names={"net": ["svc"]},
                  addresses=[EndpointAddress("s.1", "n", "v", "h", True, {"net": CLIENT})])])
    assert ask(other, "x").rcode() == dns.rcode.NXDOMAIN
    r = ask(table, "svc", client="10.9.9.9")
    assert r.rcode() == dns.rcode.REFUSED and not r.question


def test_unknown_names_are_forwarded_with_the_clients_limit():
    query = dns.message.make_query("example.com", "A", use_edns=0, payload=4096)
    out = respond(big_table(), RoundRobin(), CLIENT, query.to_wire(), tcp=False)
    assert isinstance(out, Forward) and out.limit == 1232
    assert out.message.question[0].name.to_text() == "example.com."
    plain = dns.message.make_query("example.com", "A")
    fwd = respond(big_table(), RoundRobin(), CLIENT, plain.to_wire(), tcp=False)
    assert isinstance(fwd, Forward) and fwd.limit == 512
    fwd = respond(big_table(), RoundRobin(), CLIENT, plain.to_wire(), tcp=True)
    assert isinstance(fwd, Forward) and fwd.limit == 65535


def test_big_answers_are_truncated_over_udp_without_edns_and_whole_over_tcp():
    table = big_table(60)  # 60 A records: about 1 KB
    wire = respond(table, RoundRobin(), CLIENT, dns.message.make_query("svc", "A").to_wire(),
                   tcp=False)
    assert isinstance(wire, bytes) and 512 - 16 < len(wire) <= 512
    r = dns.message.from_wire(wire)
    assert r.flags & dns.flags.TC
    # As many records as fit, from the start of the rotated list (for clients that never
    # retry over TCP).
    assert a_records(r) == [f"10.1.0.{i + 2}" for i in range(len(a_records(r)))]
    assert len(a_records(r)) > 25
    r = ask(table, "svc", use_edns=0, payload=4096)
    assert not r.flags & dns.flags.TC and len(a_records(r)) == 60
    r = ask(big_table(200), "svc", use_edns=0, payload=4096)  # ~3.2 KB > 1232
    assert r.flags & dns.flags.TC
    r = ask(big_table(200), "svc", tcp=True)
    assert not r.flags & dns.flags.TC and len(a_records(r)) == 200


@pytest.mark.parametrize("wire", [
    b"", b"\x00", b"\x12\x34\x01\x00\x00\x01", b"\xff" * 11,
    b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03abc",  # cut-off question
    b"\x12\x34\x01\x00\x00\x05\x00\x00\x00\x00\x00\x00" + b"\x3f" * 40,
    bytes(range(256)),
])
def test_garbage_never_raises(wire: bytes):
    out = respond(big_table(), RoundRobin(), CLIENT, wire, tcp=False)
    if out is not None:
        assert isinstance(out, bytes)
        if len(wire) >= 12:
            assert out[:2] == wire[:2]
            assert out[3] & 0x0F == dns.rcode.FORMERR


def test_responses_and_unknown_opcodes():
    query = dns.message.make_query("svc", "A")
    response = dns.message.make_response(query)
    assert respond(big_table(), RoundRobin(), CLIENT, response.to_wire(), False) is None
    # Unknown clients never get answers to responses either (no reflection loops).
    assert header_only(response.to_wire(), dns.rcode.REFUSED) is None
    query.set_opcode(dns.opcode.NOTIFY)
    out = respond(big_table(), RoundRobin(), CLIENT, query.to_wire(), False)
    assert isinstance(out, bytes)
    assert dns.message.from_wire(out).rcode() == dns.rcode.NOTIMP


def test_two_questions_are_formerr_and_edns1_badvers():
    query = dns.message.make_query("svc", "A")
    query.question.append(dns.rrset.RRset(query.question[0].name, 1, 1))
    wire = query.to_wire()
    head = struct.unpack("!HHHHHH", wire[:12])
    assert head[2] == 2
    out = respond(big_table(), RoundRobin(), CLIENT, wire, False)
    assert isinstance(out, bytes) and dns.message.from_wire(out).rcode() == dns.rcode.FORMERR
    query = dns.message.make_query("svc", "A", use_edns=1)
    out = respond(big_table(), RoundRobin(), CLIENT, query.to_wire(), False)
    assert isinstance(out, bytes)
    assert dns.message.from_wire(out).rcode() == dns.rcode.BADVERS


def test_relay_puts_back_the_clients_id_or_answers_servfail():
    query = dns.message.make_query("example.com", "A")
    fwd = respond(big_table(), RoundRobin(), CLIENT, query.to_wire(), False)
    assert isinstance(fwd, Forward)
    fwd.message.id = 4242  # what the upstream code does before asking
    upstream = dns.message.make_response(fwd.message)
    upstream.answer.append(dns.rrset.from_text("example.com.", 60, "IN", "A", "192.0.2.7"))
    out = dns.message.from_wire(relay(fwd, query.id, upstream))
    assert out.id == query.id and a_records(out) == ["192.0.2.7"]
    failed = dns.message.from_wire(relay(fwd, query.id, None))
    assert failed.id == query.id and failed.rcode() == dns.rcode.SERVFAIL
    assert failed.question[0].name.to_text() == "example.com."


def test_node_upstreams():
    assert node_upstreams("nameserver 192.0.2.1\nnameserver 2001:db8::1\n") == [
        "192.0.2.1", "2001:db8::1"]
    stub = "nameserver 127.0.0.53\noptions edns0\n"
    assert node_upstreams(stub, "nameserver 192.0.2.9\n") == ["192.0.2.9"]
    assert node_upstreams(stub, None) == ["127.0.0.53"]
    assert node_upstreams(stub, "nameserver 127.0.0.1\n") == ["127.0.0.53"]
    assert node_upstreams("nameserver fe80::1%eth0\nnameserver 0.0.0.0\nbogus\n") == []


def test_the_wire_keeps_the_rotated_order():
    table, rr = big_table(5), RoundRobin()
    firsts = []
    for _ in range(5):
        query = dns.message.make_query("svc", "A")
        out = respond(table, rr, CLIENT, query.to_wire(), tcp=False)
        assert isinstance(out, bytes)
        got = a_records(dns.message.from_wire(out))
        firsts.append(got[0])
        assert got == sorted(got, key=lambda ip: (ip < got[0], ip))  # a rotation of sorted
    assert firsts == [f"10.1.0.{i}" for i in range(2, 7)]


def test_isolated_clients_are_refused_other_classes_too():
    ep = Endpoints(metadata=ObjectMeta(name="s", app="a"), names={"net": ["svc"]},
                   addresses=[EndpointAddress("s.1", "n", "v", "h", True, {"net": CLIENT})])
    table = NameTable.from_endpoints([ep], internal={"net"})
    assert ask(table, "example.com").rcode() == dns.rcode.REFUSED
    assert ask(table, "version.bind", "TXT", rdclass="CH").rcode() == dns.rcode.REFUSED
    assert a_records(ask(table, "svc")) == [CLIENT]
    open_table = NameTable.from_endpoints([ep])
    query = dns.message.make_query("version.bind", "TXT", rdclass="CH")
    assert isinstance(respond(open_table, RoundRobin(), CLIENT, query.to_wire(), False),
                      Forward)
