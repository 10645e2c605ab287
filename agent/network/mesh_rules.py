"""The routing mesh as text: publications in, one atomic `nft -f` script out. Pure.

Every value that reaches the script is checked here first (table name, ports, addresses,
the service key used as a comment, the mark): publications come from manifests, and a
stray quote or newline must never become nftables syntax. A publication that fails a check
is left out and reported in `MeshRules.skipped`, so one bad service cannot take the mesh
down for all the others; a bad table name or mark is the agent's own configuration and
raises.

The table (`ip <table>`, replaced whole in one transaction as bridge.nat_ruleset does):

  prerouting  nat, dstnat   \\  destination local to the node (fib daddr type local), not
  output      nat, -100     /   127.0.0.0/8: jump mesh. Output covers connections the node
                                itself opens to its own addresses.
  mesh        per publication: [ip daddr HOST_IP] PROTO dport PORT, set the mesh bit in the
              conntrack mark, DNAT round robin (numgen inc) over the backends, to TARGET
  postrouting nat, srcnat: DNATed connections with the mesh bit are masqueraded, so replies
              from a backend on another node come back through the node that took the
              connection. Container traffic has no mesh bit and is left alone.
  input       filter: a publication with no ready backend rejects (TCP reset, ICMP port
              unreachable) rather than letting clients hang on a port nothing listens on.

Loopback (127.0.0.0/8) is deliberately not published: DNAT from 127.0.0.1 to another host
needs net.ipv4.conf.*.route_localnet=1, which also lets neighbours reach services bound to
localhost (CVE-2020-8558, kube-proxy's). Use the node's address.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from ipaddress import AddressValueError, IPv4Address

from agent.network.errors import NetworkError
from skiff.models.appspec import PortMapping

# One bit of the conntrack mark (not the packet mark: a packet mark can steer policy
# routing, fwmark rules of WireGuard and others; the conntrack mark never does).
MESH_MARK = 0x00100000

_TABLE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
# app/service, as the manifest loader names them; also bounds the nft comment (<= 128 bytes).
_SERVICE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}/[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_PROTOCOLS = ("tcp", "udp")
_LOOPBACK = "127.0.0.0/8"


def check_table(name: str) -> str:
    if not isinstance(name, str) or not _TABLE.fullmatch(name):
        raise NetworkError(f"invalid nftables table name {name!r}")
    return name


def check_mark(mark: int) -> int:
    # A single bit: the postrouting test is `ct mark & BIT == BIT`, which leaves the rest
    # of the conntrack mark to whoever else uses it.
    if type(mark) is not int or mark <= 0 or mark >= 1 << 32 or mark & (mark - 1):
        raise NetworkError(f"invalid mesh mark {mark!r}: one bit of a 32-bit mark")
    return mark


@dataclass(frozen=True)
class Publication:
    """One published port of one service and where it leads: the ready replicas' IPv4
    addresses (for mode "host", only the replicas on this node)."""

    service: str  # "app/service"
    port: PortMapping
    backends: tuple[str, ...] = ()

    def __init__(self, service: str, port: PortMapping, backends: Iterable[str] = ()) -> None:
        object.__setattr__(self, "service", service)
        object.__setattr__(self, "port", port)
        object.__setattr__(self, "backends", tuple(backends))


@dataclass(frozen=True)
class Rule:
    """A publication as it went into the table: checked and normalised."""

    service: str
    protocol: str
    published: int
    target: int
    host_ip: IPv4Address | None
    backends: tuple[IPv4Address, ...]  # sorted, no duplicates; empty: rejected


@dataclass
class MeshRules:
    script: str
    rules: list[Rule] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (service, why)


def _port(value: object, what: str) -> int:
    if type(value) is not int or not 1 <= value <= 65535:
        raise ValueError(f"{what} {value!r} is not a port (1-65535)")
    return value


def _ipv4(value: object, what: str) -> IPv4Address:
    if not isinstance(value, str):
        raise ValueError(f"{what} {value!r} is not an IPv4 address")
    try:
        addr = IPv4Address(value)
    except AddressValueError as exc:
        raise ValueError(f"{what} {value!r} is not an IPv4 address") from exc
    return addr


def _backend(value: object) -> IPv4Address:
    addr = _ipv4(value, "backend")
    if (addr.is_unspecified or addr.is_loopback or addr.is_multicast or addr.is_reserved
            or addr == IPv4Address("255.255.255.255")):
        raise ValueError(f"backend {addr} cannot receive a connection")
    return addr


def _host_ip(value: object) -> IPv4Address | None:
    if value is None or value == "0.0.0.0":
        return None  # compose's "all addresses"
    addr = _ipv4(value, "host_ip")
    if addr.is_loopback:
        raise ValueError(f"host_ip {addr}: loopback is not published by the mesh "
                         "(it would need route_localnet); use the node's address")
    if addr.is_multicast or addr.is_unspecified or addr.is_reserved:
        raise ValueError(f"host_ip {addr} is not a unicast address")
    return addr


def check(pub: Publication) -> tuple[Rule, list[str]]:
    """The publication as a Rule, and the backends that were dropped (with why).
    Raises ValueError when the publication itself cannot be published."""
    if not isinstance(pub.service, str) or not _SERVICE.fullmatch(pub.service):
        raise ValueError(f"service key {pub.service!r} is not app/service")
    port = pub.port
    if port.protocol not in _PROTOCOLS:
        raise ValueError(f"protocol {port.protocol!r} (tcp or udp)")
    if port.published is None:
        raise ValueError(f"port {port.target} has no published port")
    published = _port(port.published, "published port")
    target = _port(port.target, "target port")
    host_ip = _host_ip(port.host_ip)
    backends: set[IPv4Address] = set()
    dropped = []
    for value in pub.backends:
        try:
            backends.add(_backend(value))
        except ValueError as exc:
            dropped.append(str(exc))
    return Rule(pub.service, port.protocol, published, target, host_ip,
                tuple(sorted(backends))), dropped


def _match(rule: Rule) -> str:
    dst = f"ip daddr {rule.host_ip} " if rule.host_ip is not None else ""
    return f"{dst}{rule.protocol} dport {rule.published}"


def _dnat(rule: Rule, mark: int) -> str:
    # `numgen inc mod N map { i : addr }` picks the next backend for each new connection;
    # the nat chains see only a connection's first packet, so a connection stays put.
    elements = ", ".join(f"{i} : {addr}" for i, addr in enumerate(rule.backends))
    return (f"{_match(rule)} ct mark set ct mark | {mark:#010x} "
            f"dnat to numgen inc mod {len(rule.backends)} map {{ {elements} }} : "
            f'{rule.target} comment "{rule.service}"')


def _reject(rule: Rule) -> str:
    verdict = "reject with tcp reset" if rule.protocol == "tcp" else \
        "reject with icmp type port-unreachable"
    # `ct state new`: a reply to a connection the node opened from that port (an ephemeral
    # port can equal a published one) is not a client of the mesh.
    return (f"ip daddr != {_LOOPBACK} {_match(rule)} ct state new {verdict} "
            f'comment "{rule.service}: no ready replica"')


def _order(rule: Rule) -> tuple[int, str, int, int]:
    # Address-specific rules before catch-all ones on the same port, so host_ip wins.
    return (rule.host_ip is None, rule.protocol, rule.published,
            int(rule.host_ip) if rule.host_ip is not None else 0)


def select(publications: Iterable[Publication]) -> tuple[list[Rule], list[tuple[str, str]]]:
    """Checked rules in table order, and what was left out. Two services on the same
    (protocol, port, host_ip): apply refuses that, but if it happens anyway the first by
    service name keeps it, whatever order the publications came in."""
    rules: list[Rule] = []
    skipped: list[tuple[str, str]] = []
    for pub in publications:
        try:
            rule, dropped = check(pub)
        except ValueError as exc:
            skipped.append((str(pub.service), str(exc)))
            continue
        skipped += [(rule.service, why) for why in dropped]
        rules.append(rule)
    taken: dict[tuple[str, int, IPv4Address | None], Rule] = {}
    for rule in sorted(rules, key=lambda r: (r.service, _order(r), r.target, r.backends)):
        key = (rule.protocol, rule.published, rule.host_ip)
        if key in taken:
            where = f" on {rule.host_ip}" if rule.host_ip else ""
            skipped.append((rule.service, f"{rule.protocol}/{rule.published}{where} is "
                            f"already published by {taken[key].service}"))
            continue
        taken[key] = rule
    return sorted(taken.values(), key=_order), skipped


def mesh_ruleset(table: str, publications: Iterable[Publication],
                 mark: int = MESH_MARK) -> MeshRules:
    """The whole table as one `nft -f` transaction (declare, delete, recreate: re-applying
    replaces it atomically, and a packet sees either the old rules or the new)."""
    check_table(table)
    check_mark(mark)
    rules, skipped = select(publications)
    local = f"fib daddr type local ip daddr != {_LOOPBACK} jump mesh"
    lines = [
        f"table ip {table} {{}}",
        f"delete table ip {table}",
        f"table ip {table} {{",
        "\tchain prerouting {",
        "\t\ttype nat hook prerouting priority dstnat; policy accept;",
        f"\t\t{local}",
        "\t}",
        "\tchain output {",
        # nft 1.0.6 accepts the name `dstnat` only on prerouting; -100 is its value.
        "\t\ttype nat hook output priority -100; policy accept;",
        f"\t\t{local}",
        "\t}",
        "\tchain mesh {",
        *(f"\t\t{_dnat(r, mark)}" for r in rules if r.backends),
        "\t}",
        "\tchain postrouting {",
        "\t\ttype nat hook postrouting priority srcnat; policy accept;",
        f"\t\tct status dnat ct mark & {mark:#010x} == {mark:#010x} masquerade",
        "\t}",
        "\tchain input {",
        "\t\ttype filter hook input priority filter; policy accept;",
        *(f"\t\t{_reject(r)}" for r in rules if not r.backends),
        "\t}",
        "}",
    ]
    return MeshRules("\n".join(lines) + "\n", rules, skipped)


def drop_ruleset(table: str) -> str:
    check_table(table)
    # Declaring the table first makes the delete succeed whether or not it existed.
    return f"table ip {table} {{}}\ndelete table ip {table}\n"


def publications_summary(rules: Sequence[Rule]) -> str:
    """One line for the agent's log: what the mesh publishes now."""
    parts = []
    for r in rules:
        where = f"{r.host_ip}:" if r.host_ip else ""
        to = f"{len(r.backends)} backends" if r.backends else "reject"
        parts.append(f"{where}{r.published}/{r.protocol}->{r.service}:{r.target} ({to})")
    return ", ".join(parts) or "nothing"
