"""The node DNS server's name table: pure data built from Endpoints, no I/O.

What a container may resolve depends on who asks: the querying container is known by the
source address of its query, and sees only the names of the networks it is on
(docs/networking.md, "DNS"). The table is immutable once built; the server swaps in a new
one whenever Endpoints change, so a lookup never sees half an update.

Names are matched exactly (case-insensitive, with or without the final dot). A query that
a stub resolver made by appending a search domain (`web.example.com` for `web`) is not
ours, so it is forwarded; the resolver then tries the bare name, which is. That costs one
upstream round trip per search domain, as with Docker's embedded DNS, and never hijacks a
real name under the node's search domains.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from skiff.models.objects import EndpointAddress, Endpoints

# Question types (dns.rdatatype values, spelled out so this module needs no dnspython).
QTYPE_A = 1
QTYPE_ANY = 255

TASKS_PREFIX = "tasks."

AnswerKind = Literal["records", "nodata", "nxdomain", "forward", "refused"]


@dataclass(frozen=True)
class Answer:
    """What to tell the client: `records` (A records of `addresses`, TTL 0), `nodata` (the
    name is ours but has no record of that type, or no ready replica yet), `nxdomain` (the
    name exists only on networks the client is not on), `forward` (not ours: ask the
    upstream resolvers) or `refused` (the client is not a container we know, or one only
    on internal networks asking for a name that is not ours)."""

    kind: AnswerKind
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class Client:
    """A container as the table knows it, from any one of its addresses."""

    networks: frozenset[str]
    hostname: str  # normalised; "" if it has none
    addresses: tuple[str, ...]  # its own addresses, in network order (eth0 first)
    # Only on `internal` networks: its queries for names not ours are refused, not
    # forwarded (a container cut off from the outside must not reach it through DNS,
    # nor tunnel data out through it), as Docker does since 26.0.
    isolated: bool = False


def normalize(name: str) -> str:
    """DNS names compare case-insensitively; the final dot is optional in what we store."""
    return name.rstrip(".").lower() if name != "." else ""


class RoundRobin:
    """Rotates the address list of each name by one per answer.

    Kept apart from the table so that rotation carries on across table updates (the
    server owns one and hands it to every lookup): otherwise every Endpoints change in
    the cluster would send the next client of every service to its first replica.
    """

    def __init__(self) -> None:
        self._next: dict[str, int] = {}

    def rotate(self, key: str, addresses: tuple[str, ...]) -> tuple[str, ...]:
        if len(addresses) < 2:
            return addresses
        i = self._next.get(key, 0) % len(addresses)
        self._next[key] = i + 1
        return addresses[i:] + addresses[:i]

    def retain(self, keys: Collection[str]) -> None:
        """Forget names that no longer exist, so the counters stay as many as the names."""
        for key in [k for k in self._next if k not in keys]:
            del self._next[key]


@dataclass(frozen=True)
class Entry:
    """A name on one network: its ready addresses, and whether it is a service name or
    alias (including tasks.NAME) rather than a container's hostname."""

    addresses: tuple[str, ...]
    service: bool


class NameTable:
    """name -> network -> Entry, and client address -> Client."""

    def __init__(self, names: Mapping[str, Mapping[str, Entry]],
                 clients: Mapping[str, Client]) -> None:
        self._names = names
        self._clients = clients
        self._rotation = RoundRobin()

    @classmethod
    def empty(cls) -> NameTable:
        return cls({}, {})

    @classmethod
    def from_endpoints(cls, endpoints: Iterable[Endpoints],
                       internal: Collection[str] = ()) -> NameTable:
        """The table of all services' Endpoints; `internal` names the networks with
        `internal: true` (their containers get no upstream forwarding)."""
        return _build(endpoints, frozenset(internal))

    def names(self) -> frozenset[str]:
        return frozenset(self._names)

    def client(self, ip: str) -> Client | None:
        return self._clients.get(ip)

    def lookup(self, client_ip: str, qname: str, qtype: int,
               rotation: RoundRobin | None = None) -> Answer:
        """The answer for `client_ip` asking `qname` (of question type `qtype`, class IN).

        A records only (qtype A or ANY); any other type of a name we know gets NODATA so
        that, e.g., an AAAA query never leaks to the upstream resolvers, which might know
        the same short name as something else.
        """
        client = self._clients.get(client_ip)
        if client is None:
            return Answer("refused")
        key = normalize(qname)
        per_network = self._names.get(key)
        if per_network is None:
            return Answer("refused" if client.isolated else "forward")
        shared = [entry for net, entry in per_network.items() if net in client.networks]
        if not shared:
            return Answer("nxdomain")
        # A service name wins over a hostname (Docker's precedence); on one network the
        # table already keeps only the service, across networks it is decided here.
        chosen = [e for e in shared if e.service] or shared
        found = sorted({ip for e in chosen for ip in e.addresses}, key=_ip_order)
        own = not chosen[0].service and key == client.hostname
        if own:
            # Its own name, even before it is ready (a starting container may look itself
            # up), eth0's address first as in its /etc/hosts, and not rotated.
            found = [*client.addresses, *(ip for ip in found if ip not in client.addresses)]
        if qtype not in (QTYPE_A, QTYPE_ANY) or not found:
            # Ours but no record of this type, or nothing ready yet: NODATA rather than
            # forwarding (an upstream answer would be someone else's host) or NXDOMAIN
            # (the name exists; it will have addresses as soon as a replica runs).
            return Answer("nodata")
        if own:
            return Answer("records", tuple(found))
        return Answer("records", (rotation or self._rotation).rotate(key, tuple(found)))


def _ip_order(ip: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in ip.split("."))
    except ValueError:  # not dotted IPv4: after all of those, in text order
        return (1 << 16, *(ord(c) for c in ip))


def _build(endpoints: Iterable[Endpoints], internal: frozenset[str]) -> NameTable:
    # Per network: service names/aliases (and tasks.NAME) -> ready addresses; hostnames
    # separately, because a service name wins over a container's hostname on the same
    # network (Docker's precedence), while equal aliases of several services, or equal
    # hostnames of several containers, add up.
    services: dict[str, dict[str, set[str]]] = {}
    hosts: dict[str, dict[str, set[str]]] = {}
    clients: dict[str, Client] = {}
    addresses: list[EndpointAddress] = []
    for ep in endpoints:
        for net, names in ep.names.items():
            ready = {a.addresses[net] for a in ep.addresses if a.ready and net in a.addresses}
            table = services.setdefault(net, {})
            for name in names:
                key = normalize(name)
                if not key:
                    continue
                table.setdefault(key, set()).update(ready)
                table.setdefault(TASKS_PREFIX + key, set()).update(ready)
        addresses.extend(ep.addresses)
    # Ready ones last, so that when a stale, stopped task still lists an address that a
    # running one now has, the running one is the client that address identifies.
    for addr in sorted(addresses, key=lambda a: a.ready):
        hostname = normalize(addr.hostname)
        own = tuple(addr.addresses[net] for net in sorted(addr.addresses))
        networks = frozenset(addr.addresses)
        client = Client(networks, hostname, own, bool(networks) and networks <= internal)
        for net, ip in addr.addresses.items():
            clients[ip] = client
            if hostname:
                found = hosts.setdefault(net, {}).setdefault(hostname, set())
                if addr.ready:
                    found.add(ip)
    names: dict[str, dict[str, Entry]] = {}
    for source, is_service in ((services, True), (hosts, False)):
        for net, table in source.items():
            for name, ips in table.items():
                if not is_service and name in services.get(net, {}):
                    continue
                ordered = tuple(sorted(ips, key=_ip_order))
                names.setdefault(name, {})[net] = Entry(ordered, is_service)
    return NameTable(names, clients)
