"""DNS messages in and out: what to say to one query, without sockets.

`respond` turns a query's bytes into the response's bytes, or says the query must go to
the upstream resolvers (`Forward`), or that it is to be dropped. `relay` turns what the
upstream said (or its silence) into the client's response. Everything here is pure, so
the server module only moves bytes and the rules are tested without a network.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from agent.dns.table import Answer, NameTable, RoundRobin

# Without EDNS a UDP answer may not exceed 512 bytes (RFC 1035); with it we accept what
# the client offers up to 1232, the size that avoids IP fragmentation on any path
# (DNS flag day 2020), and advertise that much ourselves.
UDP_PLAIN_LIMIT = 512
UDP_EDNS_LIMIT = 1232
TCP_LIMIT = 65535

_HEADER = struct.Struct("!HHHHHH")
_QR = 0x8000
_OPCODE_MASK = 0x7800
_RD = 0x0100


@dataclass
class Forward:
    """A query for the upstream resolvers: `message` is the client's query (with the
    client's id), `limit` the largest response the client accepts on its transport."""

    message: dns.message.Message
    limit: int


def response_limit(query: dns.message.Message, tcp: bool) -> int:
    if tcp:
        return TCP_LIMIT
    if query.edns < 0:
        return UDP_PLAIN_LIMIT
    return max(UDP_PLAIN_LIMIT, min(query.payload, UDP_EDNS_LIMIT))


def header_only(wire: bytes, rcode: int) -> bytes | None:
    """A response made from the query's header alone (id, opcode, RD), for a query we
    will not parse: one from an unknown client, or one that does not parse. None if the
    bytes are not even a query header (too short, or a response: never answer those, so
    two DNS servers can never bounce packets off each other)."""
    if len(wire) < _HEADER.size:
        return None
    qid, flags = struct.unpack_from("!HH", wire)
    if flags & _QR:
        return None
    return _HEADER.pack(qid, _QR | (flags & (_OPCODE_MASK | _RD)) | rcode, 0, 0, 0, 0)


def _skeleton(query: dns.message.Message, rcode: int = dns.rcode.NOERROR,
              authoritative: bool = False) -> dns.message.Message:
    response = dns.message.make_response(query, recursion_available=True,
                                         our_payload=UDP_EDNS_LIMIT)
    response.set_rcode(rcode)
    if authoritative:
        response.flags |= dns.flags.AA
    return response


def _render(response: dns.message.Message, limit: int) -> bytes:
    # want_shuffle=False: dnspython shuffles records by default, which would undo our
    # round robin. prefer_truncation: what does not fit is left out and TC is set.
    return response.to_wire(max_size=limit, prefer_truncation=True, want_shuffle=False)


def _fits(response: dns.message.Message, limit: int) -> bytes | None:
    try:
        return response.to_wire(max_size=limit, want_shuffle=False)
    except dns.exception.TooBig:
        return None


def _render_answer(response: dns.message.Message, limit: int) -> bytes:
    """Our own A answer, cut to as many records as fit, with TC set when cut.

    A partial answer (as Docker's embedded DNS gives) rather than an empty one: a client
    that retries over TCP gets everything there, and one that does not (busybox, musl
    before 1.2.4) still gets addresses, a different rotated slice each time.
    """
    whole = _fits(response, limit)
    if whole is not None or not response.answer:
        return whole if whole is not None else _render(response, limit)
    rrset = response.answer[0]
    records = list(rrset)

    def cut(n: int) -> dns.message.Message:
        response.answer = [dns.rrset.from_rdata_list(rrset.name, rrset.ttl, records[:n])]
        return response

    low, high = 0, len(records) - 1  # `low` records always fit: the bare header does
    while low < high:
        mid = (low + high + 1) // 2
        if _fits(cut(mid), limit) is None:
            high = mid - 1
        else:
            low = mid
    response.flags |= dns.flags.TC
    if low == 0:
        response.answer = []
        return _render(response, limit)
    return _render(cut(low), limit)


def respond(table: NameTable, rotation: RoundRobin, client_ip: str, wire: bytes,
            tcp: bool) -> bytes | Forward | None:
    """The response to the query `wire` from `client_ip`, a Forward, or None (drop)."""
    client = table.client(client_ip)
    if client is None:
        # Not a container of ours: we are not an open resolver (no forwarding, no
        # amplification: the refusal is no larger than the query's header).
        return header_only(wire, dns.rcode.REFUSED)
    try:
        query = dns.message.from_wire(wire)
    except Exception:  # any parse failure: dnspython raises many kinds
        return header_only(wire, dns.rcode.FORMERR)
    if query.flags & dns.flags.QR:
        return None
    limit = response_limit(query, tcp)
    if query.opcode() != dns.opcode.QUERY:
        return _render(_skeleton(query, dns.rcode.NOTIMP), limit)
    if len(query.question) != 1:
        return _render(_skeleton(query, dns.rcode.FORMERR), limit)
    if query.edns > 0:
        return _render(_skeleton(query, dns.rcode.BADVERS), limit)
    question = query.question[0]
    if question.rdclass == dns.rdataclass.IN:
        answer = table.lookup(client_ip, question.name.to_text(), question.rdtype, rotation)
    else:  # CHAOS and friends: not ours
        answer = Answer("refused" if client.isolated else "forward")
    if answer.kind == "forward":
        return Forward(query, limit)
    if answer.kind == "refused":  # a container only on internal networks, asking for more
        return _render(_skeleton(query, dns.rcode.REFUSED), limit)
    if answer.kind == "nxdomain":
        return _render(_skeleton(query, dns.rcode.NXDOMAIN, authoritative=True), limit)
    response = _skeleton(query, authoritative=True)
    if answer.kind == "records":
        # The question's own name object: keeps the client's letter case, which
        # resolvers using 0x20 randomisation check.
        response.answer.append(dns.rrset.from_text_list(
            question.name, 0, dns.rdataclass.IN, dns.rdatatype.A, list(answer.addresses)))
        return _render_answer(response, limit)
    return _render(response, limit)


def relay(forward: Forward, client_id: int, upstream: dns.message.Message | None) -> bytes:
    """The client's response from the upstream's (SERVFAIL when there was none)."""
    if upstream is not None:
        upstream.id = client_id
        try:
            return _render(upstream, forward.limit)
        except (dns.exception.DNSException, ValueError, TypeError, AttributeError):
            pass  # an answer we cannot render again: the client gets SERVFAIL
    forward.message.id = client_id
    return _render(_skeleton(forward.message, dns.rcode.SERVFAIL), forward.limit)


def servfail(forward: Forward) -> bytes:
    return relay(forward, forward.message.id, None)
